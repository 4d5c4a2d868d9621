"""``DataJobSensor`` and ``DataModelLoadSensor``: wait for a data job execution or a data model load to end,
without starting anything.

Which run counts: the one in progress when the sensor first looks, else the next one to start; with
``started_after`` (templated, e.g. ``"{{ data_interval_end }}"``), any run that started at or after that
moment, even one that already ended. Without ``started_after`` the first look is taken by each sensor
process: in ``reschedule`` mode give ``started_after`` so every poke judges the same run.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    conf,
)

from airflow_provider_celonis.hooks.celonis import CelonisHook
from airflow_provider_celonis.hooks.errors import CelonisConfigError
from airflow_provider_celonis.hooks.executions import (
    Baseline,
    Verdict,
    epoch_ms,
    execution_baseline,
    execution_in_progress,
    judge_execution,
    judge_load,
    load_baseline,
    load_in_progress,
)
from airflow_provider_celonis.sensors.base import CelonisSensor
from airflow_provider_celonis.triggers.integration import DataJobTrigger, DataModelLoadTrigger, _RunTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context


class _RunSensor(CelonisSensor):
    what = ""
    ui_color = "#1e3a8a"
    ui_fgcolor = "#ffffff"

    def __init__(
        self,
        *,
        data_pool_id: str | None = None,
        started_after: str | datetime | None = None,
        celonis_conn_id: str = CelonisHook.default_conn_name,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.data_pool_id = data_pool_id
        self.started_after = started_after
        self.celonis_conn_id = celonis_conn_id
        self.deferrable = deferrable
        self._id: str | None = None
        self._pool: str | None = None
        self._baseline: Baseline | None = None

    @cached_property
    def hook(self) -> CelonisHook:
        return CelonisHook(self.celonis_conn_id)

    # -- what a subclass provides
    def find(self, pool: str) -> str:
        raise NotImplementedError

    def status(self) -> dict[str, Any] | None:
        raise NotImplementedError

    def judge(self, entry: dict[str, Any] | None, baseline: Baseline) -> Verdict:
        raise NotImplementedError

    def first_baseline(self, entry: dict[str, Any] | None) -> Baseline:
        raise NotImplementedError

    def trigger_class(self) -> type[_RunTrigger]:
        raise NotImplementedError

    def failure(self, entry: dict[str, Any] | None, message: str) -> str:
        raise NotImplementedError

    # -- the wait
    def _after(self) -> int | None:
        if self.started_after in (None, ""):
            return None
        value = self.started_after
        after = epoch_ms(value.isoformat() if isinstance(value, datetime) else value)
        if after is None:
            raise CelonisConfigError(f"started_after must be a datetime or an ISO 8601 string, got {value!r}")
        return after

    def poke(self, context: Context) -> bool:  # noqa: ARG002 - Airflow's signature
        if self._id is None:
            self._pool = self.hook.resolve_pool(self.data_pool_id)
            self._id = self.find(self._pool)
        entry = self.status()
        if self._baseline is None:
            after = self._after()
            self._baseline = Baseline(None, after) if after is not None else self.first_baseline(entry)
        verdict = self.judge(entry, self._baseline)
        self.log.info("Celonis %s %s: %s", self.what, self._id, verdict.value)
        if verdict is Verdict.FAILED:
            raise AirflowFailException(self.failure(entry, "failed"))
        return verdict is Verdict.SUCCEEDED

    def trigger(self, **kwargs: Any) -> _RunTrigger:
        assert self._id is not None
        assert self._pool is not None
        baseline = (self._baseline or Baseline()).as_dict()
        return self.trigger_class()(
            self._id, self._pool, baseline, celonis_conn_id=self.celonis_conn_id, **kwargs
        )

    def succeeded(self, event: dict[str, Any]) -> None:
        self.log.info("Celonis %s %s ended %s", self.what, event.get("id"), event.get("run_status"))

    def failed(self, event: dict[str, Any]) -> str:
        self._id, self._pool = event.get("id"), event.get("data_pool_id")
        return self.failure(event.get("entry") or None, str(event.get("message")))


class DataJobSensor(_RunSensor):
    """Succeeds when a data job execution ends SUCCESS; fails (no retry) on FAIL/CANCEL/SKIPPED with the
    failed tasks' log messages. Poke, reschedule, or deferred (``deferrable=True``); never cancels anything.

    :param data_job: the data job's id or name (templated).
    :param started_after: only an execution that started at or after this moment counts (templated).
    """

    what = "data job"
    template_fields: Sequence[str] = ("data_job", "data_pool_id", "started_after")

    def __init__(self, *, data_job: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_job = data_job

    def find(self, pool: str) -> str:
        return str(self.hook.find_data_job(str(self.data_job), pool)["id"])

    def status(self) -> dict[str, Any] | None:
        assert self._id is not None
        return self.hook.data_job_status(self._id, self._pool)

    def judge(self, entry: dict[str, Any] | None, baseline: Baseline) -> Verdict:
        return judge_execution(entry, baseline)

    def first_baseline(self, entry: dict[str, Any] | None) -> Baseline:
        return Baseline() if execution_in_progress(entry) else execution_baseline(entry)

    def trigger_class(self) -> type[_RunTrigger]:
        return DataJobTrigger

    def failure(self, entry: dict[str, Any] | None, message: str) -> str:
        status = (entry or {}).get("status") or message
        try:
            logs = self.hook.failed_task_messages(
                str(self._id), self._pool, (entry or {}).get("lastExecutionStartDate")
            )
        except Exception as exc:  # noqa: BLE001 - the failure is reported even if its logs cannot be read
            logs = [f"(could not read the failed tasks' logs: {exc})"]
        return f"Celonis data job {self._id} ended {status}: {'; '.join(logs) or 'no log messages'}"


class DataModelLoadSensor(_RunSensor):
    """Succeeds when a data model load ends SUCCESS or WARNING (logged); fails (no retry) on ERROR or
    CANCELED with Celonis' message. Poke, reschedule, or deferred; never starts or cancels a load.

    :param data_model: the data model's id or name (templated).
    :param started_after: only a load that started at or after this moment counts (templated).
    """

    what = "data model"
    template_fields: Sequence[str] = ("data_model", "data_pool_id", "started_after")

    def __init__(self, *, data_model: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_model = data_model

    def find(self, pool: str) -> str:
        return str(self.hook.find_data_model(str(self.data_model), pool)["id"])

    def status(self) -> dict[str, Any] | None:
        assert self._id is not None
        return self.hook.data_model_load(self._id, self._pool)

    def judge(self, entry: dict[str, Any] | None, baseline: Baseline) -> Verdict:
        verdict = judge_load(entry, baseline)
        if verdict is Verdict.SUCCEEDED and (entry or {}).get("loadStatus") == "WARNING":
            self.log.warning(
                "Celonis data model %s loaded with a WARNING: %s", self._id, (entry or {}).get("message")
            )
        return verdict

    def first_baseline(self, entry: dict[str, Any] | None) -> Baseline:
        return Baseline() if load_in_progress(entry) else load_baseline(entry)

    def trigger_class(self) -> type[_RunTrigger]:
        return DataModelLoadTrigger

    def failure(self, entry: dict[str, Any] | None, message: str) -> str:
        status = (entry or {}).get("loadStatus") or message
        return f"Celonis data model {self._id} load ended {status}: {(entry or {}).get('message') or 'no message'}"
