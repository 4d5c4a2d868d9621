"""The package as users get it: the wheel's contents, its version, and the promises the README makes about CI."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.packaging.wheel_manifest import REPO, package_files, sdist_problems, wheel_problems


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sdist and wheel built from this checkout by uv, as CI and the release workflow build them."""
    out = tmp_path_factory.mktemp("dist")
    uv = [found] if (found := shutil.which("uv")) else ["python3.11", "-m", "uv"]  # the Makefile's bootstrap
    subprocess.run([*uv, "build", "--quiet", "--out-dir", str(out)], cwd=REPO, check=True)
    return out


def _wheel(dist: Path) -> Path:
    return next(dist.glob("*.whl"))


def test_wheel_and_sdist_hold_what_the_tree_says(dist: Path) -> None:
    assert wheel_problems(_wheel(dist)) == []
    assert sdist_problems(next(dist.glob("*.tar.gz"))) == []
    with zipfile.ZipFile(_wheel(dist)) as zf:
        names = zf.namelist()
    assert "airflow_provider_celonis/py.typed" in names
    assert "airflow_provider_celonis/emulator/__main__.py" in names
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "example_dags/", "scripts/"))]


def test_manifest_check_names_a_missing_module_and_a_stray_test(dist: Path, tmp_path: Path) -> None:
    """The check fails on exactly the defects it exists for: a module left out, a test file shipped."""
    dropped = sorted(f for f in package_files() if f.endswith(".py"))[-1]
    broken = tmp_path / _wheel(dist).name
    with zipfile.ZipFile(_wheel(dist)) as src, zipfile.ZipFile(broken, "w") as dst:
        for item in src.infolist():
            if item.filename != dropped:
                dst.writestr(item, src.read(item))
        dst.writestr("tests/test_something.py", "")
    problems = wheel_problems(broken)
    assert f"missing from the wheel: {dropped}" in problems
    assert "not expected in the wheel: tests/test_something.py" in problems
    assert "shipped but never should be: tests/test_something.py" in problems


def _declared_version() -> str:
    """pyproject.toml's version (read with a regex: tomllib is not in Python 3.10)."""
    match = re.search(r'^version = "([^"]+)"$', (REPO / "pyproject.toml").read_text(), re.M)
    assert match, "pyproject.toml declares no version"
    return match.group(1)


def test_version_is_the_installed_metadata() -> None:
    import airflow_provider_celonis
    from airflow_provider_celonis.get_provider_info import get_provider_info

    declared = _declared_version()
    assert airflow_provider_celonis.__version__ == importlib.metadata.version("airflow-provider-celonis")
    assert airflow_provider_celonis.__version__ == declared
    assert get_provider_info()["versions"] == [declared]


def test_changelog_has_a_section_for_the_version_and_an_unreleased_one() -> None:
    declared = _declared_version()
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert re.search(rf"^## \[{re.escape(declared)}\] - \d{{4}}-\d\d-\d\d$", changelog, re.M)
    assert "## [Unreleased]" in changelog


def _readme_lanes() -> set[tuple[str, str]]:
    """The (Python, Airflow) cells of the README's versions table that say they are tested in CI."""
    text = (REPO / "README.md").read_text()
    table = text.split("## Supported versions", 1)[1].split("\n\n", 2)[1]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()]
    airflows = [re.sub(r"[^0-9.]", "", c) for c in rows[0][1:]]
    lanes = set()
    for row in rows[2:]:
        python = re.sub(r"[^0-9.]", "", row[0])
        lanes |= {
            (python, af)
            for af, cell in zip(airflows, row[1:], strict=True)
            if cell.startswith("tested in CI")
        }
    return lanes


def _ci_run_lanes() -> set[tuple[str, str]]:
    lanes = set()
    for line in (REPO / ".ci" / "run").read_text().splitlines():
        if m := re.match(r"step make (test|integration)\b(.*)", line.strip()):
            python = re.search(r"PYTHON=(\S+)", m.group(2))
            airflow = re.search(r"AIRFLOW=(\S+)", m.group(2))
            lanes.add((python.group(1) if python else "3.11", airflow.group(1) if airflow else "3.3"))
    return lanes


def _workflow_lanes() -> set[tuple[str, str]]:
    workflow: dict[str, Any] = yaml.safe_load((REPO / ".github" / "workflows" / "ci.yml").read_text())
    return {(m["python"], m["airflow"]) for m in workflow["jobs"]["lane"]["strategy"]["matrix"]["include"]}


def test_readme_versions_table_matches_ci_lanes_exactly() -> None:
    readme, ci_run, workflow = _readme_lanes(), _ci_run_lanes(), _workflow_lanes()
    assert readme == ci_run == workflow, f"README {readme}, .ci/run {ci_run}, ci.yml {workflow}"
    assert {("3.10", "3.3"), ("3.11", "3.3"), ("3.13", "3.3"), ("3.11", "3.2")} <= readme
    for python, airflow in readme:
        assert (REPO / "requirements" / f"ci-py{python}-airflow-{airflow}.txt").is_file()


def test_docs_hook_points_links_outside_docs_at_the_repository() -> None:
    spec = importlib.util.spec_from_file_location("docs_hooks", REPO / "docs" / "hooks.py")
    assert spec
    assert spec.loader
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    config = {"repo_url": "https://example.invalid/repo/"}
    out = hooks.on_page_markdown(
        "see [the DAG](../example_dags/x.py#L3) and [here](connection.md)", None, config, None
    )
    assert (
        out
        == "see [the DAG](https://example.invalid/repo/blob/main/example_dags/x.py#L3) and [here](connection.md)"
    )
