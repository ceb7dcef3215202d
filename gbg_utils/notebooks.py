"""Run the research notebooks headless with papermill and build a static HTML report of the run.

    >>> results = run_notebooks(["gap", "length"], "offline")      # outputs/<run>/...
    >>> results[0].status, results[0].output

A failed notebook is reported with the path of its partial output and does not stop the others.
Figures are embedded in the HTML pages, so the report folder can be copied anywhere and still works.
"""
from __future__ import annotations

import datetime as _dt
import html
import json
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from .params import NOTEBOOK_DIR, NOTEBOOKS, PROJ_ROOT, ParamError, load_params, schema, validate


@dataclass
class NotebookResult:
    name: str
    status: str  # "ok" | "failed"
    output: Path  # the executed (or partially executed) notebook
    out_dir: Path  # its tables, figures and provenance
    seconds: float
    error: str | None = None
    params: dict | None = None


def notebook_path(name: str) -> Path:
    schema(name)  # a clear error for an unknown name
    return NOTEBOOK_DIR / f"{name}.ipynb"


def notebook_parameters(name: str) -> dict:
    """The parameters cell of a notebook, as papermill reads it: {name: {inferred_type_name, default, help}}."""
    import papermill as pm

    return pm.inspect_notebook(str(notebook_path(name)))


def check_params_file(name: str, params_name: str) -> dict:
    """A params YAML whose every key is a parameter of the notebook (papermill itself only warns)."""
    data = load_params(name, params_name)
    declared = notebook_parameters(name)
    unknown = [k for k in data if k not in declared]
    if unknown:
        raise ParamError(f"params {params_name!r} for notebook {name!r}: {unknown} are not in its parameters cell")
    return data


def run_notebooks(names: list[str] | str, params_name: str, run_dir: str | Path | None = None, overrides: dict | None = None,
                  progress: bool = True) -> list[NotebookResult]:
    """Execute notebooks with `params/<notebook>/<params_name>.yaml` (+ overrides) into `run_dir`."""
    import papermill as pm

    names = list(NOTEBOOKS) if names == "all" else ([names] if isinstance(names, str) else list(names))
    for n in names:
        schema(n)
    run_dir = Path(run_dir or PROJ_ROOT / "outputs" / f"{_dt.datetime.now():%Y%m%d-%H%M%S}-{params_name}")
    run_dir.mkdir(parents=True, exist_ok=True)
    # Check every params file before running anything: a typo should not surface an hour in.
    all_params = {n: {**check_params_file(n, params_name), **(overrides or {})} for n in names}
    for n, p in all_params.items():  # overrides too: papermill would only warn on a misspelled one
        validate(n, p, strict=True)
    results = []
    for i, name in enumerate(names, 1):
        out_dir = run_dir / name
        out_nb = run_dir / f"{name}.ipynb"
        params = {**all_params[name], "output_dir": str(out_dir)}
        print(f"[gbg] ({i}/{len(names)}) {name} with params/{name}/{params_name}.yaml -> {out_nb}", flush=True)
        t0 = time.time()
        try:
            pm.execute_notebook(str(notebook_path(name)), str(out_nb), parameters=params, cwd=str(PROJ_ROOT),
                                progress_bar=progress, kernel_name="python3")
            results.append(NotebookResult(name, "ok", out_nb, out_dir, time.time() - t0, params=params))
        except Exception as e:  # a failed notebook must not stop the others
            msg = str(e).strip().splitlines()
            err = "\n".join(msg[-15:]) if msg else traceback.format_exc(limit=3)
            results.append(NotebookResult(name, "failed", out_nb, out_dir, time.time() - t0, err, params))
            print(f"[gbg] {name} FAILED after {time.time() - t0:.0f} s; partial output: {out_nb}\n{err}", flush=True)
        else:
            print(f"[gbg] {name} ok in {time.time() - t0:.0f} s", flush=True)
    report = build_report(run_dir, results, params_name)
    print(f"[gbg] report: {report}", flush=True)
    return results


def build_report(run_dir: Path, results: list[NotebookResult], params_name: str) -> Path:
    """index.html linking one HTML page per executed notebook, with parameters, provenance and status."""
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
        thumbs = "".join(f'<a href="{r.name}/{html.escape(f)}"><img src="{r.name}/{html.escape(f)}" alt="{html.escape(f)}" '
                         f'style="height:160px;margin:4px;border:1px solid #ddd"></a>' for f in figures)
        status = ('<span style="color:#1a7f37">ok</span>' if r.status == "ok"
                  else f'<span style="color:#cf222e">failed</span><pre>{html.escape(r.error or "")}</pre>')
        nb_link = f'<a href="{r.name}.html">notebook</a> · <a href="{r.name}.ipynb">.ipynb</a>' if r.output.is_file() else "no output"
        params = {k: v for k, v in (r.params or {}).items() if k != "output_dir"}
        rows.append(
            f"<section><h2>{r.name}</h2><p>{status} in {r.seconds:.0f} s · {nb_link}</p><div>{thumbs}</div>"
            f"<p>tables: {links or 'none'}</p><details><summary>parameters</summary><pre>{html.escape(json.dumps(params, indent=2))}</pre></details>"
            f"<details><summary>provenance</summary><pre>{html.escape(json.dumps(prov, indent=2, default=str))}</pre></details></section>"
        )
    ok = sum(r.status == "ok" for r in results)
    index = run_dir / "index.html"
    index.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>gbg report</title>"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}section{border-top:1px solid #ccc;padding:.5em 0}</style></head>"
        f"<body><h1>gbg report: {html.escape(run_dir.name)}</h1><p>params: <code>{html.escape(params_name)}</code> · "
        f"{ok}/{len(results)} notebooks ok · built {_dt.datetime.now():%Y-%m-%d %H:%M}</p>{''.join(rows)}</body></html>"
    )
    return index
