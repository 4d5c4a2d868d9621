"""Prints the scenario tally the issue asks for: ``Reliability scenarios: N passed, M failed``."""

from __future__ import annotations

from typing import Any

import pytest

_results: dict[str, int] = {"passed": 0, "failed": 0}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "tests/reliability/" not in report.nodeid.replace("\\", "/"):
        return
    if report.when == "call" or (report.when == "setup" and report.failed):
        _results["passed" if report.passed else "failed"] += 1 if not report.skipped else 0


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if sum(_results.values()):
        terminalreporter.write_line(
            f"Reliability scenarios: {_results['passed']} passed, {_results['failed']} failed"
        )
