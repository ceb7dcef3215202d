"""vLLM on a CPU with the library's own defaults (no test-only settings): sized to the job, seeded sampling on
long few-shot prompts never hits the generator-offset crash, and a killed run resumes."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from gbg_utils.generate.backends import cpu_engine_settings, kv_bytes_per_token
from gbg_utils.generate.runner import run_generation
from gbg_utils.store import SampleStore
from gbg_utils.tasks import get_task

GiB = 1 << 30


def test_cpu_kv_cache_follows_the_model_not_the_machine(smol_path):
    s = cpu_engine_settings(smol_path, "bfloat16", 4096)
    per_tok = kv_bytes_per_token(smol_path, "bfloat16")
    assert per_tok == 2 * 30 * 3 * 64 * 2  # SmolLM2-135M: 30 layers, 3 KV heads of 64, bf16
    assert 2 * 4096 * per_tok <= s["kv_cache_memory_bytes"] <= 4 * GiB
    assert s["enable_chunked_prefill"] is False and s["max_num_batched_tokens"] >= 4096


@pytest.mark.slow
def test_seeded_sampling_on_gsm8k_8shot_prompts_gets_every_completion(smol_path, tmp_path):
    """8-shot GSM8K prompts (~900 tokens) x N seeded samples: with chunked prefill on, vLLM V1 split these
    prefills and crashed rewinding the CPU generator ('CPU Generator does not use offset'). Its own engine,
    built with the library's defaults (closing another in-process engine tears down vLLM's process groups)."""
    from gbg_utils.generate.backends import load_backend

    task = get_task("gsm8k")
    items = task.load(limit=12)
    store = SampleStore(tmp_path / "s.sqlite")
    be = load_backend("vllm", "smollm2-135m", max_model_len=2048)
    try:
        for n in (8, 20):
            s = run_generation(store, "smollm2-135m", task, items, n_samples=n, max_new_tokens=16, backend=be, progress=False)
            assert sum(s.generated.values()) + sum(s.reused.values()) == len(items) * (n + 1)
    finally:
        be.close()
    df = store.samples()
    assert len(df) == 12 * 21 and (df["n_tokens"] > 0).all()


KILLED = textwrap.dedent("""
    import sys
    from gbg_utils.generate.runner import run_generation
    from gbg_utils.store import SampleStore
    from gbg_utils.tasks import get_task
    run_generation(SampleStore(sys.argv[1]), "smollm2-135m", get_task("gsm8k"), limit=24, n_samples=4, max_new_tokens=24,
                   backend="vllm", chunk_size=8, progress=False, backend_options={"max_model_len": 2048})
""")


@pytest.mark.slow
def test_a_vllm_run_killed_after_its_greedy_pass_resumes_to_completion(smol_path, tmp_path):
    """The resume case of the crash: a fresh engine (cold prefix cache) sampling long prompts."""
    path = tmp_path / "store.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(path)], stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 400
    while time.time() < deadline and proc.poll() is None:
        try:
            if path.exists() and len(SampleStore(path).samples()) >= 24:  # the greedy pass is stored
                break
        except Exception:  # noqa: BLE001 - the store is being created
            pass
        time.sleep(0.5)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = len(SampleStore(path).samples())
    assert 24 <= before < 24 * 5
    out = subprocess.run([sys.executable, "-c", KILLED, str(path)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    df = SampleStore(path).samples()
    assert len(df) == 24 * 5 and not df.duplicated(["item_id", "config_key", "sample_idx"]).any()


HOG = textwrap.dedent("""
    import sys, time
    import psutil
    keep = int(psutil.virtual_memory().total * float(sys.argv[1]))
    take = max(0, psutil.virtual_memory().available - keep)
    block = bytearray(take)
    for i in range(0, take, 4096):
        block[i] = 1  # touch every page: really resident
    print("ready", flush=True)
    time.sleep(600)
""")


@pytest.mark.slow
def test_the_vllm_backend_starts_with_its_defaults_when_half_the_memory_is_taken(smol_path):
    """A machine where half the memory is in use (page cache, a browser): vLLM's own default would ask for
    92% of it and refuse to start."""
    from gbg_utils.decoding import DecodingConfig
    from gbg_utils.generate.backends import generate, load_backend

    hog = subprocess.Popen([sys.executable, "-c", HOG, "0.45"], stdout=subprocess.PIPE, text=True)
    try:
        assert hog.stdout.readline().strip() == "ready"
        import psutil

        vm = psutil.virtual_memory()
        assert vm.available < 0.55 * vm.total
        be = load_backend("vllm", "smollm2-135m", max_model_len=2048)
        try:
            outs = generate(be, ["Say hi."], DecodingConfig(temperature=1.0, n=2, seed=3, max_new_tokens=8))
            assert len(outs[0]) == 2
            assert be.engine_settings["kv_cache_memory_bytes"] <= 4 * GiB
        finally:
            be.close()
    finally:
        hog.kill()
        hog.wait()
