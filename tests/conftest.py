"""Shared fixtures: the real embedded test model, one vLLM engine per session, a real vLLM server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from gbg_utils.generate.server import free_port, stop_server  # noqa: F401  (the tests import them from here)
from gbg_utils.generate.server import start_vllm_server as _start

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = REPO.parent / "shared" / "data"
os.environ.setdefault("GBG_DATA_DIR", str(DATA_DIR))
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


def schema_1_store(path: Path) -> Path:
    """A store as gbg's first schema left it (no prompt hash, no engine in a sample's identity)."""
    import sqlite3

    con = sqlite3.connect(path)
    con.executescript(
        "CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL); INSERT INTO meta VALUES ('schema_version', '1');"
        "CREATE TABLE samples (model TEXT, benchmark TEXT, item_id TEXT, config_key TEXT, sample_idx INTEGER, text TEXT);"
    )
    con.commit()
    con.close()
    return path


def start_vllm_server(model_dir: str, served_name: str = TEST_MODEL, port: int | None = None, log: Path | None = None):
    """The library's CPU server (`generate.server`), in bf16 and at 2,048 tokens, as the tests' engine."""
    return _start(model_dir, served_name, port=port, log=log, dtype="bfloat16", max_model_len=2048)


@pytest.fixture(scope="session")
def vllm_server(smol_path, tmp_path_factory):
    log = tmp_path_factory.mktemp("server") / "vllm_server.log"
    proc, url = start_vllm_server(smol_path, log=log)
    yield url
    stop_server(proc)


def dump_dom(page: Path, profile: Path, budget_ms: int = 5000) -> subprocess.CompletedProcess:
    """Open `page` from disk in Debian's headless Chromium and return its DOM after `budget_ms` of virtual time
    (stdout). Fails where Chromium is missing (scripts/test.sh installs it)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:  # never a skip: a skipped browser test would hide a broken page
        pytest.fail("no chromium: `bash scripts/test.sh` installs it (apt-get install chromium chromium-driver)")
    return subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            f"--user-data-dir={profile}",
            f"--virtual-time-budget={budget_ms}",
            "--allow-file-access-from-files",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
