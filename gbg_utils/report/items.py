"""The item explorer: one benchmark item at a time -- its prompt, the greedy completion and every sampled one, each
with its score, extracted answer, reason, token count and (where stored) reward; answers that differ from the
greedy one are marked. The same view in three places; each reads the store and never generates:

    >>> item_explorer(store, df, protocol="paper")        # JupyterLab: pick model, benchmark, config, order, item
    >>> write_items_page(store, df, "outputs/gap/items.html", protocol="paper")   # the report's items.html
    >>> print(item_text(item_views(store, df, "gsm8k", "qwen2.5-coder-0.5b", protocol="paper")[0]))   # `gbg show`

`df` is a notebook's table (`study.generate_and_score`): the explorer shows exactly the samples it holds (their texts are
read from the store by sample key). Items are ordered by one of `ORDERS`; the paper's Figure 3 is the first
("greedy right, samples mostly wrong": greedy score minus the samples' mean, largest first).
"""

from __future__ import annotations

import functools
import html
import random
from dataclasses import dataclass, field

import pandas as pd

from ..store import KEY

ORDERS = ("greedy right, samples mostly wrong", "largest spread", "longest", "benchmark order")
PAGE_TOP, PAGE_RANDOM = 20, 5  # items.html: the items with the largest greedy-minus-sampling difference, and random ones
PAGE_SAMPLES = 32  # sampled completions shown per item on the page (all of them: `gbg show`)
PAGE_TEXT_CHARS = 4000  # per completion on the page: at the paper's N=128 the page stays a few MB


@dataclass
class ItemView:
    """One item under one sampled config: its prompt, greedy row(s) and sampled rows (dicts: sample_idx, text,
    score, extracted, reason, n_tokens, finish_reason, rewards)."""

    model: str
    benchmark: str
    item_id: str
    config: str  # the sampled config, in words
    config_key: str
    prompt: str
    greedy: list[dict] = field(default_factory=list)
    samples: list[dict] = field(default_factory=list)

    @property
    def greedy_answer(self):
        return self.greedy[0]["extracted"] if self.greedy else None

    def differs(self, row: dict) -> bool:
        """The sample's extracted answer is not the greedy one (no greedy output: nothing differs)."""
        return bool(self.greedy) and _norm(row["extracted"]) != _norm(self.greedy_answer)

    def summary(self) -> str:
        s = [r["score"] for r in self.samples if _num(r["score"])]
        g = self.greedy[0]["score"] if self.greedy else None
        mean = f"{sum(s) / len(s):.2f}" if s else "n/a"
        n_diff = sum(self.differs(r) for r in self.samples)
        return (
            f"greedy {_fmt(g)} · samples mean {mean} over {len(s)} scored of {len(self.samples)} · "
            f"{n_diff} answer(s) differ from greedy"
        )


# --- building the views ----------------------------------------------------------------------------
def with_texts(store, df: pd.DataFrame) -> pd.DataFrame:
    """`df`'s rows with their completions' texts, read from the store by sample key."""
    if "text" in df.columns:
        return df
    parts = []
    for (m, b, ck), g in df.groupby(["model", "benchmark", "config_key"], sort=False):  # the configs shown, no others
        s = store.samples(model=m, benchmark=b, config_key=ck)[[*KEY, "text"]]
        parts.append(g.merge(s, on=list(KEY), how="left"))
    return pd.concat(parts, ignore_index=True) if parts else df.assign(text=pd.Series(dtype=str))


def config_label(row) -> str:
    parts = [f"T={row.temperature:g}", f"top_p={row.top_p:g}"]
    if row.top_k not in (-1, None):
        parts.append(f"top_k={int(row.top_k)}")
    if row.repetition_penalty != 1:
        parts.append(f"rep={row.repetition_penalty:g}")
    return " ".join(parts)


def sampled_configs(df: pd.DataFrame, model: str, benchmark: str) -> dict[str, str]:
    """{config_key: label} of the sampled (non-greedy) configs of one model on one benchmark."""
    d = df[(df["model"] == model) & (df["benchmark"] == benchmark) & ~df["greedy"]]
    first = d.drop_duplicates("config_key")
    return {r.config_key: config_label(r) for r in first.itertuples()}


def render_prompt(prompt) -> str:
    """A task's prompt as text: chat turns as "[role]" blocks, a prefilled assistant turn marked as such."""
    if isinstance(prompt, str):
        return prompt
    if hasattr(prompt, "message_list"):  # tasks.base.PrefilledChat
        turns = [f"[{m['role']}]\n{m['content']}" for m in prompt.message_list()]
        if prompt.prefill:
            turns.append(f"[assistant, prefilled]\n{prompt.prefill}")
        return "\n\n".join(turns)
    return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in prompt)


def item_views(
    store,
    df: pd.DataFrame,
    benchmark: str,
    model: str,
    config_key: str | None = None,
    order: str = ORDERS[0],
    protocol: str = "paper",
    data_dir=None,
) -> list[ItemView]:
    """Every item of `df` for one model, benchmark and sampled config (default: the first), in `order`."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
    configs = sampled_configs(df, model, benchmark)
    d = df[(df["model"] == model) & (df["benchmark"] == benchmark)]
    if d.empty:
        return []
    if config_key is None:
        config_key = next(iter(configs), None)
    if config_key is not None and config_key not in configs:
        raise ValueError(f"config {config_key!r} is not a sampled config of {model} on {benchmark}: {', '.join(configs)}")
    if config_key is None:  # greedy outputs only
        rows = d[d["greedy"]]
    else:
        greedy_key = d.loc[d["config_key"] == config_key, "greedy_key"].iloc[0]
        rows = d[d["config_key"].isin([config_key, greedy_key])]
    rows = with_texts(store, rows)
    task, by_id = _benchmark(benchmark, protocol, data_dir)
    rewards = [c for c in rows.columns if isinstance(c, str) and c.startswith("reward:")]
    views = []
    for item_id, g in rows.groupby("item_id", sort=False):
        item = by_id.get(str(item_id))
        prompt = render_prompt(task.prompt(item)) if item is not None else f"(item {item_id} is not in {benchmark}'s data)"
        v = ItemView(model, benchmark, str(item_id), configs.get(config_key, "greedy only"), config_key or "", prompt)
        for r in g.sort_values("sample_idx").to_dict("records"):
            rec = {k: r.get(k) for k in ("sample_idx", "text", "score", "extracted", "reason", "n_tokens", "finish_reason")}
            rec["rewards"] = {c.split(":", 1)[1]: r[c] for c in rewards if _num(r.get(c))}
            (v.greedy if r["greedy"] else v.samples).append(rec)
        views.append(v)
    return order_views(views, order)


@functools.lru_cache(maxsize=8)
def _benchmark(benchmark: str, protocol: str, data_dir) -> tuple:
    """The task under `protocol` and its items by id, read once: every view of the widget and of items.html asks."""
    from ..tasks import get_task

    task = get_task(benchmark, protocol)
    return task, {str(it.id): it for it in task.load_all(data_dir)}


def order_views(views: list[ItemView], order: str) -> list[ItemView]:
    def gap(v):
        s = [r["score"] for r in v.samples if _num(r["score"])]
        g = v.greedy[0]["score"] if v.greedy and _num(v.greedy[0]["score"]) else None
        return -((g - sum(s) / len(s)) if (g is not None and s) else float("-inf"))

    def spread(v):
        answers = {_norm(r["extracted"]) for r in v.samples}
        s = [r["score"] for r in v.samples if _num(r["score"])]
        var = pd.Series(s, dtype=float).std(ddof=0) if s else 0.0
        return (-len(answers), -(var if var == var else 0.0))

    def longest(v):
        n = [r["n_tokens"] for r in v.samples + v.greedy if _num(r["n_tokens"])]
        return -(sum(n) / len(n)) if n else 0.0

    if order == "benchmark order":
        return list(views)
    key = {ORDERS[0]: gap, ORDERS[1]: spread, ORDERS[2]: longest}[order]
    return sorted(views, key=key)  # stable: ties keep the benchmark's order


def stored_frame(store, model: str, benchmark: str, protocol: str = "paper") -> pd.DataFrame:
    """What `gbg show` reads: every stored sample of one model on one benchmark generated under `protocol` (the
    protocol its run recorded), with its score under that protocol's rule."""
    from ..tasks import get_task

    task = get_task(benchmark, protocol)
    runs = store.runs()
    of = {r.run_id: (r.provenance or {}).get("protocol", "gbg") for r in runs.itertuples()} if len(runs) else {}
    df = store.frame(model=model, benchmark=benchmark, scorer_version=task.version)
    return df[df["run_id"].map(of).fillna("gbg") == protocol].reset_index(drop=True)


# --- rendering --------------------------------------------------------------------------------------
def item_text(v: ItemView, width: int = 100) -> str:
    """The view for a terminal (`gbg show`): every completion in full; "≠" marks an answer other than greedy's."""
    bar = "─" * width
    out = [
        f"{v.model} · {v.benchmark} · item {v.item_id} · {v.config}",
        v.summary(),
        bar,
        "PROMPT",
        v.prompt,
    ]
    for label, rows in (("GREEDY", v.greedy), (f"SAMPLES ({len(v.samples)})", v.samples)):
        out += [bar, label]
        for r in rows:
            mark = "≠" if label != "GREEDY" and v.differs(r) else " "
            out.append(f"{mark} #{r['sample_idx']} {_row_facts(r)}")
            out.append(_indent(r["text"] or ""))
    return "\n".join(out)


_CSS = (
    "body{font-family:sans-serif;max-width:1200px;margin:1.5em auto}section{border-top:2px solid #999;margin-top:1.5em}"
    "pre{white-space:pre-wrap;margin:0;font-size:12px}table{border-collapse:collapse;width:100%}"
    "td,th{border:1px solid #ddd;padding:3px 6px;vertical-align:top;text-align:left}.facts{white-space:nowrap;font-size:12px}"
)
# Row colours, inline on each row: JupyterLab shows the widget's HTML without the page's style sheet.
ROW_COLOURS = {"greedy": "#e7f0ff", "differs": "#fff3c4"}


def _row_style(cls: str) -> str:
    return f" style='background:{ROW_COLOURS[cls]}'" if cls in ROW_COLOURS else ""


def item_html(v: ItemView, max_samples: int | None = None, max_chars: int | None = None) -> str:
    """One item as an HTML fragment; every model-written string is escaped."""
    e = html.escape
    shown = v.samples if max_samples is None else v.samples[:max_samples]
    body = []
    for cls, r in [("greedy", r) for r in v.greedy] + [("differs" if v.differs(r) else "", r) for r in shown]:
        text = r["text"] or ""
        cut = ""
        if max_chars is not None and len(text) > max_chars:
            text, cut = text[:max_chars], f"\n… {len(r['text']) - max_chars} more characters (gbg show prints them all)"
        who = "greedy" if cls == "greedy" else f"#{r['sample_idx']}"
        body.append(
            f"<tr class='{cls}'{_row_style(cls)}><td>{e(who)}</td><td class='facts'>{e(_row_facts(r))}</td><td><pre>{e(text)}{e(cut)}</pre></td></tr>"
        )
    more = len(v.samples) - len(shown)
    note = f"<p>{more} more sampled completions in the store: <code>{e(show_command(v))}</code></p>" if more > 0 else ""
    return (
        f"<section><h3>{e(v.model)} · {e(v.benchmark)} · item {e(v.item_id)} · {e(v.config)}</h3><p>{e(v.summary())}</p>"
        f"<details><summary>prompt</summary><pre>{e(v.prompt)}</pre></details>"
        f"<table><tr><th></th><th>score · answer · tokens</th><th>completion</th></tr>{''.join(body)}</table>{note}</section>"
    )


def items_page(views: list[ItemView], title: str, note: str = "") -> str:
    """A self-contained HTML page (no scripts, no external files): opens from disk."""
    e = html.escape
    parts = [item_html(v, PAGE_SAMPLES, PAGE_TEXT_CHARS) for v in views]
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{e(title)}</h1><p>{e(note)}</p><p>Rows: <span{_row_style('greedy')}>greedy</span>, "
        f"<span{_row_style('differs')}>an answer other than greedy's</span>.</p>{''.join(parts)}</body></html>"
    )


def page_views(store, df: pd.DataFrame, protocol: str = "paper", data_dir=None, seed: int = 0) -> list[ItemView]:
    """The items of items.html: per model, benchmark and sampled config, the items with the largest greedy-minus-
    sampling difference (`PAGE_TOP` in all, shared round-robin between those groups) and `PAGE_RANDOM` random ones."""
    groups = []
    for (m, b), _ in df.groupby(["model", "benchmark"], sort=False):
        for ck in sampled_configs(df, m, b):
            groups.append(item_views(store, df, b, m, ck, ORDERS[0], protocol, data_dir))
    picked, seen = [], set()
    for rank in range(max((len(g) for g in groups), default=0)):
        for g in groups:
            if rank < len(g) and len(picked) < PAGE_TOP:
                picked.append(g[rank])
                seen.add(id(g[rank]))
    rest = [v for g in groups for v in g if id(v) not in seen]
    picked += random.Random(seed).sample(rest, min(PAGE_RANDOM, len(rest)))
    return picked


def write_items_page(store, df: pd.DataFrame, path, protocol: str = "paper", data_dir=None, title: str = "items") -> None:
    """items.html beside a notebook's tables (study.save calls it)."""
    from pathlib import Path

    views = page_views(store, df, protocol, data_dir)
    note = (
        f"{len(views)} items: up to {PAGE_TOP} with the largest greedy-minus-sampling difference and {PAGE_RANDOM} at random; "
        f"at most {PAGE_SAMPLES} sampled completions each, cut at {PAGE_TEXT_CHARS} characters."
    )
    Path(path).write_text(items_page(views, title, note), encoding="utf-8")


# --- JupyterLab ------------------------------------------------------------------------------------
class ItemExplorer:
    """Dropdowns for model, benchmark, sampled config, order and item; the item below. Headless: set `.value`s
    and read `.out.value` (the HTML shown)."""

    def __init__(self, store, df: pd.DataFrame, protocol: str = "paper", data_dir=None):
        import ipywidgets as W

        self.store, self.df, self.protocol, self.data_dir = store, df, protocol, data_dir
        self._views: list[ItemView] = []
        style = {"description_width": "initial"}
        self.model = W.Dropdown(options=list(dict.fromkeys(df["model"])), description="model", style=style)
        self.benchmark = W.Dropdown(description="benchmark", style=style)
        self.config = W.Dropdown(description="config", style=style)
        self.order = W.Dropdown(options=list(ORDERS), value=ORDERS[0], description="order", style=style)
        self.item = W.Dropdown(description="item", style=style, layout=W.Layout(width="60%"))
        self.out = W.HTML()
        self._busy = False  # while a change cascades down (model -> benchmark -> config -> items), observers wait
        self.model.value = self.model.options[0] if self.model.options else None
        self.model.observe(lambda _: self._changed(self._benchmarks), names="value")
        self.benchmark.observe(lambda _: self._changed(self._configs), names="value")
        self.config.observe(lambda _: self._changed(self._items), names="value")
        self.order.observe(lambda _: self._changed(self._items), names="value")
        self.item.observe(lambda _: self._changed(self._show), names="value")
        self.widget = W.VBox([W.HBox([self.model, self.benchmark, self.config]), W.HBox([self.order, self.item]), self.out])
        self._benchmarks()

    def _changed(self, step) -> None:
        if not self._busy:
            self._busy = True
            try:
                step()
            finally:
                self._busy = False

    @staticmethod
    def _set(dropdown, options) -> None:
        dropdown.options = options
        first = options[0] if options else None
        dropdown.value = first[1] if isinstance(first, tuple) else first

    def _benchmarks(self):
        d = self.df[self.df["model"] == self.model.value]
        self._set(self.benchmark, list(dict.fromkeys(d["benchmark"])))
        self._configs()

    def _configs(self):
        cfg = sampled_configs(self.df, self.model.value, self.benchmark.value) if self.benchmark.value else {}
        self._set(self.config, [(label, key) for key, label in cfg.items()])
        self._items()

    def _items(self):
        self._views = []
        if self.benchmark.value:
            self._views = item_views(
                self.store,
                self.df,
                self.benchmark.value,
                self.model.value,
                self.config.value,
                self.order.value,
                self.protocol,
                self.data_dir,
            )
        self._set(self.item, [(f"{v.item_id} · {v.summary()}", i) for i, v in enumerate(self._views)])
        self._show()

    def _show(self):
        i = self.item.value
        self.out.value = item_html(self._views[i]) if i is not None and i < len(self._views) else "<i>no items</i>"


def item_explorer(store, df: pd.DataFrame, protocol: str = "paper", data_dir=None):
    """The explorer's widget (see `ItemExplorer`)."""
    return ItemExplorer(store, df, protocol, data_dir).widget


def show_command(v: ItemView) -> str:
    return f"gbg show --model {v.model} --benchmark {v.benchmark} --item {v.item_id} --config {v.config_key}"


# --- helpers ------------------------------------------------------------------------------------------
def _num(x) -> bool:
    return isinstance(x, (int, float)) and x == x


def _fmt(x) -> str:
    return f"{x:g}" if _num(x) else "unscored"


def _norm(x) -> str | None:
    return None if x is None or (isinstance(x, float) and x != x) else str(x).strip()


def _row_facts(r: dict) -> str:
    parts = [f"score {_fmt(r['score'])}", f"answer {r['extracted']!r}" if _norm(r["extracted"]) is not None else "no answer"]
    if _num(r.get("n_tokens")):
        parts.append(f"{int(r['n_tokens'])} tokens" + (f" ({r['finish_reason']})" if r.get("finish_reason") else ""))
    for name, val in (r.get("rewards") or {}).items():
        parts.append(f"reward {name} {val:.3g}")
    if _norm(r.get("reason")):
        parts.append(f"reason: {r['reason']}")
    return " · ".join(parts)


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines()) or "    (empty)"
