#!/usr/bin/env bash
# Set up .venv (if needed) and run the whole test suite, slow real-model tests included.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export GBG_DATA_DIR=${GBG_DATA_DIR:-$(cd .. && pwd)/shared/data}
exec .venv/bin/python -m pytest "$@"
