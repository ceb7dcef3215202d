#!/usr/bin/env bash
# Set up .venv (if needed) and run the whole test suite, slow real-model and browser tests included.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The browser tests (the HTML report, items.html, JupyterLab) need Debian's chromium and its driver (chromium-driver,
# the same version): installed here when missing, so that no browser test is ever skipped on a fresh machine.
apt_missing=()
command -v chromium >/dev/null 2>&1 || apt_missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || apt_missing+=(chromium-driver)
if [ ${#apt_missing[@]} -gt 0 ]; then
  echo "[test] installing ${apt_missing[*]} (apt) for the browser tests ..."
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${apt_missing[@]}" >/dev/null
fi
export GBG_DATA_DIR=${GBG_DATA_DIR:-$(cd .. && pwd)/shared/data}
exec .venv/bin/python -m pytest "$@"
