#!/usr/bin/env bash
# Installs Clave into .venv (idempotently) and runs the main job: `clave demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh
# Editable, like scripts/test.sh: running one after the other leaves the same install
# (a plain `pip install .` would swap the checkout for a copy the tests then import).
.venv/bin/python -m pip install -q -e .
.venv/bin/clave --help
exec .venv/bin/clave demo "$@"
