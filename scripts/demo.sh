#!/usr/bin/env bash
# Installs Clave into .venv (idempotently) and runs the main job: `clave demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q .
.venv/bin/clave --help
exec .venv/bin/clave demo "$@"
