#!/usr/bin/env bash
# Set up .venv (if needed) and run the main job: every research notebook on the embedded default model
# (Qwen2.5-Coder-0.5B-Instruct, vLLM), headless, into outputs/<run>/ with an HTML report (index.html).
# Extra arguments go to `gbg run`, e.g. `bash scripts/main.sh --params smoke`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export GBG_DATA_DIR=${GBG_DATA_DIR:-$( [ -d ../shared/data ] && cd ../shared/data && pwd || echo "")}
[ -n "$GBG_DATA_DIR" ] || unset GBG_DATA_DIR   # HumanEval ships in its package; the rest then come from the hub
exec .venv/bin/gbg run all --params offline "$@"
