#!/usr/bin/env bash
# Installs the PostgreSQL server the SqlToCelonisOperator tests start (tests/transfers/conftest.py).
# Idempotent: does nothing when initdb and pg_ctl are already there (on PATH or under /usr/lib/postgresql).
set -euo pipefail
if { command -v initdb && command -v pg_ctl; } >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends postgresql
