"""The demo in no-human-access mode: no raw value of the data reaches any Dagster metadata, log
message or check result, nor any MLflow param, tag, metric, dataset or artifact. The control,
in test_demo.py (beside the ordinary demo run, which one pytest-xdist worker then runs once),
searches the ordinary demo run the same way and finds values (so the search can fail)."""

from __future__ import annotations

import base64
import re
import tempfile
from collections import Counter
from pathlib import Path

import dagster as dg
import pandas as pd

from dcai_assets.spec import PrivacySpec

MIN_GROUP_SIZE = PrivacySpec().min_group_size  # the demo's setting: the default


class RowKeys:
    """Finds a row's key as a table row, a CSV line or a JSON list shows it: carrier, flight
    number, then origin or tail number, for (carrier, flight, origin/tail) triples of the data
    (an aggregate such as ``| carrier | EV | 1234 | 0.81 |`` is not one)."""

    def __init__(self, data: pd.DataFrame) -> None:
        self.triples = set(zip(data["carrier"], data["flight"], data["origin"], strict=True))
        self.triples |= set(zip(data["carrier"], data["flight"], data["tailnum"], strict=True))
        carriers = "|".join(sorted({re.escape(c) for c in data["carrier"] if c}))
        sep = r"[\s|,'\"\]\[:;]{1,6}"
        self.pattern = re.compile(
            rf"(?<![A-Za-z0-9])({carriers}){sep}(\d{{1,4}}){sep}([A-Z0-9]{{3,6}})(?![A-Za-z0-9])"
        )

    def search(self, text: str) -> list[str]:
        return [m.group(0) for m in self.pattern.finditer(text) if m.groups() in self.triples]


def distinctive_values(landing: Path) -> tuple[set[str], RowKeys]:
    """Raw values no aggregate may contain, from every file that landed: every tail number,
    every exact departure hour, and every other text value held by fewer than ``MIN_GROUP_SIZE``
    rows (e.g. an injected '1576 mi'); and a finder of rows' keys."""
    frames = []
    for path in sorted(landing.iterdir()):
        if path.suffix == ".csv":
            frames.append(pd.read_csv(path, dtype=str, keep_default_na=False))
        elif path.suffix == ".parquet":
            frames.append(pd.read_parquet(path).astype(str))
    data = pd.concat(frames, ignore_index=True)
    values: set[str] = set()
    values |= {v for v in data["tailnum"] if len(v) >= 5}
    for hour in set(data["time_hour"]):
        if hour:
            stamp = pd.Timestamp(hour)
            values |= {hour, str(stamp), stamp.isoformat(), str(stamp.tz_localize(None))}
    counts = Counter(v for column in data.columns for v in data[column])
    for value, n in counts.items():
        if n < MIN_GROUP_SIZE and len(value) >= 4 and not _number(value):
            values.add(value)
    return values, RowKeys(data)


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def dagster_texts(home: Path) -> dict[str, str]:
    """Every event of every run (materialization, observation and check metadata, check
    descriptions, log messages, failures), serialized, plus every run's tags and every captured
    compute log under the instance: what the UI can show."""
    from dagster._serdes import serialize_value

    texts: dict[str, str] = {}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for run in instance.get_runs():
            records = instance.all_logs(run.run_id)
            texts[f"run {run.run_id} events"] = "\n".join(serialize_value(r) for r in records)
            texts[f"run {run.run_id} messages"] = "\n".join(r.user_message or "" for r in records)
            texts[f"run {run.run_id} tags"] = repr(run.tags)
    for path in home.rglob("*"):
        if path.is_file() and path.suffix in (".out", ".err", ".complete", ".log", ".txt"):
            texts[str(path.relative_to(home))] = path.read_text(errors="replace")
    return texts


def mlflow_texts(tracking_uri: str) -> dict[str, str]:
    """Every MLflow run's params, tags, metrics and dataset inputs, every registered version's
    tags, and every artifact, downloaded (binary files read as Latin-1: a pickled category is
    found too)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    texts: dict[str, str] = {}
    experiments = client.search_experiments()
    runs = client.search_runs([e.experiment_id for e in experiments])
    assert runs, "the demo logged no MLflow run"
    for run in runs:
        rid = run.info.run_id
        texts[f"mlflow run {rid} params"] = repr(run.data.params)
        texts[f"mlflow run {rid} tags"] = repr(run.data.tags)
        texts[f"mlflow run {rid} metrics"] = repr(run.data.metrics)
        texts[f"mlflow run {rid} inputs"] = repr(
            [
                (d.dataset.name, d.dataset.source, d.dataset.schema, d.dataset.profile)
                for d in run.inputs.dataset_inputs
            ]
        )
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(client.download_artifacts(rid, "", tmp))
            for path in local.rglob("*"):
                if path.is_file():
                    texts[f"mlflow run {rid} artifact {path.relative_to(local)}"] = path.read_bytes().decode(
                        "latin-1"
                    )
    for model in client.search_registered_models():
        for version in client.search_model_versions(f"name='{model.name}'"):
            texts[f"mlflow {model.name} v{version.version}"] = repr(version.tags) + str(version.description)
    return texts


TOKEN = re.compile(r"[A-Za-z0-9]+")
STAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:Z|\+00:00)?")


class ValueSearch:
    """Which of ``values`` a text contains, as whole words: alphanumeric values by the text's
    tokens, timestamps by the text's timestamps, the few others (e.g. '1576 mi') one by one."""

    def __init__(self, values: set[str]) -> None:
        self.tokens = {v for v in values if TOKEN.fullmatch(v)}
        self.stamps = {v for v in values if STAMP.fullmatch(v)}
        others = sorted(values - self.tokens - self.stamps)
        self.others = [(v, re.compile(rf"(?<![A-Za-z0-9]){re.escape(v)}(?![A-Za-z0-9])")) for v in others]

    def search(self, text: str) -> list[str]:
        hits = set(TOKEN.findall(text)) & self.tokens
        stamps = STAMP.findall(text)
        hits |= (set(stamps) | {t[:19] for t in stamps}) & self.stamps
        hits |= {v for v, p in self.others if v in text and p.search(text)}
        return sorted(hits)


DATA_URI = re.compile(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)")


def with_images_decoded(text: str) -> str:
    """``text`` followed by the SVG of every base64 image it embeds (a chart's labels are shown)."""
    images = [base64.b64decode(m).decode("utf-8", errors="replace") for m in DATA_URI.findall(text)]
    return "\n".join([text, *images])


def leaks(texts: dict[str, str], values: set[str], keys: RowKeys) -> dict[str, list[str]]:
    """Per text (its embedded images decoded): the distinctive raw values and row keys in it."""
    search = ValueSearch(values)
    found: dict[str, list[str]] = {}
    for where, text in texts.items():
        text = with_images_decoded(text)
        hits = search.search(text)[:10] + keys.search(text)[:5]
        if hits:
            found[where] = hits
    return found


def everything_shown(run) -> dict[str, str]:
    return {
        **dagster_texts(run.home),
        **mlflow_texts(f"sqlite:///{run.data / 'mlflow' / 'mlflow.db'}"),
    }


def test_no_raw_value_reaches_metadata_logs_or_mlflow_in_no_human_access_mode(demo_private_run):
    out, data = demo_private_run.stdout, demo_private_run.data
    values, key = distinctive_values(data / "landing" / "flights")
    assert len(values) > 1000  # thousands of tail numbers and hours: the search has teeth
    texts = everything_shown(demo_private_run)
    assert any("materialization" in k or "events" in k for k in texts)
    assert any(k.startswith("mlflow run") and "artifact" in k for k in texts)
    found = leaks(texts, values, key)
    assert not found, f"raw values shown in no-human-access mode: {dict(list(found.items())[:10])}"
    # The pipeline still ran through every asset, and said what it withheld.
    assert "models:/flights_model/2: trained on" in out
    assert "importance scores of the models:/flights_model/2 training rows" in out
    assert "withheld: no-human-access mode" in out
    # The rows themselves stay in the lake, as data.
    assert (data / "lake" / "flights" / "importance_scores.parquet").exists()
