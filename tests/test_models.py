"""The embedded-model registry on the real packages: hashes, materialised folders, clear errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gbg_utils import models
from gbg_utils.models import EMBEDDED, EmbeddedModel, ModelError, resolve_model, sha256_of


def test_unknown_model_lists_known_ones():
    with pytest.raises(ModelError, match=r"unknown model 'qwen-0.5b'.*qwen2\.5-coder-0\.5b, smollm2-135m"):
        resolve_model("qwen-0.5b")


def test_hub_ids_and_folders_pass_through(tmp_path):
    assert resolve_model("Qwen/Qwen2-0.5B-Instruct") == "Qwen/Qwen2-0.5B-Instruct"
    assert resolve_model(str(tmp_path)) == str(tmp_path.resolve())


def test_bad_dtype():
    with pytest.raises(ModelError, match="unknown dtype 'fp8'"):
        resolve_model("smollm2-135m", dtype="fp8")


@pytest.mark.parametrize("name", ["smollm2-135m", "qwen2.5-coder-0.5b"])
def test_shipped_chunks_hash_to_the_published_sha256(name):
    m = EMBEDDED[name]
    digest, size = sha256_of(m.chunk_paths())
    assert digest == m.sha256
    if m.size:
        assert size == m.size


def _fake_package(tmp_path, monkeypatch, name, payloads):
    """Chunk packages on sys.path holding the given bytes, registered as an embedded model."""
    pkgs = []
    for i, data in enumerate(payloads, 1):
        pkg = tmp_path / f"fakechunk_{name}_{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "data" / "part.bin").write_bytes(data)
        pkgs.append(pkg.name)
    monkeypatch.syspath_prepend(str(tmp_path))
    import hashlib

    m = EmbeddedModel(
        name=name,
        hf_id="x/y",
        packages=tuple(pkgs),
        files=("data/part.bin",) * len(pkgs),
        pip=("fake",),
        sha256=hashlib.sha256(b"".join(payloads)).hexdigest(),
        size=None,
        license="",
    )
    monkeypatch.setitem(EMBEDDED, name, m)
    monkeypatch.setenv("GBG_CACHE_DIR", str(tmp_path / "cache"))
    return m


def test_concatenation_is_verified_and_cached(tmp_path, monkeypatch):
    _fake_package(tmp_path, monkeypatch, "fake-ok", [b"abc", b"def"])
    path = models.gguf_file("fake-ok")
    assert path.read_bytes() == b"abcdef"
    assert models.gguf_file("fake-ok") == path


def test_corrupt_chunk_is_refused(tmp_path, monkeypatch):
    m = _fake_package(tmp_path, monkeypatch, "fake-bad", [b"abc", b"def"])
    (tmp_path / m.packages[1] / "data" / "part.bin").write_bytes(b"dXf")
    with pytest.raises(ModelError, match="a chunk package is corrupt, reinstall"):
        models.gguf_file("fake-bad")
    assert not (tmp_path / "cache" / "gguf" / "fake-bad.gguf").exists()


def test_missing_chunk_package_is_named(tmp_path, monkeypatch):
    m = _fake_package(tmp_path, monkeypatch, "fake-missing", [b"abc"])
    monkeypatch.setitem(EMBEDDED, "fake-missing", EmbeddedModel(**{**m.__dict__, "packages": ("no_such_chunk_pkg",)}))
    with pytest.raises(ModelError, match="package 'no_such_chunk_pkg' is not installed; install it with: pip install fake"):
        models.gguf_file("fake-missing")


@pytest.mark.slow
def test_materialised_folder_is_plain_hf_and_checked(smol_path):
    folder = Path(smol_path)
    info = json.loads((folder / "gbg_model.json").read_text())
    assert info["logits_max_abs_diff"] == 0.0 and info["gguf_sha256"] == EMBEDDED["smollm2-135m"].sha256
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config  # vLLM refuses quant_method=gguf
    assert list(folder.glob("*.safetensors")) and (folder / "tokenizer_config.json").is_file()
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(folder).chat_template


@pytest.mark.slow
def test_two_processes_racing_materialise_once(tmp_path):
    """Both get the same complete folder; the lock makes the second wait rather than build it again."""
    code = "import sys; from gbg_utils.models import resolve_model; print(resolve_model('smollm2-135m'))"
    env = {**__import__("os").environ, "GBG_CACHE_DIR": str(tmp_path)}
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e[-2000:] for _, e in outs]
    paths = {o.strip().splitlines()[-1] for o, _ in outs}
    assert len(paths) == 1
    built = sum("materialising" in o for o, _ in outs)
    assert built == 1
    assert json.loads((Path(paths.pop()) / "gbg_model.json").read_text())["logits_max_abs_diff"] == 0.0
    assert not list((tmp_path / "models").glob(".*tmp*"))
