#!/usr/bin/env bash
# Installs what the end-to-end tests (tests/e2e/) start besides Airflow itself: Debian's redis-server (the
# Celery broker), chromium + chromium-driver (the headless connection-form test) and the PostgreSQL server
# (Airflow's metadata database; .ci/install-postgres.sh does that part).
# Idempotent: installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if [ "${#missing[@]}" -gt 0 ]; then
  $SUDO apt-get update
  $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi
# Debian starts a system-wide redis-server on install; the tests start their own on a free port.
bash .ci/install-postgres.sh
