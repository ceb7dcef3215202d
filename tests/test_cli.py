"""The `gbg` command line, run as a user would: a subprocess (or `main()` in process), its output and exit code."""

import json
import os
import subprocess
import sys

import nbformat
import pytest

from gbg_utils.cli import main
from gbg_utils.params import NOTEBOOK_DIR, parse_value


def gbg(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "gbg_utils.cli", *args], capture_output=True, text=True, timeout=timeout)


def test_listings():
    out = gbg("models")
    assert out.returncode == 0 and "qwen2.5-coder-0.5b" in out.stdout and "(default)" in out.stdout
    out = gbg("tasks")
    assert out.returncode == 0 and all(t in out.stdout for t in ("gsm8k", "humaneval", "mmlu_redux", "mixeval", "alpaca_eval"))
    out = gbg("list")
    assert out.returncode == 0 and "best_of_n" in out.stdout and "offline, paper, smoke" in out.stdout


@pytest.mark.parametrize(
    "args, msg",
    [
        (["generate", "--model", "qwen-0.5b"], "gbg: error: unknown model 'qwen-0.5b'"),
        (["generate", "--benchmark", "gsm8"], "gbg: error: unknown task 'gsm8'"),
        (["generate", "--model", "smollm2-135m", "--backend", "tgi"], "gbg: error: unknown backend 'tgi'"),
        (["generate", "--model", "smollm2-135m", "--temperature", "-1"], "gbg: error: --temperature must be >= 0"),
        (["run", "gapp"], "gbg: error: unknown notebook 'gapp' (did you mean 'gap'?)"),
        (["run", "gap", "--params", "nightly"], "gbg: error: no params file"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, msg, tmp_path):
    out = gbg(*args, "--store", str(tmp_path / "s.sqlite")) if args[0] == "generate" else gbg(*args)
    assert out.returncode == 2, out.stderr[-1500:]
    assert out.stderr.strip().startswith(msg) and "Traceback" not in out.stderr


@pytest.mark.parametrize(
    "args, msg",
    [
        (["--limit", "0"], "gbg: error: --limit must be >= 1 (leave it out for all items), got 0"),
        (["--limit", "-5"], "gbg: error: --limit must be >= 1 (leave it out for all items), got -5"),
        (["--items", "5:5"], "gbg: error: --items 5:5 is empty (humaneval's 164 items are positions 0:164)"),
        (["--items", "9:3"], "gbg: error: --items 9:3 is empty"),
        (["--items", "0:200"], "gbg: error: --items 0:200 goes past the end: humaneval's 164 items are positions 0:164"),
        (["--items", "164:"], "gbg: error: --items 164: goes past the end"),
        (["--limit", "10", "--items", "5:20"], "gbg: error: --items 5:20 goes past the end: the 10 items --limit drew are"),
    ],
)
def test_bad_subsets_are_one_line_exit_2_and_create_no_store(args, msg, tmp_path):
    store = tmp_path / "new" / "s.sqlite"
    out = gbg("generate", "--benchmark", "humaneval", "--backend", "transformers", *args, "--store", str(store))
    assert out.returncode == 2, out.stderr[-1500:]
    assert out.stderr.startswith(msg) and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert not store.exists() and not store.parent.exists()


# Generation arguments that passed today reached the store (created) and the backend: an unreachable openai server
# makes such a run fail late (exit 2 after the store exists); a checked argument fails before either.
UNREACHABLE = ["--backend", "openai", "--base-url", "http://127.0.0.1:9/v1"]


@pytest.mark.parametrize(
    "args, msg",
    [
        (["--limit", "-1"], "gbg: error: --limit must be >= 1 (leave it out for all items), got -1"),
        (["--items", "5000:5100"], "gbg: error: --items 5000:5100 goes past the end: humaneval's 164 items are positions 0:164"),
        (["--n-samples", "0"], "gbg: error: --n-samples must be >= 1 (for greedy only: --temperature 0), got 0"),
        (["--n-samples", "-1"], "gbg: error: --n-samples must be >= 1 (for greedy only: --temperature 0), got -1"),
        (
            ["--max-new-tokens", "0"],
            "gbg: error: --max-new-tokens must be >= 1 (leave it out for the benchmark's default), got 0",
        ),
        (["--temperature", "nan"], "gbg: error: --temperature must be a finite number, got nan"),
        (["--temperature", "inf"], "gbg: error: --temperature must be a finite number, got inf"),
        (["--top-p", "0"], "gbg: error: --top-p must be in (0, 1], got 0.0"),
        (["--top-p", "1.5"], "gbg: error: --top-p must be in (0, 1], got 1.5"),
        (["--top-k", "0"], "gbg: error: --top-k must be -1 (off) or >= 1, got 0"),
        (["--repetition-penalty", "0"], "gbg: error: --repetition-penalty must be > 0, got 0.0"),
        (["--repetition-penalty", "nan"], "gbg: error: --repetition-penalty must be a finite number, got nan"),
        (["--data-dir", "/nonexistent/gbg-data"], "gbg: error: --data-dir /nonexistent/gbg-data is not a folder"),
    ],
)
def test_every_bad_generation_argument_is_exit_2_before_the_store_exists(args, msg, tmp_path):
    store = tmp_path / "new" / "s.sqlite"
    out = gbg("generate", "--benchmark", "humaneval", *UNREACHABLE, *args, "--store", str(store))
    assert out.returncode == 2 and out.stderr.startswith(msg), out.stderr[-1500:]
    assert len(out.stderr.strip().splitlines()) == 1 and not store.parent.exists()


def _broken_copy(tmp_path, bench: str, rel: str, content: bytes):
    """A copy of the shared data dir's `bench` folder with `rel` replaced by `content`."""
    import shutil

    from conftest import DATA_DIR

    d = tmp_path / "data"
    shutil.copytree(os.environ.get("GBG_DATA_DIR", DATA_DIR).split(os.pathsep)[0] + f"/{bench}", d / bench)
    (d / bench / rel).chmod(0o644)
    (d / bench / rel).write_bytes(content)
    return d, d / bench / rel


@pytest.mark.parametrize(
    "bench, rel, content, msg",
    [
        ("gsm8k", "test.jsonl", b'{"question": "1+1?", "answer": "#### 2"}\n{"question": \n', "line 2: not valid JSON"),
        ("gsm8k", "test.jsonl", b'{"question": "\xff\xfe", "answer": "#### 2"}\n', "not UTF-8 text"),
        ("humaneval", "HumanEval.jsonl.gz", b"\x1f\x8b\x08\x00 truncated", "not a readable gzip file"),
        ("humaneval", "HumanEval.jsonl.gz", b"plain text, not gzip", "not a readable gzip file"),
    ],
)
def test_a_broken_data_file_is_named_in_one_line(bench, rel, content, msg, tmp_path):
    data, broken = _broken_copy(tmp_path, bench, rel, content)
    store = tmp_path / "new" / "s.sqlite"
    out = gbg("generate", "--benchmark", bench, *UNREACHABLE, "--data-dir", str(data), "--store", str(store))
    assert out.returncode == 2 and out.stderr.startswith(f"gbg: error: {broken}: "), out.stderr[-1500:]
    assert msg in out.stderr and len(out.stderr.strip().splitlines()) == 1 and not store.parent.exists()


@pytest.mark.parametrize(
    "extra, msg",
    [
        (["-p", "max_new_tokens", "0"], "gbg: error: max_new_tokens must be >= 1 (None: the benchmark's default), got 0"),
        (["-p", "top_p", "1.5"], "gbg: error: top_p must be in (0, 1], got 1.5"),
        (["-p", "top_p", "0"], "gbg: error: top_p must be in (0, 1], got 0.0"),
        (["-p", "top_k", "0"], "gbg: error: top_k must be -1 (off) or >= 1, got 0"),
        (["-p", "repetition_penalty", "0"], "gbg: error: repetition_penalty must be > 0, got 0.0"),
        (["-p", "temperature", "nan"], "gbg: error: temperature must be a finite number, got nan"),
        (["-p", "n_boot", "-1"], "gbg: error: n_boot must be >= 0 (0: no bootstrap), got -1"),
        (["-p", "data_dir", "/nonexistent/gbg-data"], "gbg: error: data_dir /nonexistent/gbg-data is not a folder"),
        (["-f", "{tmp}/decoding.yaml"], "gbg: error: {tmp}/decoding.yaml: top_k must be -1 (off) or >= 1, got 0"),
        (
            ["-f", "{tmp}/bad.yaml"],
            "gbg: error: {tmp}/bad.yaml: not valid YAML, line 2, column 13: mapping values are not allowed here",
        ),
        (["-f", "{tmp}/list.yaml"], "gbg: error: {tmp}/list.yaml must hold a mapping of parameter names to values"),
        (["-p", "temperatures", "[0.5, .inf]"], "gbg: error: temperatures must be finite and >= 0, got [0.5, inf]"),
        (["--out", "{tmp}/used"], "gbg: error: --out {tmp}/used is not empty (it holds gap): a run needs a new or empty folder"),
        # papermill would write it into the executed notebook and the report
        (["-p", "judge_base_url", "http://u:s3cret@127.0.0.1:9/v1"], "gbg: error: judge_base_url holds credentials"),
    ],
)
def test_every_bad_run_argument_is_exit_2_before_any_notebook_or_folder(extra, msg, tmp_path):
    (tmp_path / "decoding.yaml").write_text("top_k: 0\n")
    (tmp_path / "bad.yaml").write_text("seed: 1\nn_samples: 3: 4\n")
    (tmp_path / "list.yaml").write_text("- seed\n- 1\n")
    (tmp_path / "used" / "gap").mkdir(parents=True)
    (tmp_path / "used" / "gap" / "verdicts.json").write_text("{}")
    extra = [x.replace("{tmp}", str(tmp_path)) for x in extra]
    notebook = "temperature" if "temperatures" in extra else "gap"
    out_dir = tmp_path / "run"
    if "--out" not in extra:
        extra += ["--out", str(out_dir)]
    # A run that got past the checks would start the notebook on an unreachable server: exit 1, not 2.
    out = gbg("run", notebook, "--params", "smoke", *extra, "-p", "backend", "openai", "-p", "base_url", "http://127.0.0.1:9/v1")
    assert out.returncode == 2 and out.stderr.startswith(msg.replace("{tmp}", str(tmp_path))), out.stderr[-1500:]
    assert len(out.stderr.strip().splitlines()) == 1
    assert (
        not out_dir.exists()
        and os.listdir(tmp_path / "used") == ["gap"]
        and os.listdir(tmp_path / "used" / "gap") == ["verdicts.json"]
    )


def test_a_bad_limit_in_gbg_run_is_exit_2_before_any_output_folder(tmp_path):
    for value in ("0", "-3"):
        out = gbg("run", "gap", "--params", "smoke", "-p", "limit", value, "--out", str(tmp_path / "run"))
        assert out.returncode == 2 and out.stderr.startswith(f"gbg: error: limit must be >= 1 or None, got {value}"), out.stderr
        assert len(out.stderr.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


def test_generate_draws_reports_and_hands_over_the_drawn_items(tmp_path, capsys, monkeypatch):
    """--limit N --subset-seed S: the items of task.load(limit=N, subset_seed=S), said in one line; --items slices them."""
    from gbg_utils.generate import runner
    from gbg_utils.tasks import get_task

    seen = []

    class Summary:
        def __str__(self):
            return "fake run"

    monkeypatch.setattr(runner, "run_generation", lambda store, model, task, items, **kw: seen.append(items) or Summary())
    base = ["generate", "--benchmark", "mmlu_redux", "--backend", "transformers", "--store", str(tmp_path / "s.sqlite")]
    assert main([*base, "--limit", "50", "--subset-seed", "7"]) == 0
    out = capsys.readouterr().out
    assert "mmlu_redux: 50 of 3000 items, a stratified draw (subset_seed 7) covering 30 of 30 strata" in out
    assert [it.id for it in seen[-1]] == [it.id for it in get_task("mmlu_redux").load(limit=50, subset_seed=7)]
    assert main([*base, "--limit", "50", "--subset-seed", "7", "--items", "10:20"]) == 0
    assert "; --items 10:20 of them" in capsys.readouterr().out and seen[-1] == seen[-2][10:20]
    assert main([*base, "--items", "0:3"]) == 0  # no --limit: the benchmark's own order
    assert [it.id for it in seen[-1]] == ["anatomy/0", "anatomy/1", "anatomy/2"]


@pytest.mark.slow
def test_generate_and_score_then_rerun_reuses(tmp_path, smol_path):
    args = [
        "generate",
        "--model",
        "smollm2-135m",
        "--benchmark",
        "humaneval",
        "--limit",
        "2",
        "--n-samples",
        "2",
        "--max-new-tokens",
        "24",
        "--backend",
        "transformers",
        "--store",
        str(tmp_path / "s.sqlite"),
        "--score",
    ]
    first = gbg(*args)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "6 completions generated, 0 reused" in first.stdout and "scored 6 new completions" in first.stdout
    assert "humaneval: greedy" in first.stdout and "2 runs" in first.stdout
    again = gbg(*args)
    assert "0 completions generated, 6 reused from the store (model not loaded)" in again.stdout


# ------------------------------------------------------------------ gbg run with papermill's -f / -p, in process
PROBE = """import json, os
from gbg_utils.params import validate
P = validate("gap", globals())
print(json.dumps({"limit": P.limit, "n_samples": P.n_samples, "models": P.models, "seed": P.seed, "n_boot": P.n_boot,
                  "max_new_tokens": P.max_new_tokens, "engine_log": os.environ.get("GBG_ENGINE_LOG")}))"""


@pytest.fixture
def probe_gap(tmp_path, monkeypatch):
    """The real gap notebook's title and parameters cell, then a cell that prints the validated parameters: what
    `gbg run` injected, read back from the executed notebook, without generating anything."""
    import gbg_utils.report.papermill as nbmod

    nb = nbformat.read(NOTEBOOK_DIR / "gap.ipynb", as_version=4)
    (i,) = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    nb.cells = nb.cells[: i + 1] + [nbformat.v4.new_code_cell(PROBE)]
    nbformat.write(nb, tmp_path / "gap.ipynb")
    real = nbmod.notebook_path
    monkeypatch.setattr(nbmod, "notebook_path", lambda n: tmp_path / "gap.ipynb" if n == "gap" else real(n))
    return tmp_path


def _printed_params(executed):
    nb = nbformat.read(executed, as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "stream")
    return json.loads(text.strip().splitlines()[-1]), nb.metadata.papermill.parameters


def test_run_layers_files_then_overrides_into_the_executed_notebook(probe_gap, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GBG_ENGINE_LOG", "/somewhere/else.log")
    (tmp_path / "a.yaml").write_text("seed: 1\nn_boot: 10\nn_samples: 5\n")
    (tmp_path / "b.yaml").write_text("seed: 2\nlimit: null\n")
    run = tmp_path / "run"
    rc = main(
        [
            "run",
            "gap",
            "--params",
            "smoke",
            "-f",
            str(tmp_path / "a.yaml"),
            "-f",
            str(tmp_path / "b.yaml"),
            "-p",
            "n_samples",
            "16",
            "-p",
            "limit",
            "30",
            "-p",
            "models",
            "[smollm2-135m, qwen2.5-coder-0.5b]",
            "--out",
            str(run),
        ]
    )
    out = capsys.readouterr()
    assert rc == 0, out.err[-3000:]
    seen, injected = _printed_params(run / "gap.ipynb")
    assert seen["limit"] == 30 and seen["n_samples"] == 16  # -p wins over every file, and is typed (int, not "30")
    assert seen["models"] == ["smollm2-135m", "qwen2.5-coder-0.5b"]  # a YAML list
    assert seen["seed"] == 2 and seen["n_boot"] == 10  # b.yaml over a.yaml, a.yaml over smoke.yaml
    assert seen["max_new_tokens"] == 32  # from smoke.yaml, under both files
    assert injected["limit"] == 30 and injected["n_samples"] == 16 and injected["output_dir"] == str(run / "gap")
    assert seen["engine_log"] == str(run / "engine.log")  # the kernel inherits the run's engine log
    assert os.environ["GBG_ENGINE_LOG"] == "/somewhere/else.log"  # and the caller's value is back afterwards
    assert "smoke + " in out.out and (run / "index.html").is_file()


@pytest.mark.parametrize(
    "extra, msg",
    [
        (["-p", "n_sample", "16"], "gbg: error: unknown parameter 'n_sample' for notebook 'gap' (did you mean 'n_samples'?)"),
        (["-p", "limit", "thirty"], "gbg: error: parameter 'limit' of notebook 'gap' must be int | None, got 'thirty'"),
        (["-p", "limit", "-1"], "gbg: error: limit must be >= 1 or None, got -1"),
        (["-p", "subset_seed", "1.5"], "gbg: error: parameter 'subset_seed' of notebook 'gap' must be int, got 1.5"),
        (["-p", "models", "smollm2-135m"], "gbg: error: parameter 'models' of notebook 'gap' must be list[str]"),
        (["-p", "output_dir", "x"], "gbg: error: output_dir is set by gbg run"),
        (["-f", "nightly"], "gbg: error: no params file"),
    ],
)
def test_bad_override_is_one_line_exit_2_before_anything_runs(extra, msg, tmp_path, capsys, monkeypatch):
    import papermill

    ran = []
    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **k: ran.append(a))
    rc = main(["run", "gap", "--params", "smoke", *extra, "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith(msg) and len(err.strip().splitlines()) == 1, err
    assert not ran and not (tmp_path / "run").exists()


def test_a_later_file_wins(tmp_path, capsys, monkeypatch):
    """-f layering without executing: the parameters handed to papermill."""
    import papermill

    calls = []
    monkeypatch.setattr(papermill, "execute_notebook", lambda src, dst, parameters, **k: calls.append(parameters))
    (tmp_path / "a.yaml").write_text("n_samples: 5\nseed: 7\n")
    (tmp_path / "b.yaml").write_text("n_samples: 6\n")
    for files, want in [(["a", "b"], 6), (["b", "a"], 5)]:
        args = [x for f in files for x in ("-f", str(tmp_path / f"{f}.yaml"))]
        assert main(["run", "gap", "length", "--params", "smoke", *args, "--out", str(tmp_path / "-".join(files))]) == 0
        assert [c["n_samples"] for c in calls[-2:]] == [want, want] and calls[-1]["seed"] == 7
        assert calls[-1]["limit"] == 2  # smoke.yaml underneath


def test_params_prints_names_types_defaults_and_help(capsys):
    assert main(["params", "temperature"]) == 0
    out = capsys.readouterr().out
    assert "  limit: Optional[int] (default 5)" in out and "a seeded draw stratified by its groups (None: all)" in out
    assert "  temperatures: list[float] (default [0.0, 0.5, 1.0, 1.5])" in out and "the sweep, 0 is greedy" in out
    assert main(["params", "gapp"]) == 2
    assert capsys.readouterr().err.startswith("gbg: error: unknown notebook 'gapp' (did you mean 'gap'?)")


@pytest.mark.parametrize(
    "text, value",
    [
        ("30", 30),
        ("1.5", 1.5),
        ("1e-3", 0.001),
        ("None", None),
        ("null", None),
        ("True", True),
        ("[a, b]", ["a", "b"]),
        ("[0.0, 1.0]", [0.0, 1.0]),
        ("{gsm8k: 32}", {"gsm8k": 32}),
        ("qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b"),
        ("Qwen/Qwen2-7B-Instruct", "Qwen/Qwen2-7B-Instruct"),
    ],
)
def test_p_values_are_read_like_papermill(text, value):
    assert parse_value(text) == value and type(parse_value(text)) is type(value)
