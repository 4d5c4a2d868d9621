#!/usr/bin/env bash
# The wheel is what users install, so it is what this checks (not the editable checkout):
#   1. uv build (sdist + wheel) into dist/, twine check --strict;
#   2. the file lists against the source tree's rules (tests/packaging/wheel_manifest.py);
#   3. a new venv with the wheel installed under Airflow's constraints for the supported Airflow (the published
#      file when reachable, else the vendored stand-in in requirements/, said loudly), not the project's pins;
#   4. there: `airflow providers list` shows the provider, `celonis-emulator --help`, and scripts/demo.py runs
#      the CSV example DAG end to end against an emulator, all importing the installed wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
BOOTSTRAP="${BOOTSTRAP:-python3.11}"
AIRFLOW_VERSION="${AIRFLOW_VERSION:-3.3.2}"
PY_VERSION="${PY_VERSION:-3.11}"
CONSTRAINTS_URL="https://raw.githubusercontent.com/apache/airflow/constraints-${AIRFLOW_VERSION}/constraints-${PY_VERSION}.txt"
VENDORED="requirements/constraints-airflow-${AIRFLOW_VERSION}-py${PY_VERSION}.txt"
UV=("$BOOTSTRAP" -m uv)
"${UV[@]}" --version >/dev/null 2>&1 || "$BOOTSTRAP" -m pip install --quiet uv

work="$(mktemp -d -t celonis-wheel-check-XXXXXX)"
trap 'rm -rf "$work"' EXIT

echo "== 1. build and twine check"
rm -rf dist
"${UV[@]}" build --quiet --out-dir dist
"${UV[@]}" tool run --quiet --from 'twine>=6.1' twine check --strict dist/*

echo "== 2. file lists"
"$BOOTSTRAP" -m tests.packaging.wheel_manifest dist

echo "== 3. install the wheel with Airflow ${AIRFLOW_VERSION}'s constraints (Python ${PY_VERSION})"
if curl -fsSL --max-time 20 -o "$work/constraints.txt" "$CONSTRAINTS_URL" 2>/dev/null; then
    echo "constraints: $CONSTRAINTS_URL"
else
    echo "constraints: $CONSTRAINTS_URL is not reachable from here;"
    echo "             using the vendored stand-in $VENDORED (see its header)"
    cp "$VENDORED" "$work/constraints.txt"
fi
interpreter="$(.ci/find-python.sh "$PY_VERSION")"
"${UV[@]}" venv --quiet -p "$interpreter" "$work/venv"
wheel="$(ls dist/*.whl)"
"${UV[@]}" pip install --quiet -p "$work/venv" -c "$work/constraints.txt" \
    "apache-airflow==${AIRFLOW_VERSION}" "${wheel}[emulator]"

echo "== 4. run the installed wheel"
export AIRFLOW_HOME="$work/airflow-home"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
bin="$work/venv/bin"
cd "$work"   # nothing of the checkout on sys.path from here on
"$bin/python" - <<'EOF'
import airflow_provider_celonis as p

assert "site-packages" in p.__file__, f"imported the checkout, not the wheel: {p.__file__}"
print(f"airflow_provider_celonis {p.__version__} from {p.__file__}")
EOF
"$bin/airflow" providers list --output plain > "$work/providers.txt" 2>"$work/providers.err" || {
    cat "$work/providers.err" >&2
    exit 1
}
grep -E "^airflow-provider-celonis" "$work/providers.txt" || {
    echo "airflow providers list does not show airflow-provider-celonis:" >&2
    cat "$work/providers.txt" "$work/providers.err" >&2
    exit 1
}
"$bin/celonis-emulator" --help | head -3
"$bin/python" "$REPO/scripts/demo.py"
echo "wheel check passed: $(basename "$wheel")"
