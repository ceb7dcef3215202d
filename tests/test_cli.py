"""The `gbg` command line, run as a user would: a subprocess, its output and exit code."""
import subprocess
import sys

import pytest


def gbg(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "gbg_utils.cli", *args], capture_output=True, text=True, timeout=timeout)


def test_listings():
    out = gbg("models")
    assert out.returncode == 0 and "qwen2.5-coder-0.5b" in out.stdout and "(default)" in out.stdout
    out = gbg("tasks")
    assert out.returncode == 0 and all(t in out.stdout for t in ("gsm8k", "humaneval", "mmlu_redux", "mixeval", "alpaca_eval"))
    out = gbg("list")
    assert out.returncode == 0 and "best_of_n" in out.stdout and "offline, paper, smoke" in out.stdout


@pytest.mark.parametrize("args, msg", [
    (["generate", "--model", "qwen-0.5b"], "gbg: error: unknown model 'qwen-0.5b'"),
    (["generate", "--benchmark", "gsm8"], "gbg: error: unknown task 'gsm8'"),
    (["generate", "--model", "smollm2-135m", "--backend", "tgi"], "gbg: error: unknown backend 'tgi'"),
    (["generate", "--model", "smollm2-135m", "--temperature", "-1"], "gbg: error: temperature must be >= 0"),
    (["run", "gapp"], "gbg: error: unknown notebook 'gapp' (did you mean 'gap'?)"),
    (["run", "gap", "--params", "nightly"], "gbg: error: no params file"),
])
def test_bad_input_is_one_line_and_exit_2(args, msg, tmp_path):
    out = gbg(*args, "--store", str(tmp_path / "s.sqlite")) if args[0] == "generate" else gbg(*args)
    assert out.returncode == 2, out.stderr[-1500:]
    assert out.stderr.strip().startswith(msg) and "Traceback" not in out.stderr


@pytest.mark.slow
def test_generate_and_score_then_rerun_reuses(tmp_path, smol_path):
    args = ["generate", "--model", "smollm2-135m", "--benchmark", "humaneval", "--limit", "2", "--n-samples", "2",
            "--max-new-tokens", "24", "--backend", "transformers", "--store", str(tmp_path / "s.sqlite"), "--score"]
    first = gbg(*args)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "6 completions generated, 0 reused" in first.stdout and "scored 6 new completions" in first.stdout
    assert "humaneval: greedy" in first.stdout and "2 runs" in first.stdout
    again = gbg(*args)
    assert "0 completions generated, 6 reused from the store (model not loaded)" in again.stdout
