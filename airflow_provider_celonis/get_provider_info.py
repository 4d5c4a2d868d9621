"""Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``)."""

from __future__ import annotations

from typing import Any

from airflow_provider_celonis import __version__

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden_fields": ["schema", "port"],
    "relabeling": {
        "host": "Team URL",
        "login": "OAuth client id",
        "password": "Application key, API key or OAuth client secret",
    },
    "placeholders": {
        "host": "https://myteam.eu-1.celonis.cloud",
        "login": "only for auth type 'oauth'",
        "password": "the key or client secret",
    },
}

_STRING = {"type": ["string", "null"]}

CELONIS_CONN_FIELDS: dict[str, Any] = {
    "auth_type": {
        "label": "Auth type",
        "description": "app_key (Authorization: AppKey), api_key (Bearer user key) or oauth (client credentials)",
        "schema": {"type": ["string", "null"], "enum": ["app_key", "api_key", "oauth"], "default": "app_key"},
    },
    "data_pool_id": {
        "label": "Default data pool id",
        "description": "Used when an operator does not name a pool (the id in the data pool's URL)",
        "schema": _STRING,
    },
    "oauth_scopes": {
        "label": "OAuth scopes",
        "description": "Space-separated; integration.data-pools or integration.data-pools:data_push",
        "schema": {"type": ["string", "null"], "default": "integration.data-pools"},
    },
    "oauth_client_auth": {
        "label": "OAuth client authentication",
        "description": "basic (HTTP Basic, default) or post (client_id/client_secret form fields)",
        "schema": {"type": ["string", "null"], "enum": ["basic", "post"], "default": "basic"},
    },
    "api_base_path": {
        "label": "API base path",
        "description": "/data-ingestion/api (current) or /integration/api (older teams)",
        "schema": {
            "type": ["string", "null"],
            "enum": ["/data-ingestion/api", "/integration/api"],
            "default": "/data-ingestion/api",
        },
    },
    "verify": {
        "label": "Verify TLS",
        "description": "true, false, or the path of a CA bundle",
        "schema": {"type": ["string", "null"], "default": "true"},
    },
    "retries": {
        "label": "Retries per call",
        "description": "Retries of a failed call (connection errors, 429, 502/503/504), with backoff",
        "schema": {"type": ["integer", "null"], "default": 5},
    },
    "timeout": {
        "label": "Read timeout (seconds)",
        "schema": {"type": ["number", "null"], "default": 60},
    },
}


INGESTION_UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden_fields": ["schema", "port"],
    "relabeling": {"host": "Team URL", "login": "Access key", "password": "Secret key"},
    "placeholders": {
        "host": "https://myteam.eu-1.celonis.cloud",
        "login": "the data connection's S3 access key",
        "password": "the data connection's S3 secret key",
    },
}

INGESTION_CONN_FIELDS: dict[str, Any] = {
    "connection_id": {
        "label": "Data connection id",
        "description": "The Celonis data connection the files go to (the id in its URL)",
        "schema": {"type": ["string", "null"]},
    },
    "endpoint_path": {
        "label": "Endpoint path",
        "schema": {"type": ["string", "null"], "default": "/api/data-ingestion"},
    },
    "bucket": {"label": "Bucket", "schema": {"type": ["string", "null"], "default": "continuous"}},
    "region": {
        "label": "Region",
        "description": "S3 signing region of the team, e.g. us-east-1; needed unless the team URL is on US-1",
        "schema": {"type": ["string", "null"]},
    },
    "verify": CELONIS_CONN_FIELDS["verify"],
}


def _declarative(behaviour: dict[str, Any]) -> dict[str, Any]:
    """Provider info spells ``hidden-fields`` in kebab case (hooks' ``get_ui_field_behaviour`` does not)."""
    return {key.replace("_", "-"): value for key, value in behaviour.items()}


def _option(description: str, default: float) -> dict[str, Any]:
    return {
        "description": description,
        "version_added": "0.1.0",
        "type": "float",
        "example": None,
        "default": str(default),
    }


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-celonis",
        "name": "Celonis",
        "description": "Push data into Celonis data pools: Data Push API, Standard Data Ingestion API, "
        "and a local Celonis emulator.",
        "versions": [__version__],
        "connection-types": [
            {
                "hook-class-name": "airflow_provider_celonis.hooks.celonis.CelonisHook",
                "hook-name": "Celonis",
                "connection-type": "celonis",
                "ui-field-behaviour": _declarative(UI_FIELD_BEHAVIOUR),
                "conn-fields": CELONIS_CONN_FIELDS,
            },
            {
                "hook-class-name": "airflow_provider_celonis.hooks.data_ingestion.CelonisDataIngestionHook",
                "hook-name": "Celonis Data Ingestion",
                "connection-type": "celonis_data_ingestion",
                "ui-field-behaviour": _declarative(INGESTION_UI_FIELD_BEHAVIOUR),
                "conn-fields": INGESTION_CONN_FIELDS,
            },
        ],
        "extra-links": [
            "airflow_provider_celonis.operators.data_push.CelonisDataPushJobLink",
            "airflow_provider_celonis.operators.links.CelonisDataJobLink",
            "airflow_provider_celonis.operators.links.CelonisDataModelLink",
        ],
        "hooks": [
            {
                "integration-name": "Celonis",
                "python-modules": [
                    "airflow_provider_celonis.hooks.celonis",
                    "airflow_provider_celonis.hooks.data_ingestion",
                    "airflow_provider_celonis.hooks.integration",
                ],
            }
        ],
        "operators": [
            {
                "integration-name": "Celonis",
                "python-modules": [
                    "airflow_provider_celonis.operators.data_push",
                    "airflow_provider_celonis.operators.data_ingestion",
                    "airflow_provider_celonis.operators.data_job",
                    "airflow_provider_celonis.operators.data_model",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "Celonis",
                "python-modules": [
                    "airflow_provider_celonis.sensors.data_push",
                    "airflow_provider_celonis.sensors.integration",
                ],
            }
        ],
        "triggers": [
            {
                "integration-name": "Celonis",
                "python-modules": [
                    "airflow_provider_celonis.triggers.data_push",
                    "airflow_provider_celonis.triggers.integration",
                ],
            }
        ],
        "transfers": [
            {
                "source-integration-name": "Common SQL",
                "target-integration-name": "Celonis",
                "python-module": "airflow_provider_celonis.transfers.sql_to_celonis",
            }
        ],
        "config": {
            "celonis": {
                "description": "Settings of the Celonis provider.",
                "options": {
                    "trigger_requests_per_second": _option(
                        "Requests per second that all Celonis triggers of one triggerer make together.", 10.0
                    ),
                    "status_log_interval": _option(
                        "Seconds between 'still <status>' log lines while a job or run keeps its status.",
                        60.0,
                    ),
                    "reconcile_grace_seconds": _option(
                        "Seconds a lost execute or reload answer is looked for in Celonis' status before the "
                        "call is sent again (a status lagging longer would make the resend a second run).",
                        120.0,
                    ),
                },
            }
        },
        "integrations": [
            {
                "integration-name": "Celonis",
                "external-doc-url": "https://developer.celonis.com/",
                "tags": ["service"],
            }
        ],
    }
