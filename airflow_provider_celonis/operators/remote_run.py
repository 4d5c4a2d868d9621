"""What ``DataJobOperator`` and ``DataModelLoadOperator`` share: start a run in Celonis once, and wait for it.

The lifecycle, written once:

1. resolve names to ids and check every input (nothing runs before that);
2. a retried try finds the run its earlier try started (``task_state_store``, Airflow >= 3.3) and waits for
   it instead of starting another;
3. a run someone else started is waited for first (logged), or refused with ``if_running="fail"``;
4. the status before the start is the ``Baseline``: only a run newer than it can end this task, so the
   previous run's SUCCESS is never taken for ours;
5. wait in the worker or deferred in the triggerer, with the timeout enforced there (cancel where Celonis
   can cancel), ``on_kill`` cancels.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.common.compat.sdk import BaseOperator, conf

from airflow_provider_celonis.hooks.celonis import CelonisHook
from airflow_provider_celonis.hooks.errors import (
    CelonisConfigError,
    CelonisConflictError,
    CelonisError,
    CelonisTimeoutError,
)
from airflow_provider_celonis.hooks.executions import Baseline, Verdict
from airflow_provider_celonis.operators.links import XCOM_RUN_KEY
from airflow_provider_celonis.task_state import mark_finished, was_finished
from airflow_provider_celonis.triggers.base import DEFER_MARGIN, CelonisStatusTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context

#: How long a started run may take to show in Celonis' status before the task gives up on it.
APPEAR_TIMEOUT = 600.0
IF_RUNNING = ("wait", "fail")
STATE_KEY = "celonis_run"
#: How long refused starts (409: a run in progress) are retried without a ``timeout``.
START_REFUSED_SECONDS = 3600.0


class CelonisRunOperator(BaseOperator):
    """Base of the operators that start one run of something in Celonis and wait for its end."""

    #: "data job" / "data model": what messages call the target.
    what: ClassVar[str] = ""

    def __init__(
        self,
        *,
        celonis_conn_id: str = CelonisHook.default_conn_name,
        data_pool_id: str | None = None,
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 10.0,
        timeout: float | None = None,
        if_running: str = "wait",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if if_running not in IF_RUNNING:
            raise CelonisConfigError(f"if_running must be one of {', '.join(IF_RUNNING)}, got {if_running!r}")
        if poll_interval <= 0:
            raise CelonisConfigError(
                f"poll_interval must be a positive number of seconds, got {poll_interval!r}"
            )
        self.celonis_conn_id = celonis_conn_id
        self.data_pool_id = data_pool_id
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.timeout_seconds = timeout
        self.if_running = if_running
        self._target: dict[str, Any] = {}
        self._pool: str | None = None
        self._started = False
        self._published: dict[str, Any] | None = None

    @cached_property
    def hook(self) -> CelonisHook:
        return CelonisHook(self.celonis_conn_id)

    # -- what a subclass provides -----------------------------------------------------------------

    def resolve(self, pool: str) -> dict[str, Any]:
        """Look the target up and check every input; returns what ``start``/``result`` need (``id``, ``name``)."""
        raise NotImplementedError

    def status(self) -> dict[str, Any] | None:
        """The target's status entry now (a data job's ``EntityStatus``, a model's current load)."""
        raise NotImplementedError

    def in_progress(self, entry: dict[str, Any] | None) -> bool:
        raise NotImplementedError

    def judge(self, entry: dict[str, Any] | None, baseline: Baseline) -> Verdict:
        raise NotImplementedError

    def baseline_of(self, entry: dict[str, Any] | None) -> Baseline:
        raise NotImplementedError

    def start(self, baseline: Baseline) -> None:
        raise NotImplementedError

    def trigger(self, baseline: Baseline, **kwargs: Any) -> CelonisStatusTrigger:
        raise NotImplementedError

    def cancel(self) -> None:
        """Cancel our run; raise ``NotImplementedError`` where Celonis cannot."""
        raise NotImplementedError

    def result(self, entry: dict[str, Any]) -> dict[str, Any]:
        """The XCom of a finished run (raises for a failed one)."""
        raise NotImplementedError

    def failure(self, entry: dict[str, Any] | None, message: str) -> Exception:
        raise NotImplementedError

    # -- the lifecycle ----------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any] | None:
        pool = self._pool = self.hook.resolve_pool(self.data_pool_id)
        self._target = self.resolve(pool)
        self._publish(context)
        resumed = self._resume(context)
        if resumed is not None:
            return self._wait(context, resumed)
        return self._start_when_free(context)

    def _start_when_free(self, context: Context) -> dict[str, Any] | None:
        store = context.get("task_state_store")
        # A refused start (409) means a run is in progress, which the status may not show yet (how long it
        # lags is not promised): wait, growing the pause, up to the timeout (else START_REFUSED_SECONDS).
        deadline = time.monotonic() + (self.timeout_seconds or START_REFUSED_SECONDS)
        delay, refusals = 1.0, 0
        while True:
            entry = self.status()
            if self.in_progress(entry):
                self._wait_for_other(entry)
                entry = self.status()
            # The status may lag behind a run that started just before this read: only runs that start
            # after the server's clock passed this read's second count (see past_server_second).
            baseline = Baseline(self.baseline_of(entry).run, self.hook.past_server_second())
            if store is not None:  # before the send: a try killed mid-start is taken over by the next one
                store.set(STATE_KEY, {"id": self._target["id"], "baseline": baseline.as_dict()})
            try:
                self.start(baseline)
            except CelonisConflictError as err:
                refusals += 1
                if self.if_running == "fail":
                    raise CelonisError(
                        f"Celonis refused to start {self.what} {self._target['id']} ({err}): a run is in "
                        "progress and if_running='fail'"
                    ) from err
                if time.monotonic() + delay > deadline:
                    raise CelonisError(
                        f"Celonis refused to start {self.what} {self._target['id']} {refusals} times over "
                        f"{self.timeout_seconds or START_REFUSED_SECONDS:.0f}s: another run was always in progress"
                    ) from err
                self.log.warning("Celonis refused the start (%s): a run is in progress; waiting for it", err)
                time.sleep(delay)
                delay = min(self.poll_interval, delay * 2)
                continue
            break
        self._started = True
        return self._wait(context, baseline)

    def _wait_for_other(self, entry: dict[str, Any] | None) -> None:
        """A run started elsewhere is in progress: wait for its end (or refuse, ``if_running="fail"``)."""
        label = f"{self.what} {self._target['name']!r} ({self._target['id']})"
        if self.if_running == "fail":
            raise CelonisError(f"Celonis {label} is already running and if_running='fail'")
        self.log.info("%s is already running (started elsewhere); waiting for it to end first", label)
        other = self.baseline_of(None)  # the one in progress: its end is what we wait for
        del entry
        if self.deferrable:
            self._defer(other, "resume_when_free", owned=False, appear_by=None)
        self._wait_sync(other, owned=False)

    def resume_when_free(
        self, context: Context, event: dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """After someone else's run ended (deferred wait): start ours."""
        self.log.info(
            "The other %s run ended (%s); starting ours", self.what, (event or {}).get("run_status")
        )
        self._pool = self.hook.resolve_pool(self.data_pool_id)
        self._target = self.resolve(self._pool)
        return self._start_when_free(context)

    def _resume(self, context: Context) -> Baseline | None:
        """An earlier try's run still going (or done): its baseline, to wait for it instead of starting anew."""
        store = context.get("task_state_store")
        saved = store.get(STATE_KEY) if store is not None else None
        if not isinstance(saved, Mapping) or saved.get("id") != self._target["id"]:
            return None
        if was_finished(saved):  # kept past the success (``[state_store] clear_on_success`` is off)
            self.log.info(
                "The try that started the last %s run succeeded; the task was cleared: starting anew",
                self.what,
            )
            return None
        kept = saved.get("baseline")
        baseline = Baseline.from_dict(kept if isinstance(kept, Mapping) else None)

        def verdict_now() -> Verdict:
            return self.judge(self.status(), baseline)

        verdict = verdict_now()
        if verdict is Verdict.NOT_YET and self.hook.appears(verdict_now):  # a status that lags behind
            verdict = verdict_now()
        if verdict in (Verdict.RUNNING, Verdict.SUCCEEDED):
            self.log.info(
                "An earlier try started this %s run and it is %s: taking it over", self.what, verdict.value
            )
            self._started = True
            return baseline
        return None

    def _wait(self, context: Context, baseline: Baseline) -> dict[str, Any] | None:
        if not self.wait_for_completion:
            return self._finished(context, {**self._summary(), "status": "STARTED"})
        appear_by = time.time() + APPEAR_TIMEOUT
        if self.deferrable:
            self._defer(baseline, "execute_complete", owned=True, appear_by=appear_by)
        return self._finished(
            context, self.result(self._wait_sync(baseline, owned=True, appear_by=appear_by))
        )

    def _finished(self, context: Context, value: dict[str, Any]) -> dict[str, Any]:
        """The try is returning: a later run of this task instance is a cleared task, not a retry to take
        the run over."""
        mark_finished(context.get("task_state_store"), STATE_KEY)
        return value

    def _defer(self, baseline: Baseline, method: str, *, owned: bool, appear_by: float | None) -> None:
        end_time = time.time() + self.timeout_seconds if self.timeout_seconds else None
        # Strictly later than the trigger's own deadline: the trigger fires first and cancels the run.
        margin = max(DEFER_MARGIN, 3 * self.poll_interval)
        self.defer(
            trigger=self.trigger(
                baseline,
                celonis_conn_id=self.celonis_conn_id,
                poll_interval=self.poll_interval,
                end_time=end_time,
                cancel_on_kill=owned,
                appear_by=appear_by,
                context={"target": self._target, "data_pool_id": self._pool},
            ),
            method_name=method,
            timeout=timedelta(seconds=self.timeout_seconds + margin) if self.timeout_seconds else None,
        )

    def _wait_sync(
        self, baseline: Baseline, *, owned: bool, appear_by: float | None = None
    ) -> dict[str, Any]:
        """Poll in the worker until the run ends; the timeout cancels a run this task owns."""
        deadline = time.monotonic() + self.timeout_seconds if self.timeout_seconds else None
        delay, last = min(1.0, self.poll_interval), None
        while True:
            entry = self.status()
            verdict = self.judge(entry, baseline)
            status = self._status_text(entry) if verdict is not Verdict.NOT_YET else "not started yet"
            if status != last:
                self.log.info("Celonis %s %s is %s", self.what, self._target["id"], status)
                last = status
            if verdict is Verdict.SUCCEEDED or (verdict is Verdict.FAILED and not owned):
                return entry or {}
            if verdict is Verdict.FAILED:
                raise self.failure(entry, f"ended {status}")
            if verdict is Verdict.NOT_YET and appear_by is not None and time.time() > appear_by:
                raise self.failure(
                    entry, f"was started but never appeared in Celonis' status ({APPEAR_TIMEOUT:.0f}s)"
                )
            if deadline is not None and time.monotonic() + delay > deadline:
                what = self._cancel_quietly() if owned else "left it as it is (this task does not own it)"
                raise CelonisTimeoutError(
                    f"Celonis {self.what} {self._target['id']} still {status} after {self.timeout_seconds:.0f}s; {what}"
                )
            time.sleep(delay)
            delay = min(self.poll_interval, delay * 2)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resumes after the trigger fired: success returns the run's XCom, anything else fails."""
        carried = event.get("context") or {}
        self._target, self._pool = dict(carried.get("target") or {}), carried.get("data_pool_id")
        self._started = True
        if event.get("status") == "success":
            return self._finished(context, self.result(dict(event.get("entry") or {})))
        if event.get("status") == "timeout":
            raise CelonisTimeoutError(event.get("message") or "timed out")
        raise self.failure(event.get("entry") or None, str(event.get("message") or "failed"))

    def on_kill(self) -> None:
        if self._started and self._target:
            self.log.info("The task was killed: %s", self._cancel_quietly())

    # -- helpers ----------------------------------------------------------------------------------

    def _cancel_quietly(self) -> str:
        try:
            self.cancel()
        except NotImplementedError:
            return "Celonis has no call to cancel it, so it goes on"
        except Exception as exc:  # noqa: BLE001 - the cancel's failure is reported, the timeout still raised
            return f"could not cancel it: {exc}"
        return "cancelled it"

    def _status_text(self, entry: dict[str, Any] | None) -> str:
        return str((entry or {}).get("status") or (entry or {}).get("loadStatus") or "unknown")

    def _summary(self) -> dict[str, Any]:
        return {"data_pool_id": self._pool, "id": self._target.get("id"), "name": self._target.get("name")}

    def _publish(self, context: Context) -> None:
        """What the extra link needs, published before anything starts (the link works while deferred)."""
        self._published = {**self._summary(), "team_url": self.hook.config.base_url}
        context["ti"].xcom_push(key=XCOM_RUN_KEY, value=self._published)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:  # noqa: ARG002 - OpenLineage's signature
        """OpenLineage: a data model load reads its pool tables and writes the model; a data job says nothing
        (``None``: the API does not tell which tables its SQL touches)."""
        from airflow_provider_celonis.lineage import openlineage_facets

        return openlineage_facets(self) if getattr(self, "_lineage", None) else None
