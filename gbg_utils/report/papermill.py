"""Run the research notebooks headless with papermill and build a static HTML report of the run.

    >>> results = run_notebooks(["gap", "length"], "offline")      # outputs/<run>/...
    >>> results[0].status, results[0].output
    >>> run_notebooks("gap", "offline", files=["my.yaml"], overrides={"limit": 30})   # layered like papermill -f, -p

A failed notebook is reported with the path of its partial output and does not stop the others.
Figures are embedded in the HTML pages, so the report folder can be copied anywhere and still works.
Engine logs (vLLM, transformers, torch) go to <run>/engine.log: the kernels inherit GBG_ENGINE_LOG.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime as _dt
import html
import json
import os
import time
import traceback
import typing
from dataclasses import dataclass
from pathlib import Path

from ..params import NOTEBOOK_DIR, NOTEBOOKS, ParamError, _type_ok, load_params, schema, validate
from ..paths import OUTPUTS, PROJ_ROOT
from .scorecard import scorecard_html

ENGINE_LOG = "engine.log"  # in the run folder; the generation code writes engine output to $GBG_ENGINE_LOG


@dataclass
class NotebookResult:
    name: str
    status: str  # "ok" | "failed"
    output: Path  # the executed (or partially executed) notebook
    out_dir: Path  # its tables, figures and provenance
    seconds: float
    error: str | None = None
    params: dict | None = None


def kernel_config():
    """Config for the kernels papermill starts: CurveZMQ transport encryption where this jupyter_client and pyzmq
    support it. ipykernel 7.4 warns on every kernel start over plain TCP ("Kernel is running over TCP without
    encryption"), a line in the terminal per notebook; 'auto' encrypts only when the kernelspec declares support."""
    from traitlets.config import Config

    cfg = Config()
    try:
        import zmq
        from jupyter_client import KernelManager
    except ImportError:
        return cfg
    if zmq.has("curve") and "transport_encryption" in KernelManager.class_trait_names():
        cfg.KernelManager.transport_encryption = "auto"
    return cfg


def execute(notebook: Path, out: Path, params: dict, progress: bool = True) -> None:
    """Run one notebook headless with papermill, from the project root, on the `python3` kernel."""
    import papermill as pm

    pm.execute_notebook(
        str(notebook),
        str(out),
        parameters=params,
        cwd=str(PROJ_ROOT),
        progress_bar=progress,
        kernel_name="python3",
        config=kernel_config(),
    )


def notebook_path(name: str) -> Path:
    schema(name)  # a clear error for an unknown name
    return NOTEBOOK_DIR / f"{name}.ipynb"


def notebook_parameters(name: str) -> dict:
    """The parameters cell of a notebook, as papermill reads it: {name: {inferred_type_name, default, help}}."""
    import papermill as pm

    return pm.inspect_notebook(str(notebook_path(name)))


def _annotation_type(text: str):
    """A parameters-cell annotation ("Optional[int]", "list[str]") as a type, or None when unreadable."""
    names = {
        "Optional": typing.Optional,
        "Union": typing.Union,
        "List": list,
        "Dict": dict,
        "list": list,
        "dict": dict,
        "int": int,
        "float": float,
        "str": str,
        "bool": bool,
        "None": None,
    }
    try:
        return eval(text, {"__builtins__": {}}, names)  # noqa: S307 - a type expression from our own notebooks
    except Exception:
        return None


def parameters_mismatches(name: str, path: str | Path | None = None) -> list[str]:
    """How the notebook's `parameters` cell differs from its schema in gbg_utils/params.py: names missing on
    either side, defaults that differ, annotations of another type; [] when they agree."""
    import papermill as pm

    cls = schema(name)
    declared = pm.inspect_notebook(str(path or notebook_path(name)))
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    where = f"{name}.ipynb"
    out = [f"{where}: parameter {k!r} is not in the schema {cls.__name__}" for k in declared if k not in fields]
    out += [f"{where}: schema field {k!r} ({cls.__name__}) is not in the parameters cell" for k in fields if k not in declared]
    for k, f in fields.items():
        if k not in declared:
            continue
        d = declared[k]
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        try:
            value = ast.literal_eval(d["default"])
        except (ValueError, SyntaxError):
            out.append(f"{where}: default of {k!r} is not a literal: {d['default']}")
            continue
        if value != default or not _type_ok(value, hints[k]):
            out.append(f"{where}: default of {k!r} is {value!r}, the schema's is {default!r}")
        tp = _annotation_type(d["inferred_type_name"] or "")
        if tp != hints[k]:
            out.append(f"{where}: {k!r} is annotated {d['inferred_type_name']}, the schema says {hints[k]}")
    return out


def check_params_file(name: str, params_name: str) -> dict:
    """A params YAML whose every key is a parameter of the notebook (papermill itself only warns)."""
    data = load_params(name, params_name)
    declared = notebook_parameters(name)
    unknown = [k for k in data if k not in declared]
    if unknown:
        raise ParamError(f"params {params_name!r} for notebook {name!r}: {unknown} are not in its parameters cell")
    return data


def check_run_dir(run_dir: Path) -> None:
    """A run goes into a new or empty folder: in a used one, a notebook that fails this time would show the last
    run's tables, figures and verdicts in the report as if they were this run's."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ParamError(f"--out {run_dir} is not a folder")
    held = sorted(p.name for p in run_dir.iterdir()) if run_dir.is_dir() else []
    if held:
        shown = ", ".join(held[:5]) + (f" and {len(held) - 5} more" if len(held) > 5 else "")
        raise ParamError(f"--out {run_dir} is not empty (it holds {shown}): a run needs a new or empty folder")


def run_notebooks(
    names: list[str] | str,
    params_name: str,
    run_dir: str | Path | None = None,
    overrides: dict | None = None,
    progress: bool = True,
    files: list[str] | tuple = (),
) -> list[NotebookResult]:
    """Execute notebooks into `run_dir` with their parameters layered as papermill's -f and -p do: the notebook's
    defaults, then `params/<notebook>/<params_name>.yaml`, then each of `files` in order (later wins), then
    `overrides`. Everything is checked strictly against each notebook, and `run_dir` is new or empty, before the first
    one runs."""
    names = list(NOTEBOOKS) if names == "all" else ([names] if isinstance(names, str) else list(names))
    for n in names:
        schema(n)
    if overrides and "output_dir" in overrides:
        raise ParamError("output_dir is set by gbg run (<run folder>/<notebook>); choose the run folder with --out")
    # Check every params file before running anything: a typo should not surface an hour in.
    all_params = {}
    for n in names:
        layered = check_params_file(n, params_name)
        for f in files:
            layered.update(check_params_file(n, f))
        all_params[n] = {**layered, **(overrides or {})}
    for n, p in all_params.items():  # overrides too: papermill would only warn on a misspelled one
        validate(n, p, strict=True)
    run_dir = Path(run_dir or OUTPUTS / f"{_dt.datetime.now():%Y%m%d-%H%M%S}-{params_name}")
    check_run_dir(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    layers = " + ".join([params_name, *map(str, files)] + (["-p " + ", ".join(overrides)] if overrides else []))
    saved_log = os.environ.get("GBG_ENGINE_LOG")
    os.environ["GBG_ENGINE_LOG"] = str(run_dir / ENGINE_LOG)  # the kernels inherit it: engine output stays out of cells
    results = []
    try:
        for i, name in enumerate(names, 1):
            out_dir = run_dir / name
            out_nb = run_dir / f"{name}.ipynb"
            params = {**all_params[name], "output_dir": str(out_dir)}
            print(f"[gbg] ({i}/{len(names)}) {name} with {layers} -> {out_nb}", flush=True)
            t0 = time.time()
            try:
                execute(notebook_path(name), out_nb, params, progress)
                results.append(NotebookResult(name, "ok", out_nb, out_dir, time.time() - t0, params=params))
            except Exception as e:  # a failed notebook must not stop the others
                msg = str(e).strip().splitlines()
                err = "\n".join(msg[-15:]) if msg else traceback.format_exc(limit=3)
                results.append(NotebookResult(name, "failed", out_nb, out_dir, time.time() - t0, err, params))
                print(f"[gbg] {name} FAILED after {time.time() - t0:.0f} s; partial output: {out_nb}\n{err}", flush=True)
            else:
                print(f"[gbg] {name} ok in {time.time() - t0:.0f} s", flush=True)
    finally:
        if saved_log is None:
            os.environ.pop("GBG_ENGINE_LOG", None)
        else:
            os.environ["GBG_ENGINE_LOG"] = saved_log
    report = build_report(run_dir, results, layers)
    print(f"[gbg] report: {report}", flush=True)
    return results


def build_report(run_dir: Path, results: list[NotebookResult], params_name: str) -> Path:
    """index.html: the scorecard of the paper's claims (report.scorecard, from each notebook's verdicts.json), then
    one HTML page per executed notebook, with parameters, provenance and status."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter()
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    rows = []
    for r in results:
        page = run_dir / f"{r.name}.html"
        if r.output.is_file():
            body, _ = exporter.from_filename(str(r.output))
            page.write_text(body)
        prov_file = r.out_dir / "provenance.json"
        prov = json.loads(prov_file.read_text()) if prov_file.is_file() else {}
        figures = sorted(p.name for p in r.out_dir.glob("*.png")) if r.out_dir.is_dir() else []
        tables = sorted(p.name for p in r.out_dir.glob("*.csv")) if r.out_dir.is_dir() else []
        links = " ".join(f'<a href="{r.name}/{html.escape(f)}">{html.escape(f)}</a>' for f in tables)
        if (r.out_dir / "items.html").is_file():  # the item explorer's page (report/items.py)
            links += f' · <a href="{r.name}/items.html">items: greedy and sampled completions</a>'
        thumbs = "".join(
            f'<a href="{r.name}/{html.escape(f)}"><img src="{r.name}/{html.escape(f)}" alt="{html.escape(f)}" '
            f'style="height:160px;margin:4px;border:1px solid #ddd"></a>'
            for f in figures
        )
        status = (
            '<span style="color:#1a7f37">ok</span>'
            if r.status == "ok"
            else f'<span style="color:#cf222e">failed</span><pre>{html.escape(r.error or "")}</pre>'
        )
        nb_link = (
            f'<a href="{r.name}.html">notebook</a> · <a href="{r.name}.ipynb">.ipynb</a>' if r.output.is_file() else "no output"
        )
        params = {k: v for k, v in (r.params or {}).items() if k != "output_dir"}
        rows.append(
            f"<section><h2>{r.name}</h2><p>{status} in {r.seconds:.0f} s · {nb_link}</p><div>{thumbs}</div>"
            f"<p>tables: {links or 'none'}</p><details><summary>parameters</summary><pre>{html.escape(json.dumps(params, indent=2))}</pre></details>"
            f"<details><summary>provenance</summary><pre>{html.escape(json.dumps(prov, indent=2, default=str))}</pre></details></section>"
        )
    ok = sum(r.status == "ok" for r in results)
    log = run_dir / ENGINE_LOG
    log_link = (
        f'<a href="{ENGINE_LOG}">engine log</a> ({log.stat().st_size / 1024:.0f} KiB)'
        if log.is_file()
        else "no engine log written"
    )
    scorecard = scorecard_html([(r.name, r.out_dir) for r in results])  # the paper's claims first: what the run says of them
    index = run_dir / "index.html"
    index.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>gbg report</title>"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}section{border-top:1px solid #ccc;padding:.5em 0}</style></head>"
        f"<body><h1>gbg report: {html.escape(run_dir.name)}</h1><p>params: <code>{html.escape(params_name)}</code> · "
        f"{ok}/{len(results)} notebooks ok · {log_link} · built {_dt.datetime.now():%Y-%m-%d %H:%M}</p>{scorecard}{''.join(rows)}</body></html>"
    )
    return index
