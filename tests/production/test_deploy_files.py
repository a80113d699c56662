"""The production recipe in deploy/: the compose stack, the workspace, the images' commands and the
Helm values agree with each other, with the production resource set's environment variables, and
with deploy/dagster.yaml. Files are read, nothing is built or started."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster._core.instance.config import dagster_instance_config
from dagster._core.workspace.config_schema import ensure_workspace_config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SERVICES = {"postgres", "mlflow", "code", "webserver", "daemon"}
# What resources.production_resources() and production_executor() read.
RESOURCE_SET_ENV = {
    "DCAI_ENV",
    "MLFLOW_TRACKING_URI",
    "DCAI_LAKE_URL",
    "DCAI_ARTIFACTS_URL",
    "DCAI_LANDING_DIR",
    "DCAI_MAX_CONCURRENT_STEPS",
}
# What the Dagster instance of deploy/dagster.yaml needs.
INSTANCE_ENV = {"DAGSTER_HOME", "DAGSTER_POSTGRES_URL"}


def load(name: str) -> Any:
    return yaml.safe_load((DEPLOY / name).read_text())


def environment(service: dict) -> dict[str, str]:
    """A compose service's environment, given as a mapping or as a list of NAME=value."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return {k: ("" if v is None else str(v)) for k, v in env.items()}


def host_and_port(published: str | dict) -> tuple[str | None, int]:
    """(host IP, host port) of a compose port entry: "[ip:]host:container[/proto]" or long form."""
    if isinstance(published, dict):
        return published.get("host_ip"), int(published["published"])
    parts = str(published).split("/")[0].split(":")
    if len(parts) == 3:
        return parts[0], int(parts[1])
    return None, int(parts[0])


def dockerfile_cmd(name: str) -> list[str]:
    """The exec-form CMD of a Dockerfile in deploy/."""
    cmds = [line for line in (DEPLOY / name).read_text().splitlines() if line.startswith("CMD ")]
    assert len(cmds) == 1, f"{name}: expected one CMD, found {len(cmds)}"
    return json.loads(cmds[0][len("CMD ") :])


def contains_run(args: list[str], *run: str) -> bool:
    """Whether ``run`` appears in ``args`` as consecutive items (an option and its value)."""
    return any(tuple(args[i : i + len(run)]) == run for i in range(len(args) - len(run) + 1))


def test_every_yaml_in_deploy_parses():
    files = sorted([*DEPLOY.glob("*.yaml"), *DEPLOY.glob("*.yml")])
    assert {f.name for f in files} >= {
        "dagster.yaml",
        "docker-compose.yaml",
        "helm-values.yaml",
        "workspace.yaml",
    }
    for path in files:
        assert isinstance(yaml.safe_load(path.read_text()), dict), f"{path.name} is not a YAML mapping"


# --- docker compose ---------------------------------------------------------------------------


def test_compose_runs_the_five_services_with_ports_on_loopback_only():
    services = load("docker-compose.yaml")["services"]
    assert set(services) == SERVICES
    published = {}
    for name, service in services.items():
        for entry in service.get("ports", []):
            host, port = host_and_port(entry)
            assert host == "127.0.0.1", f"{name} publishes {entry!r} beyond the loopback interface"
            published[port] = name
    # The UI and MLflow, as docs/operations.md says; the database and the code server stay internal.
    assert published == {3000: "webserver", 5000: "mlflow"}


def test_the_code_service_has_every_variable_the_production_resource_set_reads():
    services = load("docker-compose.yaml")["services"]
    env = environment(services["code"])
    missing = (RESOURCE_SET_ENV | INSTANCE_ENV) - {k for k, v in env.items() if v}
    assert not missing, f"the code service does not set {sorted(missing)}"
    assert env["DCAI_ENV"] == "production"
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    # Dagster's queries need psycopg2, named: SQLAlchemy 2.1 would pick psycopg 3.
    assert env["DAGSTER_POSTGRES_URL"].startswith("postgresql+psycopg2://dagster:")
    assert env["DAGSTER_POSTGRES_URL"].endswith("@postgres:5432/dagster")
    # The webserver and the daemon use the same instance.
    for other in ("webserver", "daemon"):
        other_env = environment(services[other])
        for name in INSTANCE_ENV:
            assert other_env.get(name) == env[name], f"{other} has another {name}"


def test_compose_takes_its_passwords_from_the_env_file():
    text = (DEPLOY / "docker-compose.yaml").read_text()
    required = set(re.findall(r"\$\{(\w+):\?", text))
    assert required >= {"POSTGRES_PASSWORD", "DAGSTER_DB_PASSWORD", "MLFLOW_DB_PASSWORD"}
    example = {
        line.split("=", 1)[0]: line.split("=", 1)[1]
        for line in (DEPLOY / ".env.example").read_text().splitlines()
        if line and not line.startswith("#") and "=" in line
    }
    assert required <= set(example), f".env.example lacks {sorted(required - set(example))}"
    assert all(example[name] == "change-me" for name in required), "the example holds real values"
    # No password is written into the compose file itself.
    services = load("docker-compose.yaml")["services"]
    for name, service in services.items():
        for key, value in environment(service).items():
            if "PASSWORD" in key or value.startswith("postgresql"):
                assert "${" in value, f"{name}.{key} is not taken from the env file"


def test_mlflow_keeps_runs_in_postgres_and_artifacts_on_a_volume():
    compose = load("docker-compose.yaml")
    mlflow = compose["services"]["mlflow"]
    assert environment(mlflow)["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql+psycopg2://mlflow:")
    assert environment(mlflow)["MLFLOW_BACKEND_STORE_URI"].endswith("@postgres:5432/mlflow")
    command = mlflow["command"]
    destination = command[command.index("--artifacts-destination") + 1]
    assert f"mlflow-artifacts:{destination}" in mlflow["volumes"]
    assert "mlflow-artifacts" in compose["volumes"]
    # The code service reaches it as mlflow:5000, which MLflow's host check must accept.
    allowed = command[command.index("--allowed-hosts") + 1].split(",")
    assert {"mlflow:5000", "127.0.0.1:5000"} <= set(allowed)


def test_postgres_creates_both_databases_from_the_init_script():
    postgres = load("docker-compose.yaml")["services"]["postgres"]
    mounted = [v for v in postgres["volumes"] if "/docker-entrypoint-initdb.d/" in v]
    assert len(mounted) == 1 and mounted[0].startswith("./postgres-init.sql:")
    sql = (DEPLOY / "postgres-init.sql").read_text()
    for db in ("dagster", "mlflow"):
        assert f"CREATE DATABASE {db} OWNER {db};" in sql
    # Both passwords come from the container's environment, which compose fills from .env.
    for var in ("DAGSTER_DB_PASSWORD", "MLFLOW_DB_PASSWORD"):
        assert re.search(rf"^\\getenv \w+ {var}$", sql, re.MULTILINE)
        assert environment(postgres)[var] == f"${{{var}:?set it in deploy/.env}}"


def test_webserver_and_daemon_load_the_code_server_of_the_workspace():
    services = load("docker-compose.yaml")["services"]
    workspace = load("workspace.yaml")
    ensure_workspace_config(workspace, str(DEPLOY / "workspace.yaml"))  # Dagster's own schema
    (entry,) = workspace["load_from"]
    server = entry["grpc_server"]
    assert server == {"host": "code", "port": 4000, "location_name": "dcai_demo"}
    # The code image's command serves jobs.definitions on that port, on all interfaces.
    cmd = dockerfile_cmd("Dockerfile")
    assert cmd[:3] == ["dagster", "code-server", "start"]
    assert contains_run(cmd, "-p", str(server["port"]))
    assert contains_run(cmd, "-h", "0.0.0.0")
    assert contains_run(cmd, "-m", "jobs.definitions")
    assert "command" not in services["code"]  # the image's command, not another one
    assert services["code"]["image"] == services["webserver"]["image"] == services["daemon"]["image"]
    assert services["webserver"]["command"] == [
        "dagster-webserver",
        *("-h", "0.0.0.0", "-p", "3000", "-w", "workspace.yaml"),
    ]
    assert services["daemon"]["command"][:2] == ["dagster-daemon", "run"]
    # Both find workspace.yaml where the image puts it (next to dagster.yaml in DAGSTER_HOME).
    home = environment(services["code"])["DAGSTER_HOME"]
    assert services["webserver"]["working_dir"] == services["daemon"]["working_dir"] == home
    assert "deploy/workspace.yaml" in (DEPLOY / "Dockerfile").read_text()


def test_services_start_in_order_of_health():
    services = load("docker-compose.yaml")["services"]
    for name in ("mlflow", "code", "webserver", "daemon"):
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy", name
    assert services["code"]["depends_on"]["mlflow"]["condition"] == "service_healthy"
    for name in ("webserver", "daemon"):
        assert services[name]["depends_on"]["code"]["condition"] == "service_healthy"
    assert all("healthcheck" in service for service in services.values())


# --- Helm -------------------------------------------------------------------------------------


def helm_env(values: dict) -> tuple[dict, dict[str, str], dict[str, str]]:
    """The user deployment, its env and the run launcher's envVars, as name -> value."""
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    env = {item["name"]: str(item["value"]) for item in deployment["env"]}
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    run_env = dict(item.split("=", 1) for item in launcher["envVars"])
    return deployment, env, run_env


def test_helm_user_deployment_serves_the_code_location_with_the_resource_sets_env():
    values = load("helm-values.yaml")
    assert values["dagster-user-deployments"]["enabled"] is True
    deployment, env, run_env = helm_env(values)
    missing = RESOURCE_SET_ENV - {k for k, v in env.items() if v}
    assert not missing, f"the user deployment does not set {sorted(missing)}"
    assert env["DCAI_ENV"] == "production"
    assert env["MLFLOW_TRACKING_URI"].startswith("http")
    assert contains_run(deployment["dagsterApiGrpcArgs"], "-m", "jobs.definitions")
    # The workspace points at the deployment's Service and keeps the location's name.
    servers = values["dagsterWebserver"]["workspace"]["servers"]
    assert servers == [{"host": deployment["name"], "port": deployment["port"], "name": "dcai_demo"}]
    # Run pods: the K8sRunLauncher, with the same variables (and the same values).
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert run_env == env
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True
    # The landing directory is a volume the code server and the run pods both mount.
    mounts = {m["mountPath"]: m["name"] for m in deployment["volumeMounts"]}
    assert mounts[env["DCAI_LANDING_DIR"]] in {v["name"] for v in deployment["volumes"]}


def test_helm_uses_an_external_postgres_and_sends_no_telemetry():
    values = load("helm-values.yaml")
    assert values["postgresql"]["enabled"] is False
    assert values["postgresql"]["postgresqlHost"]
    assert values["postgresql"]["postgresqlScheme"] == "postgresql+psycopg2"
    assert values["generatePostgresqlPasswordSecret"] is False
    assert "postgresqlPassword" not in values["postgresql"]
    assert values["telemetry"]["enabled"] is False
    assert values["dagsterDaemon"]["runCoordinator"]["type"] == "QueuedRunCoordinator"


# --- the Dagster instance ---------------------------------------------------------------------


def test_deploy_dagster_yaml_is_a_valid_instance_config(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", "postgresql+psycopg2://dagster:pw@postgres:5432/dagster")
    shutil.copy(DEPLOY / "dagster.yaml", tmp_path / "dagster.yaml")
    config, custom_class = dagster_instance_config(str(tmp_path))
    assert custom_class is None
    assert config["storage"]["postgres"]["postgres_url"] == {"env": "DAGSTER_POSTGRES_URL"}
    assert config["concurrency"]["pools"]["default_limit"] == 1
    assert config["run_retries"]["retry_on_asset_or_op_failure"] is False
    assert config["telemetry"]["enabled"] is False


def render_helm_instance(values: dict) -> dict:
    """The parts of the dagster.yaml the chart writes that decide queues, pools and retries, as its
    templates render them (helpers/instance/_run-coordinator.tpl, _concurrency.tpl and the
    run_retries and run_monitoring blocks of configmap-instance.yaml)."""
    qrc = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    # The chart writes a `config:` block (with max_concurrent_runs, -1 if unset, on older charts)
    # as soon as any value is set; next to `concurrency` that block makes Dagster refuse the
    # instance. So no value may be set.
    assert not [k for k, v in qrc.items() if v not in (None, [], {}, "")], qrc
    concurrency = values["concurrency"]
    assert concurrency["enabled"] is True
    runs, pools = concurrency["runs"], concurrency["pools"]
    retries = values["dagsterDaemon"]["runRetries"]
    monitoring = values["dagsterDaemon"]["runMonitoring"]
    return {
        "run_coordinator": {"module": "dagster.core.run_coordinator", "class": "QueuedRunCoordinator"},
        "concurrency": {
            "pools": {"default_limit": pools["defaultLimit"]},
            "runs": {
                "max_concurrent_runs": runs["maxConcurrentRuns"],
                "tag_concurrency_limits": runs["tagConcurrencyLimits"],
            },
        },
        "run_retries": {
            "enabled": retries["enabled"],
            "max_retries": retries["maxRetries"],
            "retry_on_asset_or_op_failure": retries["retryOnAssetOrOpFailure"],
        },
        "run_monitoring": {
            "enabled": monitoring["enabled"],
            "start_timeout_seconds": monitoring["startTimeoutSeconds"],
            "cancel_timeout_seconds": monitoring["cancelTimeoutSeconds"],
            "max_resume_run_attempts": monitoring["maxResumeRunAttempts"],
            "poll_interval_seconds": monitoring["pollIntervalSeconds"],
            "free_slots_after_run_end_seconds": monitoring["freeSlotsAfterRunEndSeconds"],
        },
        "telemetry": {"enabled": values["telemetry"]["enabled"]},
    }


def queue_pools_and_retries(home: Path, instance_config: dict) -> dict:
    """How a real instance on this config queues runs, limits pools and retries runs (storage
    swapped for SQLite in ``home``: the Postgres storage is not what is compared)."""
    config = {k: v for k, v in instance_config.items() if k != "storage"}
    config["storage"] = {"sqlite": {"base_dir": str(home / "storage")}}
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        concurrency = instance.get_concurrency_config()
        queue = concurrency.run_queue_config
        assert queue is not None, "runs are not queued"
        return {
            "max_concurrent_runs": queue.max_concurrent_runs,
            "tag_concurrency_limits": list(queue.tag_concurrency_limits),
            "pool_default_limit": concurrency.pool_config.default_pool_limit,
            "run_retries": (
                instance.run_retries_enabled,
                instance.run_retries_max_retries,
                instance.run_retries_retry_on_asset_or_op_failure,
            ),
            "run_monitoring": dict(instance.run_monitoring_settings),
            "telemetry": instance.telemetry_enabled,
        }


def test_helm_values_queue_pool_and_retry_like_deploy_dagster_yaml(tmp_path):
    compose_instance = queue_pools_and_retries(tmp_path / "compose", load("dagster.yaml"))
    assert compose_instance == {
        "max_concurrent_runs": 4,
        "tag_concurrency_limits": [
            {"key": "dagster/backfill", "value": {"applyLimitPerUniqueValue": True}, "limit": 2}
        ],
        "pool_default_limit": 1,
        "run_retries": (True, 2, False),
        "run_monitoring": {
            "enabled": True,
            "free_slots_after_run_end_seconds": 60,
            "poll_interval_seconds": 15,
            "start_timeout_seconds": 300,
            "cancel_timeout_seconds": 300,
            "max_resume_run_attempts": 0,
        },
        "telemetry": False,
    }
    helm_instance = queue_pools_and_retries(tmp_path / "helm", render_helm_instance(load("helm-values.yaml")))
    assert helm_instance == compose_instance


@pytest.mark.parametrize("key", ["max_concurrent_runs", "tag_concurrency_limits"])
def test_dagster_refuses_run_coordinator_limits_next_to_pools(tmp_path, key):
    """Why the Helm values leave the queued run coordinator's own limits empty."""
    config = render_helm_instance(load("helm-values.yaml"))
    config["run_coordinator"]["config"] = {key: config["concurrency"]["runs"].pop(key)}
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(dg.DagsterInvalidConfigError, match="incompatible with the `concurrency > runs`"):
        dagster_instance_config(str(tmp_path))
