"""The rules that tell this data job execution or data model load from the previous one (no I/O)."""

from __future__ import annotations

import pytest

from airflow_provider_celonis.hooks.executions import (
    Baseline,
    Verdict,
    epoch_ms,
    execution_baseline,
    iso,
    judge_execution,
    judge_load,
    load_baseline,
)

T0 = 1_764_800_000_000  # epoch ms


def status(state: str | None, started: int | str | None) -> dict[str, object]:
    return {"id": "job-1", "status": state, "lastExecutionStartDate": started}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (T0, T0),
        (T0 / 1000, T0),  # seconds
        (str(T0), T0),
        ("2025-12-03T22:13:20Z", T0),
        ("2025-12-03T22:13:20+00:00", T0),
        ("2025-12-03T22:13:20", T0),  # naive: UTC
        (None, None),
        ("", None),
        ("not a date", None),
        (True, None),
    ],
)
def test_epoch_ms_reads_every_datetime_shape(value: object, expected: int | None) -> None:
    assert epoch_ms(value) == expected


def test_iso_is_utc() -> None:
    assert iso(T0) == "2025-12-03T22:13:20Z"
    assert iso(None) is None


def test_the_previous_success_is_not_ours() -> None:
    """Right after execute, logs/status may still show the last execution's SUCCESS: not ours."""
    before = status("SUCCESS", T0)
    baseline = execution_baseline(before)
    assert judge_execution(before, baseline) is Verdict.NOT_YET
    assert judge_execution(status("QUEUED", T0), baseline) is Verdict.RUNNING
    assert judge_execution(status("RUNNING", T0 + 5), baseline) is Verdict.RUNNING
    assert judge_execution(status("SUCCESS", T0 + 5), baseline) is Verdict.SUCCEEDED
    assert judge_execution(status("FAIL", T0 + 5), baseline) is Verdict.FAILED
    assert judge_execution(status("CANCEL", T0 + 5), baseline) is Verdict.FAILED


def test_a_failed_previous_run_is_not_ours_either() -> None:
    baseline = execution_baseline(status("FAIL", T0))
    assert judge_execution(status("FAIL", T0), baseline) is Verdict.NOT_YET
    assert judge_execution(status("FAIL", T0 - 1), baseline) is Verdict.NOT_YET


def test_a_job_that_never_ran() -> None:
    baseline = execution_baseline(None)
    assert baseline.run is None
    assert judge_execution(None, baseline) is Verdict.NOT_YET
    assert judge_execution(status("SUCCESS", T0), baseline) is Verdict.SUCCEEDED


def test_started_after_rejects_older_runs() -> None:
    baseline = Baseline(None, after=T0)
    assert judge_execution(status("SUCCESS", T0 - 1000), baseline) is Verdict.NOT_YET
    assert judge_execution(status("SUCCESS", T0), baseline) is Verdict.SUCCEEDED


def test_a_run_someone_else_started_before_ours_could_is_not_ours() -> None:
    """While the operator waits for the server's next second, someone else may start the job: its start date
    (after the previous run's, before ``after``) tells it from ours, in progress or done."""
    baseline = Baseline(T0, after=T0 + 2000)
    assert judge_execution(status("RUNNING", T0 + 1500), baseline) is Verdict.NOT_YET
    assert judge_execution(status("SUCCESS", T0 + 1500), baseline) is Verdict.NOT_YET
    assert judge_execution(status("RUNNING", T0 + 2000), baseline) is Verdict.RUNNING
    # a queued status that still carries the previous run's date, or none at all, is ours
    assert judge_execution(status("QUEUED", T0), baseline) is Verdict.RUNNING
    assert judge_execution(status("QUEUED", None), baseline) is Verdict.RUNNING
    # a sensor's started_after: a run in progress that began earlier is not the one it waits for
    assert judge_execution(status("RUNNING", T0 + 1500), Baseline(None, after=T0 + 2000)) is Verdict.NOT_YET


def load(load_id: str | None, state: str, started: int = T0) -> dict[str, object]:
    return {"dataLoadId": load_id, "loadStatus": state, "startDate": started, "loadType": "COMPLETE"}


def test_the_previous_load_is_not_ours() -> None:
    before = load("L1", "SUCCESS")
    baseline = load_baseline(before)
    assert judge_load(before, baseline) is Verdict.NOT_YET
    assert judge_load(load("L2", "RUNNING"), baseline) is Verdict.RUNNING
    assert judge_load(load("L2", "LOST_CONNECTION"), baseline) is Verdict.RUNNING
    assert judge_load(load("L2", "WARNING"), baseline) is Verdict.SUCCEEDED
    assert judge_load(load("L2", "SUCCESS"), baseline) is Verdict.SUCCEEDED
    assert judge_load(load("L2", "ERROR"), baseline) is Verdict.FAILED
    assert judge_load(load("L2", "CANCELED"), baseline) is Verdict.FAILED


def test_never_loaded_model() -> None:
    baseline = load_baseline(None)
    assert judge_load(None, baseline) is Verdict.NOT_YET
    assert judge_load({}, baseline) is Verdict.NOT_YET
    assert judge_load(load("L1", "SUCCESS"), baseline) is Verdict.SUCCEEDED


def test_a_load_without_an_id_is_told_by_its_start() -> None:
    before = load(None, "SUCCESS", T0)
    baseline = load_baseline(before)
    assert judge_load(before, baseline) is Verdict.NOT_YET
    assert judge_load(load(None, "SUCCESS", T0 + 1), baseline) is Verdict.SUCCEEDED


def test_baseline_survives_serialization() -> None:
    baseline = Baseline(T0, T0 - 5)
    assert Baseline.from_dict(baseline.as_dict()) == baseline
    assert Baseline.from_dict(None) == Baseline()
