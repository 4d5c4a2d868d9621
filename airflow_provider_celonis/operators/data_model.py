"""``DataModelLoadOperator``: load a data model (full, from cache, or some tables) and wait for the load."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_celonis.hooks.errors import CelonisConfigError, CelonisDataModelLoadError
from airflow_provider_celonis.hooks.executions import (
    Baseline,
    Verdict,
    iso,
    judge_load,
    load_baseline,
    load_in_progress,
)
from airflow_provider_celonis.hooks.integration import pick
from airflow_provider_celonis.lineage import report_integration_lineage
from airflow_provider_celonis.operators.links import CelonisDataModelLink
from airflow_provider_celonis.operators.remote_run import CelonisRunOperator
from airflow_provider_celonis.triggers.integration import DataModelLoadTrigger


class DataModelLoadOperator(CelonisRunOperator):
    """Load a data model and wait: SUCCESS succeeds, WARNING succeeds with Celonis' message logged, ERROR
    and CANCELED fail with it. The XCom holds the load's id, status, type, start, end and message.

    Only a load other than the one current before this task's reload counts (``dataLoadId``): the
    previous load's SUCCESS, which Celonis may still show for a moment, is never taken for this one's.
    Celonis has no call to cancel a load: at the timeout the task fails and the load goes on.

    :param data_model: the data model's id or name (templated).
    :param data_pool_id: its data pool (templated); defaults to the connection's ``data_pool_id``.
    :param tables: load only these data model tables (ids, names or aliases; templated): a partial load.
        Default: the whole model.
    :param force_complete: for a whole-model load, a complete reload (default) or ``False`` to load from
        cache. Not used with ``tables``.
    :param wait_for_completion, deferrable, poll_interval, timeout, if_running: as ``DataJobOperator``
        (``if_running="wait"``: a load already in progress is waited for first).
    """

    what = "data model"
    template_fields: Sequence[str] = ("data_model", "data_pool_id", "tables")
    template_fields_renderers = {"tables": "json"}
    ui_color = "#1e3a8a"
    ui_fgcolor = "#ffffff"
    operator_extra_links = (CelonisDataModelLink(),)

    def __init__(
        self,
        *,
        data_model: str,
        tables: Sequence[str] | None = None,
        force_complete: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.data_model = data_model
        self.tables = tables
        self.force_complete = force_complete

    def resolve(self, pool: str) -> dict[str, Any]:
        if not str(self.data_model or "").strip():
            raise CelonisConfigError("data_model is empty: give the data model's id or name")
        model = self.hook.find_data_model(str(self.data_model), pool)
        target: dict[str, Any] = {"id": str(model["id"]), "name": model.get("name")}
        if self.tables is not None:
            refs = [self.tables] if isinstance(self.tables, str) else [str(t) for t in self.tables]
            if not refs:
                raise CelonisConfigError(
                    "tables is empty: name at least one data model table, or leave it out"
                )
            known = self.hook.list_data_model_tables(target["id"], pool)
            where = f"Data model {model.get('name')!r} ({model['id']})"
            chosen = [pick("table", ref, known, where, "name", "alias", "aliasOrName") for ref in refs]
            target["tables"] = [str(t["id"]) for t in chosen]
            target["table_names"] = [t.get("name") for t in chosen]
        return target

    def status(self) -> dict[str, Any] | None:
        return self.hook.data_model_load(self._target["id"], self._pool)

    def in_progress(self, entry: dict[str, Any] | None) -> bool:
        return load_in_progress(entry)

    def judge(self, entry: dict[str, Any] | None, baseline: Baseline) -> Verdict:
        return judge_load(entry, baseline)

    def baseline_of(self, entry: dict[str, Any] | None) -> Baseline:
        return load_baseline(entry)

    def start(self, baseline: Baseline) -> None:
        if "tables" in self._target:
            self.hook.partial_load_data_model(
                self._target["id"], self._target["tables"], baseline, self._pool
            )
        else:
            self.hook.reload_data_model(self._target["id"], baseline, self.force_complete, self._pool)

    def trigger(self, baseline: Baseline, **kwargs: Any) -> DataModelLoadTrigger:
        assert self._pool is not None
        # Nothing to cancel a load with; at the deadline the trigger says so (it owns the load).
        kwargs["cancel_at_deadline"] = kwargs.get("cancel_on_kill", True)
        kwargs["cancel_on_kill"] = False
        return DataModelLoadTrigger(self._target["id"], self._pool, baseline.as_dict(), **kwargs)

    def cancel(self) -> None:
        raise NotImplementedError("Celonis has no documented call to cancel a data model load")

    def result(self, entry: dict[str, Any]) -> dict[str, Any]:
        status = entry.get("loadStatus")
        if status == "WARNING":
            self.log.warning(
                "Celonis data model %s loaded with a WARNING: %s", self._target["id"], entry.get("message")
            )
        else:
            self.log.info("Celonis data model %s load ended %s", self._target["id"], status)
        outcome = {
            **self._summary(),
            "data_model_id": self._target["id"],
            "load_id": entry.get("dataLoadId"),
            "status": status,
            "load_type": entry.get("loadType"),
            "start": iso(entry.get("startDate")),
            "end": iso(entry.get("endDate")),
            "message": entry.get("message"),
            "tables": self._target.get("table_names"),
        }
        report_integration_lineage(self, outcome)
        return outcome

    def failure(self, entry: dict[str, Any] | None, message: str) -> Exception:
        status = str((entry or {}).get("loadStatus") or "UNKNOWN")
        return CelonisDataModelLoadError(
            self._target.get("id", "?"), status, (entry or {}).get("message") or message
        )
