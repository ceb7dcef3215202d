"""The report's front page: every notebook's verdicts (gbg_utils.findings) in one table, the paper's figure beside yours.

    >>> html = scorecard_html([("gap", run_dir / "gap"), ("length", run_dir / "length")])   # (notebook, output folder)

A notebook that wrote no verdicts.json (it failed, or predates the claims) is listed as such; an unreadable
file is named with its error; neither stops the report.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from pathlib import Path

from ..findings import VERDICT_FILE, VERDICTS, Verdict, load_verdicts, paper

COLORS = {"supported": "#1a7f37", "contradicted": "#cf222e", "inconclusive": "#9a6700", "not testable": "#57606a"}


def collect(entries) -> tuple[list[tuple[str, Verdict]], list[str]]:
    """(notebook, verdict) pairs from each (notebook, output folder), in claim order; and one line per notebook
    whose verdicts are missing or unreadable."""
    found, problems = [], []
    for name, out_dir in entries:
        path = Path(out_dir) / VERDICT_FILE
        if not path.is_file():
            problems.append(f"{name}: no {VERDICT_FILE}")
            continue
        try:
            found += [(name, v) for v in load_verdicts(path)]
        except ValueError as e:
            problems.append(f"{name}: {e}")
    found.sort(key=lambda nv: (nv[1].claim_id, nv[0]))
    return found, problems


def protocol_of(out_dir) -> str | None:
    """The protocol a notebook's numbers were measured under (its provenance.json's parameters), or None."""
    try:
        return json.loads((Path(out_dir) / "provenance.json").read_text())["params"].get("protocol")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def scorecard_html(entries, link_pages: bool = True) -> str:
    """An HTML section: one row per verdict (claim, paper, yours with 95% CI, verdict, notebook) and a tally."""
    found, problems = collect(entries)
    protocols = {name: protocol_of(out_dir) for name, out_dir in entries}
    e = html.escape
    rows = []
    for name, v in found:
        color = COLORS.get(v.verdict, "#000")
        nb = f'<a href="{e(name)}.html">{e(name)}</a>' if link_pages else e(name)
        if protocols.get(name):
            nb += '<br><small class="protocol">' + e(protocols[name]) + " protocol</small>"
        sizes = ", ".join(s for s in (f"{v.n_items} items" if v.n_items else "", f"{v.n_runs} runs" if v.n_runs else "") if s)
        stand = ' <span style="background:#fff8c5">stand-in models</span>' if v.stand_in else ""
        rows.append(
            f'<tr class="verdict" data-claim="{e(v.claim_id)}" data-verdict="{e(v.verdict)}">'
            f"<td><b>{e(v.claim_id)}</b> {e(v.claim)}</td><td>{e(v.paper)}</td>"
            f"<td>{e(v.yours)}{f'<br><small>{e(sizes)}</small>' if sizes else ''}{stand}</td>"
            f'<td style="color:{color};font-weight:bold">{e(v.verdict)}</td><td>{e(v.reason)}</td>'
            f'<td class="rule"><small>{e(v.rule or "(not recorded)")}</small></td><td>{nb}</td></tr>'
        )
    tally = Counter(v.verdict for _, v in found)
    summary = " · ".join(f'<span style="color:{COLORS[k]}">{tally[k]} {k}</span>' for k in VERDICTS if tally[k]) or "no verdicts"
    meta = paper.load()["paper"]
    head = (
        '<section id="scorecard"><h2>The paper\'s findings on this run</h2>'
        f'<p>Claims of <a href="{e(meta["url"])}">{e(meta["title"])}</a> ({e(meta["version"])}) tested on this run\'s store: '
        f"{summary}. Each claim is decided by its written rule (beside its verdict; docs/scorecard.md): units counted, "
        "the margin the paper's words imply, the paper's scope, and a majority of the units in scope; stand-in models "
        "answer nothing about the claim.</p>"
    )
    missing = f"<p><small>{e('; '.join(problems))}</small></p>" if problems else ""
    if not rows:
        return head + "<p>No notebook wrote verdicts.</p>" + missing + "</section>"
    table = (
        '<table style="border-collapse:collapse;font-size:.85em" border="1" cellpadding="4">'
        "<tr><th>claim</th><th>paper</th><th>yours (95% CI)</th><th>verdict</th><th>why</th><th>decision rule</th><th>notebook</th></tr>"
        + "".join(rows)
        + "</table>"
    )
    return head + table + missing + "</section>"
