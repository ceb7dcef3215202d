"""Parameter paths: relative ones resolve against the project root, whatever the kernel's working directory."""

import shutil
import uuid
from pathlib import Path

from matplotlib.figure import Figure

from gbg_utils import study
from gbg_utils.params import validate
from gbg_utils.paths import PROJ_ROOT


def test_relative_paths_resolve_from_the_project_root_not_the_cwd(tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")  # where JupyterLab starts a notebook's kernel
    P = validate("gap", {"store": "outputs/s.sqlite", "output_dir": "outputs/latest", "data_dir": "params"})
    assert P.store_path == PROJ_ROOT / "outputs" / "s.sqlite"
    assert P.output_path == PROJ_ROOT / "outputs" / "latest"
    assert P.data_path == PROJ_ROOT / "params"  # a data_dir must exist: the project's own params/ stands in
    Q = validate("gap", {"store": str(tmp_path / "s.sqlite"), "output_dir": "~/x"})
    assert Q.store_path == tmp_path / "s.sqlite" and Q.output_path == Path.home() / "x" and Q.data_path is None


def test_save_writes_under_the_project_root_from_any_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rel = f"outputs/_pytest_save_{uuid.uuid4().hex[:8]}"
    P = validate("gap", {"store": str(tmp_path / "store.sqlite"), "output_dir": rel})
    fig = Figure()
    fig.subplots().plot([0, 1], [1, 0])
    try:
        for out_dir in (rel, P.output_path):  # the relative string and the property land in the same folder
            out = study.save(out_dir, P, "gap", figures={"line": fig})
            assert out == PROJ_ROOT / rel and (out / "line.png").is_file() and (out / "provenance.json").is_file()
        assert not (tmp_path / "outputs").exists() and not list(tmp_path.rglob("*.png"))  # nothing under the cwd
    finally:
        shutil.rmtree(PROJ_ROOT / rel, ignore_errors=True)


def test_subset_seed_is_a_parameter_and_provenance_records_the_draw(tmp_path):
    import json

    import pytest

    from gbg_utils.params import ParamError, schema
    from gbg_utils.tasks.subsets import RULE

    assert all(schema(n)().subset_seed == 0 for n in ("gap", "temperature", "stability", "best_of_n"))
    assert validate("gap", {"subset_seed": 7, "limit": 50}).subset_seed == 7
    for bad, msg in [({"subset_seed": 1.5}, "must be int"), ({"limit": 0}, "limit must be >= 1"), ({"limit": -2}, "limit")]:
        with pytest.raises(ParamError, match=msg):
            validate("gap", bad)
    P = validate("gap", {"store": str(tmp_path / "store.sqlite"), "limit": 50, "subset_seed": 3})
    prov = json.loads(json.dumps(study.provenance(P, "gap"), default=str))
    assert prov["subset"] == {"limit": 50, "subset_seed": 3, "rule": RULE} and prov["params"]["subset_seed"] == 3


def test_each_notebook_has_its_own_default_output_folder():
    """Run from JupyterLab (no `gbg run`), gap and alignment each write gap.csv: into folders of their own, laid out
    like a `gbg run` folder (<run>/<notebook>)."""
    from gbg_utils.params import SCHEMAS

    defaults = {name: validate(name, {}).output_path for name in SCHEMAS}
    assert defaults == {name: PROJ_ROOT / "outputs" / "latest" / name for name in SCHEMAS}


def test_decoding_numbers_n_boot_and_data_dir_are_checked_up_front(tmp_path):
    """What `gbg run` checks before papermill starts a notebook: each of these failed only inside every notebook (n_boot
    after all generation), or never (a missing data_dir fell through to HumanEval's packaged copy)."""
    import pytest

    from gbg_utils.params import ParamError

    for bad, msg in [
        ({"max_new_tokens": 0}, r"max_new_tokens must be >= 1 \(None: the benchmark's default\), got 0"),
        ({"top_p": 0.0}, r"top_p must be in \(0, 1\], got 0.0"),
        ({"top_p": 1.01}, r"top_p must be in \(0, 1\], got 1.01"),
        ({"top_k": 0}, r"top_k must be -1 \(off\) or >= 1, got 0"),
        ({"top_k": -2}, r"top_k must be -1 \(off\) or >= 1, got -2"),
        ({"repetition_penalty": 0.0}, r"repetition_penalty must be > 0, got 0.0"),
        ({"temperature": float("nan")}, r"temperature must be a finite number, got nan"),
        ({"temperature": float("inf")}, r"temperature must be a finite number, got inf"),
        ({"n_boot": -1}, r"n_boot must be >= 0 \(0: no bootstrap\), got -1"),
        ({"data_dir": str(tmp_path / "missing")}, r"data_dir .*missing is not a folder"),
    ]:
        with pytest.raises(ParamError, match=msg):
            validate("gap", bad)
    with pytest.raises(ParamError, match=r"repetition_penalties must be finite and > 0"):
        validate("repetition", {"repetition_penalties": [1.0, float("nan")]})
    assert validate("gap", {"max_new_tokens": None, "n_boot": 0, "top_k": 1, "top_p": 1.0}).max_new_tokens is None


def test_mixeval_parser_is_a_parameter_of_every_notebook_and_the_paper_files_name_the_papers():
    """`study.score` reads P.mixeval_parser; every schema has it (None: the rule parsers), and each paper file whose
    benchmarks include MixEval names the paper's parser, gpt-3.5-turbo-0125."""
    import yaml

    from gbg_utils.params import PARAMS_DIR, SCHEMAS, load_params
    from gbg_utils.tasks.judged.mixeval_parser import PAPER_PARSER

    assert all(validate(name, {}).mixeval_parser is None for name in SCHEMAS)
    for f in sorted(PARAMS_DIR.glob("*/paper*.yaml")):
        data = yaml.safe_load(f.read_text())
        with_mixeval = bool({"mixeval", "mixeval_hard"} & set(data.get("benchmarks", [])))
        assert (data.get("mixeval_parser") == PAPER_PARSER) == with_mixeval, f
    assert "mixeval_parser" not in load_params("gap", "offline") and "mixeval_parser" not in load_params("gap", "smoke")
