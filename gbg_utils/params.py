"""Notebook parameters: one schema per research notebook, checked before anything runs.

Papermill only *warns* on an unknown parameter, so `gbg run` checks every params YAML against the
notebook's own parameters cell, and the notebook's second cell validates types and values:

    >>> P = validate("gap", globals())     # in a notebook, right after the `parameters` cell
    >>> P.models, P.n_samples, P.store_path, P.output_path

The notebooks are the source of truth for their parameters: each schema's defaults are its notebook's
`parameters` cell (the offline setting, what JupyterLab runs), and tests/test_notebooks.py fails when the
two differ in names, defaults or types. Relative paths (store, output_dir, data_dir) are relative to the
project root, whatever the kernel's working directory (JupyterLab starts kernels in notebooks/).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from .decoding import ConfigError, check_decoding
from .generate.base import BACKENDS
from .models import DTYPE_CHOICES, DTYPES, ModelError, check_model_name
from .paths import PROJ_ROOT, from_root

NOTEBOOKS = ("gap", "scaling", "alignment", "temperature", "repetition", "length", "best_of_n")  # what `gbg run all` runs
# Notebooks run by name only (`gbg run stability --params offline`), kept out of `all` to hold the main job to its
# time budget: the stability grid starts one engine per grid point (vLLM at batch size 1 is slow on a CPU).
STANDALONE_NOTEBOOKS = ("stability",)
PARAMS_DIR = PROJ_ROOT / "params"
NOTEBOOK_DIR = PROJ_ROOT / "notebooks"


class ParamError(ValueError):
    """A parameter that is unknown, ill-typed or out of range, named with what would be right."""


@dataclass(frozen=True)
class Common:
    """What every notebook takes. Names follow the generation vocabulary (CONVENTIONS.md)."""

    models: list[str] = field(default_factory=lambda: ["qwen2.5-coder-0.5b"])
    benchmarks: list[str] = field(default_factory=lambda: ["humaneval", "gsm8k"])
    limit: int | None = 10  # N items per benchmark, a draw stratified by its groups (tasks/subsets.py); None = all
    subset_seed: int = 0  # which items `limit` draws: the same seed, the same items
    n_samples: int = 8
    n_samples_by_benchmark: dict[str, int] | None = (
        None  # per-benchmark override of n_samples (the paper: GSM8K 128, MMLU-Redux 32)
    )
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    repetition_penalty: float = 1.0
    max_new_tokens: int | None = 256  # None = the benchmark's default
    seed: int = 0
    protocol: str = "paper"  # "paper": the paper's harness (prompts, stops, answer rules); "gbg": gbg's own (docs/benchmarks.md)
    backend: str = "vllm"
    dtype: str = "auto"
    base_url: str | None = None  # openai backend only; the key comes from the environment, never from here
    store: str = "outputs/store.sqlite"  # relative to the project root
    data_dir: str | None = None  # None = $GBG_DATA_DIR, packaged data, then the hub
    judge_model: str | None = None  # alpaca_eval / arena_hard / wildbench: the OpenAI-compatible judge's model name
    judge_base_url: str | None = None  # its server (None: $OPENAI_BASE_URL or the OpenAI API); key from $OPENAI_API_KEY
    # MixEval's model parser through the judge server (the paper's: gpt-3.5-turbo-0125; its key as for the judge);
    # None: MixEval's rule parsers, an approximation
    mixeval_parser: str | None = None
    n_boot: int = 1000
    # Tables, figures and provenance of this notebook: each schema names its own folder, outputs/latest/<notebook>
    # (the layout of a `gbg run` folder, which sets it), so notebooks run from JupyterLab do not overwrite each other.
    output_dir: str = "outputs/latest/common"

    def check(self) -> None:
        from .tasks import get_task, list_tasks

        for m in self.models if self.backend != "openai" else ():  # a server's model is named as it serves it
            try:
                check_model_name(m)
            except ModelError as e:
                raise ParamError(str(e)) from None
        known = list_tasks()
        for b in self.benchmarks:
            if b not in known:
                raise ParamError(f"unknown benchmark {b!r}{_suggest(b, known)}; known: {', '.join(known)}")
        from .tasks.base import PROTOCOLS

        _require(self.protocol in PROTOCOLS, f"protocol must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}")
        for b in self.benchmarks:
            try:
                get_task(b, self.protocol)
            except ValueError as e:
                raise ParamError(str(e)) from None
        _require(self.backend in BACKENDS, f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        for name in ("base_url", "judge_base_url"):  # papermill writes parameters into the notebook and the report
            url = getattr(self, name)
            _require(
                not url or "@" not in urlsplit(url).netloc,
                f"{name} holds credentials (user:password@); they would be written into the executed notebook and the "
                "report: give the URL without them and the key in an environment variable (api_key_env, e.g. OPENAI_API_KEY)",
            )
        _require(self.dtype in DTYPE_CHOICES, f"dtype must be one of {', '.join(DTYPE_CHOICES)}, got {self.dtype!r}")
        _require(self.n_samples >= 1, f"n_samples must be >= 1, got {self.n_samples}")
        try:  # the numbers every generation run checks, here before papermill starts any notebook
            check_decoding(
                temperature=self.temperature,
                top_p=self.top_p,
                top_k=self.top_k,
                repetition_penalty=self.repetition_penalty,
                max_new_tokens=self.max_new_tokens,
                default_tokens="None: the benchmark's default",
            )
        except ConfigError as e:
            raise ParamError(str(e)) from None
        _require(self.temperature > 0, f"temperature must be > 0 for sampling (greedy is always run too), got {self.temperature}")
        _require(self.n_boot >= 0, f"n_boot must be >= 0 (0: no bootstrap), got {self.n_boot}")
        _require(self.data_path is None or self.data_path.is_dir(), f"data_dir {self.data_dir} is not a folder")
        _require(self.limit is None or self.limit >= 1, f"limit must be >= 1 or None, got {self.limit}")
        _require(bool(self.models) and bool(self.benchmarks), "models and benchmarks must not be empty")
        judged = [b for b in self.benchmarks if getattr(get_task(b), "judged", False)]
        _require(
            not judged or bool(self.judge_model), f"{judged} are scored by an LLM judge: set judge_model (and judge_base_url)"
        )
        _require(len(set(self.models)) == len(self.models), f"models must not repeat: {self.models}")
        for b, n in (self.n_samples_by_benchmark or {}).items():
            _require(b in self.benchmarks, f"n_samples_by_benchmark names {b!r}, which is not in benchmarks {self.benchmarks}")
            _require(n >= 1, f"n_samples_by_benchmark[{b!r}] must be >= 1, got {n}")

    def samples_for(self, benchmark: str) -> int:
        return (self.n_samples_by_benchmark or {}).get(benchmark, self.n_samples)

    # Relative paths resolve against the project root, not the cwd (JupyterLab's kernels start in notebooks/).
    @property
    def store_path(self) -> Path:
        return from_root(self.store)

    @property
    def output_path(self) -> Path:
        return from_root(self.output_dir)

    @property
    def data_path(self) -> Path | None:
        return None if self.data_dir is None else from_root(self.data_dir)


@dataclass(frozen=True)
class Gap(Common):
    output_dir: str = "outputs/latest/gap"


@dataclass(frozen=True)
class Scaling(Common):
    models: list[str] = field(default_factory=lambda: ["smollm2-135m", "qwen2.5-coder-0.5b"])
    benchmarks: list[str] = field(default_factory=lambda: ["humaneval"])
    sizes: list[float] = field(default_factory=lambda: [0.135, 0.5])  # parameters (B) of each model, same order
    output_dir: str = "outputs/latest/scaling"

    def check(self):
        super().check()
        _require(
            len(self.sizes) == len(self.models), f"sizes ({len(self.sizes)}) must give one size per model ({len(self.models)})"
        )


@dataclass(frozen=True)
class Alignment(Common):
    models: list[str] = field(default_factory=lambda: ["smollm2-135m", "qwen2.5-coder-0.5b"])
    benchmarks: list[str] = field(default_factory=lambda: ["humaneval"])
    methods: list[str] = field(
        default_factory=lambda: ["stand-in: SmolLM2-135M-Instruct", "stand-in: Qwen2.5-Coder-0.5B-Instruct"]
    )  # the alignment method of each model, same order
    output_dir: str = "outputs/latest/alignment"

    def check(self):
        super().check()
        _require(
            len(self.methods) == len(self.models),
            f"methods ({len(self.methods)}) must name one method per model ({len(self.models)})",
        )


@dataclass(frozen=True)
class Temperature(Common):
    benchmarks: list[str] = field(default_factory=lambda: ["humaneval"])
    limit: int | None = 5
    temperatures: list[float] = field(default_factory=lambda: [0.0, 0.5, 1.0, 1.5])
    slider_item: int = 0  # which item the live slider re-samples
    output_dir: str = "outputs/latest/temperature"

    def check(self):
        super().check()
        _require(
            all(math.isfinite(t) and t >= 0 for t in self.temperatures),
            f"temperatures must be finite and >= 0, got {self.temperatures}",
        )


@dataclass(frozen=True)
class Repetition(Common):
    benchmarks: list[str] = field(default_factory=lambda: ["humaneval"])
    limit: int | None = 5
    n_samples: int = 4
    repetition_penalties: list[float] = field(default_factory=lambda: [1.0, 1.2])
    output_dir: str = "outputs/latest/repetition"

    def check(self):
        super().check()
        _require(
            all(math.isfinite(r) and r > 0 for r in self.repetition_penalties),
            f"repetition_penalties must be finite and > 0, got {self.repetition_penalties}",
        )


@dataclass(frozen=True)
class Length(Common):
    output_dir: str = "outputs/latest/length"


@dataclass(frozen=True)
class BestOfN(Common):
    reward_models: list[str] = field(default_factory=list)  # HF reward models; empty = the selectors that need none
    selectors: list[str] = field(default_factory=lambda: ["oracle", "majority", "logprob", "random"])
    reference_score: float | None = None  # a stronger model's greedy score, drawn as a line
    reference_label: str = "reference"
    reference_from_paper: bool = False  # C8(c)'s bar: the paper's GPT-4-Turbo line per benchmark (Figure 4)
    output_dir: str = "outputs/latest/best_of_n"

    def check(self):
        super().check()
        bad = [s for s in self.selectors if s not in ("oracle", "majority", "logprob", "random")]
        _require(
            not bad,
            f"unknown selector(s) {bad}: choose from oracle, majority, logprob, random (reward models go in reward_models)",
        )


def grid_label(backend: str, dtype: str, batch_size: int, batch_invariant: bool = False) -> str:
    """A stability grid point's name: "vllm/bfloat16/bs8", "vllm/bfloat16/bs8/invariant"."""
    return f"{backend}/{dtype}/bs{batch_size}" + ("/invariant" if batch_invariant else "")


@dataclass(frozen=True)
class Stability(Common):
    """Greedy under a grid of engines (backend x dtype x batch size, plus vLLM's batch-invariant mode) against a
    reference engine. Greedy only: n_samples, temperature, top_p, top_k, backend and dtype of Common are unused."""

    models: list[str] = field(default_factory=lambda: ["smollm2-135m"])
    benchmarks: list[str] = field(default_factory=lambda: ["gsm8k"])
    limit: int | None = 5
    max_new_tokens: int | None = 32
    backends: list[str] = field(default_factory=lambda: ["vllm", "transformers"])
    dtypes: list[str] = field(default_factory=lambda: ["float32", "bfloat16"])
    batch_sizes: list[int] = field(default_factory=lambda: [1, 5])
    batch_invariant: bool = False  # also vLLM's batch-invariant mode at each dtype x batch size (NVIDIA GPUs only)
    # grid points left out, by label: bfloat16 at batch size 1 (this CPU has no native bf16: its 8-shot prefill is ~3x slower)
    exclude: list[str] = field(default_factory=lambda: ["vllm/bfloat16/bs1", "transformers/bfloat16/bs1"])
    reference_backend: str = "transformers"
    reference_dtype: str = "float32"
    reference_batch_size: int = 1
    output_dir: str = "outputs/latest/stability"

    def check(self):
        super().check()
        from .tasks import get_task

        local = tuple(b for b in BACKENDS if b != "openai")
        bad = [b for b in self.backends if b not in local]
        _require(
            bool(self.backends) and not bad,
            f"backends must be some of {', '.join(local)} (a server's batching is its own), got {self.backends}",
        )
        bad = [d for d in self.dtypes if d not in DTYPES]
        _require(
            bool(self.dtypes) and not bad, f"dtypes must be some of {', '.join(DTYPES)} (named, not auto), got {self.dtypes}"
        )
        _require(
            bool(self.batch_sizes) and all(b >= 1 for b in self.batch_sizes), f"batch_sizes must be >= 1, got {self.batch_sizes}"
        )
        for name, grid in (("backend", self.backends), ("dtype", self.dtypes), ("batch_size", self.batch_sizes)):
            _require(
                getattr(self, f"reference_{name}") in grid,
                f"reference_{name} {getattr(self, f'reference_{name}')!r} must be one of the grid's {name}s {grid}",
            )
        _require(not self.batch_invariant or "vllm" in self.backends, "batch_invariant needs the vllm backend in backends")
        # A label of a point outside this grid is harmless (the offline defaults name vLLM points; a grid may drop vLLM),
        # one that names no possible point is a typo.
        form = re.compile(rf"({'|'.join(local)})/({'|'.join(DTYPES)})/bs[1-9][0-9]*(/invariant)?")
        bad = [x for x in self.exclude if not form.fullmatch(x)]
        _require(not bad, f"exclude names {bad}: a grid point is backend/dtype/bsN[/invariant], e.g. vllm/bfloat16/bs1")
        ref = grid_label(self.reference_backend, self.reference_dtype, self.reference_batch_size)
        _require(ref not in self.exclude, f"exclude must not name the reference {ref}")
        judged = [b for b in self.benchmarks if getattr(get_task(b), "judged", False)]
        _require(not judged, f"stability scores rule-based benchmarks only, not the LLM-judged {judged}")


SCHEMAS: dict[str, type[Common]] = {
    "gap": Gap,
    "scaling": Scaling,
    "alignment": Alignment,
    "temperature": Temperature,
    "repetition": Repetition,
    "length": Length,
    "best_of_n": BestOfN,
    "stability": Stability,
}


def _require(ok: bool, msg: str) -> None:
    if not ok:
        raise ParamError(msg)


def _suggest(name: str, choices) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _type_ok(value, tp) -> bool:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if origin is dict:
        kt, vt = typing.get_args(tp)
        return isinstance(value, dict) and all(_type_ok(k, kt) and _type_ok(v, vt) for k, v in value.items())
    if origin is list:
        (inner,) = typing.get_args(tp)
        return isinstance(value, list) and all(_type_ok(v, inner) for v in value)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, tp)


def schema(notebook: str) -> type[Common]:
    if notebook not in SCHEMAS:
        raise ParamError(f"unknown notebook {notebook!r}{_suggest(notebook, SCHEMAS)}; known: {', '.join(SCHEMAS)}")
    return SCHEMAS[notebook]


def validate(notebook: str, namespace: dict, strict: bool = False):
    """The notebook's parameters, taken from `namespace` (a notebook's globals()), typed and checked.

    strict=True also rejects keys of `namespace` that are not parameters (for YAML files)."""
    cls = schema(notebook)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if strict:
        unknown = [k for k in namespace if k not in fields]
        if unknown:
            raise ParamError(
                "; ".join(f"unknown parameter {k!r} for notebook {notebook!r}{_suggest(k, fields)}" for k in unknown)
                + f". Known: {', '.join(fields)}"
            )
    hints = typing.get_type_hints(cls)
    values = {}
    for name in fields:
        if name not in namespace:
            continue
        v = namespace[name]
        if isinstance(v, tuple):
            v = list(v)
        if not _type_ok(v, hints[name]):
            raise ParamError(f"parameter {name!r} of notebook {notebook!r} must be {_type_name(hints[name])}, got {v!r}")
        if hints[name] is float or (typing.get_origin(hints[name]) is list and typing.get_args(hints[name]) == (float,)):
            v = [float(x) for x in v] if isinstance(v, list) else float(v)
        values[name] = v
    p = cls(**values)
    p.check()
    return p


def _type_name(tp) -> str:
    return str(tp).replace("typing.", "").replace("<class '", "").replace("'>", "")


def parse_value(text: str):
    """A `-p NAME VALUE` value as papermill reads it (True, False, None, ints, floats), else as a YAML scalar or
    flow list/mapping: "30" -> 30, "1e-3" -> 0.001, "[a, b]" -> ["a", "b"], "{gsm8k: 32}" -> {"gsm8k": 32}."""
    if text in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[text]
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def load_params(notebook: str, name_or_path: str) -> dict:
    """A params YAML (`params/<notebook>/<name>.yaml` or a path), checked strictly against the schema."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PARAMS_DIR / notebook / f"{name_or_path}.yaml"
    if not path.is_file():
        avail = sorted(p.stem for p in (PARAMS_DIR / notebook).glob("*.yaml"))
        raise ParamError(f"no params file {path} for notebook {notebook!r}; available: {', '.join(avail) or 'none'}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as e:
        raise ParamError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except yaml.YAMLError as e:  # PyYAML's message spans lines and quotes the file: one line, the place and the problem
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ParamError(f"{path}: not valid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise ParamError(f"{path} must hold a mapping of parameter names to values")
    try:
        validate(notebook, data, strict=True)
    except ParamError as e:
        raise ParamError(f"{path}: {e}") from None
    return data
