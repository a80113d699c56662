-- Run once by the official postgres image, on an empty data volume, as the superuser
-- (docker-entrypoint-initdb.d). Two databases, each owned by its own login role: Dagster's
-- instance storage and MLflow's tracking and registry store.
--
-- Passwords are not in this file: psql's \getenv (psql 15+) reads them from the container's
-- environment, which compose fills from deploy/.env. An unset variable leaves the psql variable
-- unset, so the statement fails and initialisation stops (ON_ERROR_STOP) instead of creating a
-- role without a password.
\getenv dagster_password DAGSTER_DB_PASSWORD
\getenv mlflow_password MLFLOW_DB_PASSWORD

CREATE ROLE dagster LOGIN PASSWORD :'dagster_password';
CREATE DATABASE dagster OWNER dagster;

CREATE ROLE mlflow LOGIN PASSWORD :'mlflow_password';
CREATE DATABASE mlflow OWNER mlflow;
