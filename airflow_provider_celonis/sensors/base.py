"""What every Celonis sensor does when deferred: hand its wait to a trigger that never cancels anything.

The sensor does not own what it waits for, so the trigger's deadline only ends the wait
(``AirflowSensorTimeout``, a skip with ``soft_fail``) and a kill cancels nothing.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSensorTimeout, BaseSensorOperator

from airflow_provider_celonis.triggers.base import DEFER_MARGIN, CelonisStatusTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context


class CelonisSensor(BaseSensorOperator):
    """Poke, reschedule, or deferred (``self.deferrable``); subclasses give ``trigger`` and the messages."""

    deferrable: bool

    def trigger(self, **kwargs: Any) -> CelonisStatusTrigger:
        """The trigger that waits like ``poke`` does; ``kwargs`` are the wait's common settings."""
        raise NotImplementedError

    def succeeded(self, event: dict[str, Any]) -> None:
        """Log the end of a successful deferred wait."""
        raise NotImplementedError

    def failed(self, event: dict[str, Any]) -> str:
        """The failure message of a deferred wait that ended badly."""
        raise NotImplementedError

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        if self.poke(context):
            return None
        self.defer(
            trigger=self.trigger(
                poll_interval=self.poke_interval,
                end_time=time.time() + self.timeout,
                cancel_on_kill=False,
                cancel_at_deadline=False,
            ),
            method_name="execute_complete",
            # The trigger's own deadline fires first and says what happened; this is only a backstop.
            timeout=timedelta(seconds=self.timeout + DEFER_MARGIN),
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> None:  # noqa: ARG002 - Airflow's signature
        if event.get("status") == "success":
            self.succeeded(event)
            return
        if event.get("status") == "timeout":
            # Raised here, soft_fail turns it into a skip (BaseSensorOperator.resume_execution).
            raise AirflowSensorTimeout(f"Sensor timed out waiting for Celonis: {event.get('message')}")
        raise AirflowFailException(self.failed(event))
