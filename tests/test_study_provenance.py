"""A notebook's provenance comes from the table it saves (its attrs), never from a registry keyed by the params' id."""

import json
from pathlib import Path

import pandas as pd
import pytest
from test_identity import make_tiny_llama

from gbg_utils import study
from gbg_utils.params import validate


@pytest.fixture(scope="module")
def tiny_llama(smol_path, tmp_path_factory) -> str:
    """A 2-layer Llama with random weights (test_identity.py): generation on a CPU in seconds."""
    return make_tiny_llama(tmp_path_factory.mktemp("tiny") / "tiny-llama", Path(smol_path))


def _read(out: Path) -> dict:
    return json.loads((out / "provenance.json").read_text())


def test_the_inputs_ride_with_the_frame_and_are_shared_not_copied(tmp_path):
    runs = [{"model": "m", "benchmark": "gsm8k", "configs": {"abc": 4}, "prompt_hashes": {f"i{k}": "h" for k in range(3)}}]
    df = study.with_inputs(pd.DataFrame({"run_id": ["r1", "r2"], "score": [1.0, 0.0]}), runs)
    part = df[df.score > 0]  # pandas deep-copies attrs into every derived frame: the record is shared instead
    assert part.attrs[study.INPUTS] is df.attrs[study.INPUTS] and list(part.attrs[study.INPUTS]) == runs
    P = validate("gap", {"store": str(tmp_path / "s.sqlite"), "output_dir": str(tmp_path / "out")})
    assert study.provenance(P, "gap", part)["inputs"] == runs
    assert "inputs" not in study.provenance(P, "gap", pd.DataFrame({"run_id": ["r1"]}))  # a frame built elsewhere
    assert "inputs" not in study.provenance(P, "gap")


def test_save_without_a_frame_writes_no_items_page_and_no_inputs(tmp_path):
    P = validate("gap", {"store": str(tmp_path / "s.sqlite"), "output_dir": str(tmp_path / "out")})
    out = study.save(P.output_path, P, "gap", tables={"t": pd.DataFrame({"x": [1]})})
    prov = _read(out)
    assert (out / "t.csv").is_file() and not (out / "items.html").exists()
    assert "inputs" not in prov and prov["generation_runs"] == [] and prov["params"]["store"] == str(tmp_path / "s.sqlite")


@pytest.mark.slow
def test_two_runs_with_equal_params_keep_their_own_provenance(tiny_llama, tmp_path):
    """One params object (and an equal one) behind two tables at different temperatures: each table's provenance
    and items page are its own (an id(P) registry gave both the last call's inputs)."""
    base = dict(
        dtype="bfloat16",
        models=[tiny_llama],
        benchmarks=["gsm8k"],
        limit=2,
        n_samples=2,
        max_new_tokens=4,
        backend="transformers",
        store=str(tmp_path / "store.sqlite"),
        n_boot=0,
        output_dir=str(tmp_path / "out"),
    )
    P, same = validate("gap", base), validate("gap", base)
    assert P == same
    hot = study.generate_and_score(P, temperatures=[1.0], progress=False)
    wal = tmp_path / "store.sqlite-wal"  # checkpointed at the end: store.sqlite alone holds the run
    assert not wal.exists() or wal.stat().st_size == 0
    cool = study.generate_and_score(same, temperatures=[0.5], progress=False)
    again = study.generate_and_score(P, temperatures=[0.5], progress=False)  # the same P, last called at T=0.5
    assert set(hot.config_key) != set(cool.config_key) and set(cool.config_key) == set(again.config_key)

    def configs(prov):
        return {k for r in prov["inputs"] for k in r["configs"]}

    assert configs(study.provenance(P, "gap", hot)) == set(hot.config_key)
    assert configs(study.provenance(same, "gap", cool)) == set(cool.config_key)
    out = study.save(tmp_path / "hot", P, "gap", tables={"n": pd.DataFrame({"n": [len(hot)]})}, frame=hot)
    prov = _read(out)
    assert configs(prov) == set(hot.config_key) and prov["rows"] == len(hot)
    assert {r["run_id"] for r in prov["generation_runs"]} == set(hot.run_id)
    assert (out / "items.html").is_file() and "greedy" in (out / "items.html").read_text()
    bare = _read(study.save(tmp_path / "bare", P, "gap", tables={"n": pd.DataFrame({"n": [1]})}))
    assert "inputs" not in bare and bare["generation_runs"] == [] and not (tmp_path / "bare" / "items.html").exists()
