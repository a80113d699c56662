# A small MLflow 3.x tracking server: runs and the model registry in PostgreSQL, artifacts proxied
# by the server into --artifacts-destination (a named volume in compose). Clients need no storage
# credentials, only MLFLOW_TRACKING_URI. Build: docker build -f deploy/mlflow.Dockerfile deploy
FROM python:3.11-slim

# The same range as the project's client (pyproject.toml). Add s3fs/boto3 here for an
# --artifacts-destination on s3:// (Kubernetes).
ARG MLFLOW_SPEC="mlflow>=3.17,<4"

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    MLFLOW_DISABLE_TELEMETRY=true \
    DO_NOT_TRACK=true

# psycopg2: the backend store URI names it (postgresql+psycopg2://), as SQLAlchemy 2.1 would pick
# psycopg 3 for a bare postgresql://.
RUN pip install "${MLFLOW_SPEC}" "psycopg2-binary>=2.9"

# /mlflow/artifacts exists in the image, owned by the user, so a fresh named volume mounted there
# is writable by it.
RUN groupadd --system --gid 10002 mlflow \
    && useradd --system --uid 10002 --gid mlflow --create-home --home-dir /home/mlflow mlflow \
    && mkdir -p /mlflow/artifacts \
    && chown -R mlflow:mlflow /mlflow

USER mlflow
WORKDIR /mlflow
EXPOSE 5000

# The backend store comes from MLFLOW_BACKEND_STORE_URI (what --backend-store-uri reads), so its
# password is not on the command line; without it MLflow falls back to SQLite in /mlflow.
CMD ["mlflow", "server", "--artifacts-destination", "/mlflow/artifacts", "--host", "0.0.0.0", "--port", "5000"]
