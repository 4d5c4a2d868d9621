"""What the wheel and the sdist must hold, derived from the source tree's rules rather than a hard-coded list.

The rules: every file of the package directory that git would ship (tracked or new, not ignored) is in the
wheel under the same path, plus ``py.typed`` and the ``.dist-info`` metadata with the license and the three
entry points; nothing else (no tests, benchmarks, example DAGs or scripts). A module another helper adds
tomorrow is expected automatically. ``python -m tests.packaging.wheel_manifest dist/`` checks a build.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = "airflow_provider_celonis"
# Files the rules must find: if one is missing, the rules (not only the wheel) are broken.
ANCHORS = ("py.typed", "get_provider_info.py", "emulator/__main__.py", "emulator/pytest_plugin.py")
ENTRY_POINTS = (
    "[apache_airflow_provider]",
    "provider_info = airflow_provider_celonis.get_provider_info:get_provider_info",
    "celonis-emulator = airflow_provider_celonis.emulator.__main__:main",
    "[pytest11]",
)
NEVER_SHIPPED = (
    "tests/",
    "benchmarks/",
    "scripts/",
    "example_dags/",
    ".venv",
    ".git/",
    "__pycache__",
    ".pyc",
)


def package_files(repo: Path = REPO) -> set[str]:
    """The package's files as git sees them (tracked plus untracked-but-not-ignored), paths from the repo root."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", PACKAGE],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    files = {line for line in out.splitlines() if line and (repo / line).is_file()}
    missing = [a for a in ANCHORS if f"{PACKAGE}/{a}" not in files]
    if missing:
        raise AssertionError(
            f"the source tree lacks {missing}: the manifest rules no longer match the layout"
        )
    return files


def wheel_problems(wheel: Path, repo: Path = REPO) -> list[str]:
    """Every way the wheel's file list differs from what the source tree says it must hold."""
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        dist_info = {n.split("/", 1)[0] for n in names if n.split("/", 1)[0].endswith(".dist-info")}
        problems = (
            [f"expected one .dist-info folder, found {sorted(dist_info)}"] if len(dist_info) != 1 else []
        )
        info = next(iter(dist_info), "")
        entry_points = (
            zf.read(f"{info}/entry_points.txt").decode() if f"{info}/entry_points.txt" in names else ""
        )
    expected = package_files(repo)
    payload = {n for n in names if not n.startswith(f"{info}/")}
    problems += [f"missing from the wheel: {n}" for n in sorted(expected - payload)]
    problems += [f"not expected in the wheel: {n}" for n in sorted(payload - expected)]
    problems += [
        f"shipped but never should be: {n}" for n in sorted(names) if any(p in n for p in NEVER_SHIPPED)
    ]
    for meta in ("METADATA", "WHEEL", "RECORD", "entry_points.txt", "licenses/LICENSE"):
        if f"{info}/{meta}" not in names:
            problems.append(f"missing from the wheel: {info}/{meta}")
    problems += [f"entry point missing: {line}" for line in ENTRY_POINTS if line not in entry_points]
    return problems


def sdist_problems(sdist: Path, repo: Path = REPO) -> list[str]:
    """The sdist must rebuild the wheel: the package, pyproject, README, LICENSE; no environments or builds."""
    with tarfile.open(sdist) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    required = package_files(repo) | {"pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md", "PKG-INFO"}
    problems = [f"missing from the sdist: {n}" for n in sorted(required - names)]
    problems += [
        f"shipped in the sdist but never should be: {n}"
        for n in sorted(names)
        if any(n.startswith(p) for p in (".venv", ".git/", "dist/", "site/", "tests/output/"))
        or "__pycache__" in n
    ]
    return problems


def main(argv: list[str]) -> int:
    dist = Path(argv[0]) if argv else REPO / "dist"
    wheels, sdists = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        print(f"expected one wheel and one sdist in {dist}, found {wheels + sdists}", file=sys.stderr)
        return 1
    problems = wheel_problems(wheels[0]) + sdist_problems(sdists[0])
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(
            f"{wheels[0].name}: {len(package_files())} package files, metadata and entry points as expected"
        )
        print(f"{sdists[0].name}: package, pyproject, README, LICENSE and CHANGELOG present")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
