"""LLM-as-judge for the open-ended benchmarks (AlpacaEval 2, Arena-Hard, WildBench): one OpenAI-compatible
judge client, every judgment cached in the sample store next to the sample it judges.

    >>> judge = Judge("gpt-4-1106-preview")                       # the paper's judge; key from $OPENAI_API_KEY
    >>> judge = Judge("smollm2-135m", base_url="http://127.0.0.1:8000/v1")   # any vLLM OpenAI-compatible server
    >>> summary = judge_store(store, get_judged_task("alpaca_eval"), judge)
    >>> print(summary)          # counts (made now / reused / unparseable / failed) + one metrics row per sample set
    >>> judged_frame(store, "alpaca_eval", judge)    # store.frame() restricted to this judge's scores

What is cached: table `judgments` in the store's SQLite file, one row per (sample key, judge model, template
version, game), with the hash of the exact request (messages + parameters), the judge's raw text, the parsed
verdict, a numeric value and `parsed_ok`. A rerun sends only what is missing, so it never pays twice; a row
whose request hash no longer matches (the prompt changed) is re-judged. A verdict that cannot be parsed is kept
(parsed_ok=0), counted in the summary and scored None with reason "unparseable" -- it is paid for, so it is
not re-asked.

Faults (docs/judges.md): 429/5xx, timeouts, dropped connections and 200 answers that are not a JSON object are
retried with backoff (`http_client.JsonClient`). A judgment that still fails, or that the judge refused (HTTP
400/413/422), or whose answer has no choices, is recorded with its error and retried on the next run (Arena-Hard
keeps a paid first turn and resumes from it). A bad key or unknown model (401/403/404) stops the run at once;
failures past `max_failed_share` of the judgments sent, or a run where none succeeds, stop it with one
`JudgeError` -- always after saving every judgment and score already in.

Scores: each judged sample also gets a row in the store's `scores` table (scorer = benchmark name,
scorer_version = "<task version>.<template sha8>+<judge model>"), so `store.frame()` sees judged benchmarks
like any other. Scores from two judges never overwrite each other, but `store.frame()` without a
`scorer_version` keeps, per sample, the highest version (digit runs compared as numbers: `store.version_order`) -- i.e. it could mix judges. Always
read judged scores through `judged_frame(store, benchmark, judge)` (or pass `scorer_version=`).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import pandas as pd

from ..generate.errors import PER_REQUEST_STATUS, BackendError
from ..generate.openai_server import OpenAIServer
from ..provenance import judge_run
from ..tasks import get_judged_task
from ..tasks.base import Item
from ..tasks.judged.base import JudgedTask, Judgment, Template


class JudgeError(RuntimeError):
    """The judge cannot be reached or keeps failing; judgments made before the failure are saved."""


# --- the judge client ------------------------------------------------------------------------------
class Judge:
    """An OpenAI-compatible chat endpoint used as a judge (temperature 0). HTTP, retries with backoff on
    429/5xx/timeouts and the request counter are `OpenAIServer`'s (generate/openai_server.py); the API key is read from the environment
    variable named by `api_key_env` and is never stored, logged or put in provenance.

        >>> Judge("gpt-4-1106-preview", concurrency=8)                       # api.openai.com, $OPENAI_API_KEY
        >>> Judge("smollm2-135m", base_url="http://127.0.0.1:8000/v1", api_key_env="VLLM_API_KEY")

    `max_tokens` caps every benchmark's own judge budget (Arena-Hard asks for 4096, AlpacaEval for 1):
    useful for a small local judge, recorded in provenance and part of each request's hash.

    Nothing is left to the judge's server: `chat` sends every sampling field (`OpenAIServer.sampling_fields`: top_p
    1 and no penalties, and on a vLLM server top_k and min_p off and repetition_penalty 1), so a vLLM server's
    defaults from the judge model's generation_config.json cannot apply. They are added when sent, not in `body`:
    a request's hash, and with it every cached judgment, stays what it was (on OpenAI's API those values are its
    defaults, so re-asking would pay again for the same verdicts).
    """

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key_env: str | None = None,
        concurrency: int = 8,
        max_retries: int = 5,
        timeout: float = 300.0,
        backoff: float = 1.0,
        max_tokens: int | None = None,
        served_model: str | None = None,
        temperature: float = 0.0,
        server: str = "auto",
        trust_host: bool = False,
        connect_timeout: float = 10.0,
    ):
        self.model = model
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.concurrency = max(1, int(concurrency))
        self.api_key_env = api_key_env
        self.api = OpenAIServer(
            served_model or model,
            base_url=base_url,
            api_key_env=api_key_env,
            concurrency=self.concurrency,
            max_retries=max_retries,
            timeout=timeout,
            backoff=backoff,
            server=server,
            trust_host=trust_host,
            connect_timeout=connect_timeout,
        )
        self.api_key_env = self.api.http.key.env

    @property
    def requests_sent(self) -> int:
        """HTTP requests sent so far, retries included."""
        return self.api.requests_sent

    def budget(self, benchmark_max_tokens: int) -> int:
        return min(benchmark_max_tokens, self.max_tokens) if self.max_tokens else benchmark_max_tokens

    def body(self, messages: list[dict], max_tokens: int, **extra) -> dict:
        """The request body, minus the model name (so its hash does not depend on where the judge is served)."""
        return {"messages": messages, "temperature": self.temperature, "max_tokens": max_tokens, **extra}

    def chat(self, body: dict) -> dict:
        """POST one chat completion; returns its first choice (`message`, `logprobs`, `finish_reason`)."""
        fields = self.api.sampling_fields(body.get("temperature", self.temperature))
        data = self.api.post("/chat/completions", {"model": self.api.served_model, **fields, **body})
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise BackendError(f"{self.api.origin} answered without choices: {json.dumps(data)[:200]}")
        return choices[0]

    def sampling(self) -> dict:
        """The sampling fields every request sends besides its body (asks the server what it is, once): a judge
        run's provenance records them when the run sends requests."""
        return {"server": self.api.server_kind(), **self.api.sampling_fields(self.temperature)}

    def provenance(self) -> dict:
        return {
            "judge_model": self.model,
            "served_model": self.api.served_model,
            "base_url": self.api.origin,  # scheme, host and port only: never a URL's credentials, path or query
            "api_key_env": self.api_key_env,
            "key_sent": self.api.http.key.send,
            "temperature": self.temperature,
            "server": self.api.server,
            "max_tokens_cap": self.max_tokens,
            "concurrency": self.concurrency,
            "max_retries": self.api.max_retries,
            "timeout_s": self.api.timeout,
            "connect_timeout_s": self.api.http.connect_timeout,
        }

    def close(self) -> None:
        self.api.close()

    def __repr__(self) -> str:
        return f"<Judge {self.model} at {self.api.origin}>"


def request_hash(body: dict) -> str:
    """Hash of the exact judge request (messages + parameters, not the served model name): a judgment's cache key."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def scorer_version(task: JudgedTask, judge: Judge | str, template: Template) -> str:
    """'1.784227e6+gpt-4-1106-preview': task version, judge template hash, judge model."""
    return f"{task.template_version(template)}+{_judge_name(judge)}"


def _judge_name(judge: Judge | str) -> str:
    return judge if isinstance(judge, str) else judge.model


def judge_label(task: JudgedTask, judge: Judge | str) -> str:
    name = _judge_name(judge)
    return f"judge: {name} " + ("(the paper's judge)" if name == task.paper_judge else f"(not the paper's {task.paper_judge})")


# --- running the judge -----------------------------------------------------------------------------
@dataclass
class JudgeSummary:
    benchmark: str
    judge_model: str
    paper_judge: str
    template_version: str
    scorer_version: str
    n_samples: int = 0  # stored samples in scope
    n_judgments: int = 0  # judgments those samples need (samples x games)
    made: int = 0  # judgments obtained from the judge in this run
    reused: int = 0  # judgments found in the cache
    shortcut: int = 0  # judgments that needed no request (e.g. an empty output)
    rejudged_stale: int = 0  # cached judgments whose request changed, judged again
    unparseable: int = 0  # judgments in scope whose verdict could not be parsed (counted, scored None)
    failed: int = 0  # judgments in scope whose request failed (retried on the next run)
    requests_sent: int = 0  # HTTP requests this run, retries included
    samples_scored: int = 0  # score rows written (unparseable samples included, with score None)
    skipped_samples: int = 0  # stored samples of items not in the loaded benchmark
    metrics: pd.DataFrame = field(default_factory=pd.DataFrame)
    provenance: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"judge: {self.judge_model} " + (
            "(the paper's judge)" if self.judge_model == self.paper_judge else f"(not the paper's {self.paper_judge})"
        )

    def __str__(self):
        t = self.provenance.get("template", {})
        lines = [
            f"{self.benchmark} -- {self.label}; template {', '.join(t.get('files', []))} sha256 {t.get('sha256', '?')[:12]} "
            f"(version {self.template_version})",
            f"{self.n_samples} samples, {self.n_judgments} judgments: {self.made} made now, {self.reused} reused from the cache, "
            f"{self.shortcut} without a request, {self.unparseable} unparseable (counted, scored None), {self.failed} failed "
            f"(recorded, retried next run); {self.requests_sent} HTTP requests",
        ]
        if not self.metrics.empty and self.metrics["n_unjudged"].any():
            per = self.metrics.groupby("config_key")[["n_unjudged", "n_items"]].sum()
            per = per[per["n_unjudged"] > 0]
            lines.append(
                "UNJUDGED (the metrics leave them out): "
                + "; ".join(f"config {ck}: {r.n_unjudged} of {r.n_items} samples" for ck, r in per.iterrows())
            )
        if not self.metrics.empty:
            lines.append(self.metrics.drop(columns=["judge", "template_version"], errors="ignore").to_string(index=False))
        return "\n".join(lines)


def judge_store(
    store,
    task: JudgedTask,
    judge: Judge,
    model: str | None = None,
    config_key: str | None = None,
    items: list[Item] | None = None,
    data_dir=None,
    limit: int | None = None,
    subset_seed: int = 0,
    retry_failed: bool = True,
    progress: bool = True,
    configs: dict[str, int] | None = None,
    prompt_hashes: dict[str, str] | None = None,
    max_failed_share: float = 0.1,
) -> JudgeSummary:
    """Judge the stored samples of `task` in scope not yet judged by this judge and template; write the
    judgments, the per-sample scores and return counts and metrics.

    Scope: the samples of `items` (default: the benchmark's, `limit`-drawn), of `model` and `config_key` when
    given, and -- what a notebook selected -- only `configs` {config_key: n} (sample indices below n) and each
    item's current prompt `prompt_hashes` {item_id: hash} (`GenerationSummary.wanted` / `.prompt_hashes`): a paid
    judge never bills for another experiment's samples.

    Failures: a judgment whose request fails (refused, or still failing after the retries, or an answer that is
    not a JSON object with choices) is recorded with its error and retried on the next run; a bad key or an
    unknown model (401/403/404) stops the run at once. When the failures pass `max_failed_share` of the
    judgments sent, or none succeeds, the run stops with one `JudgeError` -- after every finished judgment and
    its score are saved.

        >>> s = judge_store(store, get_judged_task("arena_hard"), Judge("gpt-4-1106-preview"), model="llama-3-8b")
        >>> s.metrics[["config_key", "sample_idx", "score", "ci_low", "ci_high", "n_unjudged"]]
    """
    from tqdm.auto import tqdm

    template = task.template(data_dir)
    tv = task.template_version(template)
    sv = scorer_version(task, judge, template)
    items = items if items is not None else task.load(data_dir=data_dir, limit=limit, subset_seed=subset_seed)
    by_id = {str(it.id): it for it in items}
    scope = Scope(configs, prompt_hashes)
    samples = scope.apply(store.samples(model=model, benchmark=task.name, config_key=config_key))
    known = samples["item_id"].astype(str).isin(by_id) if not samples.empty else pd.Series(dtype=bool)
    summary = JudgeSummary(
        task.name, judge.model, task.paper_judge, tv, sv, skipped_samples=int((~known).sum()) if len(known) else 0
    )
    samples = samples[known] if len(known) else samples
    summary.n_samples = len(samples)
    summary.n_judgments = len(samples) * len(task.games)
    summary.provenance = judge_provenance(task, judge, template)

    cached = store.judgments(task.name, judge.model, tv, model)
    have = {
        tuple(r[k] for k in ("model", "item_id", "sample_prompt_hash", "config_key", "sample_idx", "game")): r
        for r in cached[
            ["model", "item_id", "sample_prompt_hash", "config_key", "sample_idx", "game", "prompt_hash", "error", "detail"]
        ].to_dict("records")
    }

    todo, shortcut_rows = [], []
    now_run = uuid.uuid4().hex[:12]
    for s in samples.itertuples(index=False):
        item = by_id[str(s.item_id)]
        for game in task.games:
            body = task.judge_body(judge, item, s.text, game, template)
            ph = request_hash(body)
            key = (s.model, str(s.item_id), s.prompt_hash, s.config_key, int(s.sample_idx), game)
            prev = have.get(key)
            if prev is not None and prev["prompt_hash"] == ph and (prev["error"] is None or not retry_failed):
                summary.reused += 1
                continue
            if prev is not None and prev["prompt_hash"] != ph:
                summary.rejudged_stale += 1
            sc = task.shortcut(item, s.text, game)
            if sc is not None:
                shortcut_rows.append(_row(s, task, judge, tv, game, ph, sc, now_run))
                continue
            # A failed judgment of this same request may hold turns already paid for (Arena-Hard's first turn).
            prior = prev["detail"] if prev is not None and prev["prompt_hash"] == ph and prev["error"] else None
            todo.append((s, item, game, body, ph, prior))

    if todo:
        summary.provenance["sampling"] = judge.sampling()
        summary.provenance["max_failed_share"] = max_failed_share
    if shortcut_rows or todo:
        store.add_judge_run(now_run, summary.provenance)
    if shortcut_rows:
        store.add_judgments(shortcut_rows)
        summary.shortcut = len(shortcut_rows)

    sent_before = judge.requests_sent
    try:
        if todo:
            bar = tqdm(total=len(todo), desc=f"judging {task.name} ({judge.model})", unit="judgment", disable=not progress)
            try:
                summary.made = _run(store, task, judge, tv, todo, now_run, bar, max_failed_share)
            finally:
                bar.close()
    finally:
        summary.requests_sent = judge.requests_sent - sent_before
        # Scores for everything judged so far, even when the run stopped half-way.
        summary.samples_scored = write_scores(
            store, task, judge, template, items=by_id, model=model, config_key=config_key, scope=scope
        )
    rows = scope.apply(store.judgments(task.name, judge.model, tv, model), prompt_col="sample_prompt_hash")
    if config_key is not None:
        rows = rows[rows["config_key"] == config_key]
    rows = rows[rows["item_id"].isin(by_id)]
    summary.unparseable = int(((rows["parsed_ok"] == 0) & rows["error"].isna()).sum())
    summary.failed = int(rows["error"].notna().sum())
    summary.metrics = judged_metrics(
        store, task, judge, model=model, config_key=config_key, items=items, data_dir=data_dir, template=template, scope=scope
    )
    return summary


@dataclass(frozen=True)
class Scope:
    """Which stored samples a judging run touches beyond model / config / items: `configs` {config_key: n}
    (sample indices below n) and `prompt_hashes` {item_id: the item's current prompt hash}; None: no limit."""

    configs: dict | None = None
    prompt_hashes: dict | None = None

    def apply(self, df: pd.DataFrame, prompt_col: str = "prompt_hash") -> pd.DataFrame:
        if df.empty:
            return df
        if self.configs is not None:
            n = df["config_key"].map(self.configs)
            df = df[n.notna() & (df["sample_idx"] < n.fillna(0))]
        if self.prompt_hashes is not None:
            df = df[df["item_id"].astype(str).map(self.prompt_hashes) == df[prompt_col]]
        return df


def _row(s, task, judge, tv, game, ph, j: Judgment, run_id) -> tuple:
    return (
        s.model,
        task.name,
        str(s.item_id),
        s.prompt_hash,
        s.config_key,
        int(s.sample_idx),
        judge.model,
        tv,
        int(game),
        ph,
        j.raw,
        j.verdict,
        j.value,
        int(j.parsed_ok),
        j.error,
        json.dumps(j.detail, ensure_ascii=False) if j.detail is not None else None,
        run_id,
        time.time(),
    )


def _fatal(e: BaseException) -> bool:
    """A failure that would repeat on every request (bad key 401/403, unknown model 404, ...): stop at once.
    Refusals of one request (400/413/422) and failures that outlived their retries (status None) are recorded
    on their judgment instead."""
    status = getattr(e, "status", None)
    return isinstance(e, BackendError) and status is not None and status not in PER_REQUEST_STATUS


def _run(store, task, judge, tv, todo, run_id, bar, max_failed_share: float = 0.1) -> int:
    """Send the judgments with at most `judge.concurrency` in flight; save each as it returns (so a crash
    loses only those in flight). A failed judgment is saved with its error; when failures pass
    `max_failed_share` of `todo` (or one is fatal): stop submitting, save what returns, raise one JudgeError."""
    made, failed, saved, fatal, last = 0, 0, 0, None, None
    limit = max_failed_share * len(todo)
    it = iter(todo)
    with ThreadPoolExecutor(max_workers=judge.concurrency) as pool:
        running = {}

        def submit_next() -> bool:
            nxt = next(it, None)
            if nxt is None:
                return False
            s, item, game, body, ph, prior = nxt
            running[pool.submit(_judge_one, task, judge, body, item, game, prior)] = nxt
            return True

        # Submit lazily, never more than `concurrency` ahead: a stop leaves nothing queued behind it.
        for _ in range(judge.concurrency):
            if not submit_next():
                break
        try:
            while running:
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                rows = []
                for fut in done:
                    s, item, game, body, ph, prior = running.pop(fut)
                    try:
                        j = fut.result()
                    except Exception as e:  # noqa: BLE001 - one judgment's failure is recorded, not raised here
                        if _fatal(e):
                            fatal = fatal or e
                            continue
                        j = Judgment(None, error=_one_line(e))
                    if j.error is not None:
                        failed += 1
                        last = j.error
                    rows.append(_row(s, task, judge, tv, game, ph, j, run_id))
                if rows:
                    store.add_judgments(rows)  # this thread is the only writer
                    made += sum(1 for r in rows if r[14] is None)  # r[14]: error
                    saved += len(rows)
                    bar.update(len(rows))
                if fatal is None and failed <= limit:
                    for _ in range(len(done)):
                        submit_next()
        except BaseException:
            for f in running:
                f.cancel()
            raise
    where = f"judge {judge.model} at {judge.api.origin}"
    left = len(todo) - saved
    if fatal is not None:
        raise JudgeError(
            f"{where} keeps failing: {_one_line(fatal)}. {made} judgments were saved; {len(todo) - made} are still "
            "to do -- rerun to resume."
        ) from fatal
    if failed > limit or made == 0:
        why = "none of them succeeded" if made == 0 else f"more than max_failed_share={max_failed_share:g} of {len(todo)}"
        raise JudgeError(
            f"{where} keeps failing: {failed} of {saved} judgments sent failed ({why}); last error: {last}. {made} "
            f"judgments were saved, the {failed} failed ones recorded; {failed + left} are still to do -- rerun to resume."
        )
    return made


def _judge_one(task, judge, body, item, game, prior):
    # `prior`: what a failed attempt at this same request already paid for (Arena-Hard resumes its second turn).
    return task.judge_one(judge, body, item, game, prior=prior)


def _one_line(e: BaseException) -> str:
    text = str(e) if isinstance(e, BackendError) else f"{type(e).__name__}: {e}"
    return " ".join(text.split())[:500]


def judge_provenance(task: JudgedTask, judge: Judge, template: Template) -> dict:
    return judge_run(task, judge, template, judge_label(task, judge))


# --- scores and metrics ----------------------------------------------------------------------------
def _grouped(store, task, judge, template, model=None, config_key=None, items=None, scope: Scope | None = None) -> pd.DataFrame:
    """One row per stored sample in scope with its judgments by game: model, config_key, sample_idx, item_id,
    text, games ({game: judgment row}), complete (every game has an answer, parsed or not)."""
    tv = task.template_version(template)
    samples = (scope or Scope()).apply(store.samples(model=model, benchmark=task.name, config_key=config_key))
    if items is not None:
        samples = samples[samples["item_id"].astype(str).isin(items)]
    j = store.judgments(task.name, _judge_name(judge), tv, model)
    games: dict[tuple, dict] = {}
    for r in j.to_dict("records"):
        games.setdefault((r["model"], r["item_id"], r["sample_prompt_hash"], r["config_key"], int(r["sample_idx"])), {})[
            int(r["game"])
        ] = r
    out = samples[["model", "config_key", "sample_idx", "item_id", "prompt_hash", "text"]].copy()
    out["games"] = [
        games.get((m, str(i), p, c, int(k)), {})
        for m, i, p, c, k in zip(out["model"], out["item_id"], out["prompt_hash"], out["config_key"], out["sample_idx"])
    ]
    out["complete"] = [all(g in gs and gs[g]["error"] is None for g in task.games) for gs in out["games"]]
    return out


def write_scores(
    store,
    task: JudgedTask,
    judge: Judge | str,
    template: Template,
    items: dict[str, Item],
    model=None,
    config_key=None,
    scope: Scope | None = None,
) -> int:
    """A `scores` row for every sample whose judgments are all in (unparseable ones with score None)."""
    g = _grouped(store, task, judge, template, model, config_key, items, scope)
    g = g[g["complete"]]
    sv = scorer_version(task, judge, template)
    rows = []
    for r in g.itertuples(index=False):
        item = items[str(r.item_id)]
        score, extracted, reason = task.sample_score(item, r.games)
        rows.append(
            {
                "model": r.model,
                "benchmark": task.name,
                "item_id": str(r.item_id),
                "prompt_hash": r.prompt_hash,
                "config_key": r.config_key,
                "sample_idx": int(r.sample_idx),
                "scorer": task.scorer,  # the benchmark's name, or e.g. "mixeval:model-parser"
                "scorer_version": sv,
                "score": score,
                "extracted": extracted,
                "reason": reason,
                "item_group": item.group,
            }
        )
    if rows:
        store.add_scores(rows)
    return len(rows)


def judged_metrics(
    store,
    task: JudgedTask,
    judge: Judge | str,
    model=None,
    config_key=None,
    items=None,
    data_dir=None,
    template: Template | None = None,
    scope: Scope | None = None,
) -> pd.DataFrame:
    """The benchmark's own metric for each sample set -- one row per (model, config_key, sample_idx), i.e. the
    greedy output and each of the N sampled runs over all items -- as the paper reports them (mean/std/best/
    worst over the N runs are then a groupby away). Columns include n_items, n_judged, n_unjudged (samples with a
    game not judged yet or failed: the metric is not over them), n_unparseable (judgments),
    n_unscored (samples without a score: not judged yet, refused, or unparseable; the metric is over the
    others, as stats' means are) and the judge; AlpacaEval: win_rate, standard_error, lc_win_rate, lc_kind;
    Arena-Hard: score, ci_low, ci_high; WildBench: score_mean, wb_score."""
    template = template or task.template(data_dir)
    items = items if items is not None else task.load(data_dir=data_dir)
    by_id = {str(it.id): it for it in items}
    g = _grouped(store, task, judge, template, model, config_key, by_id, scope)
    rows = []
    for (m, ck, k), grp in g.groupby(["model", "config_key", "sample_idx"], sort=True):
        done = grp[grp["complete"]]
        n_unp = sum(1 for gs in done["games"] for row in gs.values() if row["error"] is None and not row["parsed_ok"])
        n_scored = sum(task.sample_score(by_id[str(i)], gs)[0] is not None for i, gs in zip(done["item_id"], done["games"]))
        rec = {
            "model": m,
            "config_key": ck,
            "sample_idx": int(k),
            "n_items": len(grp),
            "n_judged": len(done),
            "n_unjudged": len(grp) - len(done),
            "n_unparseable": n_unp,
            "n_unscored": len(grp) - n_scored,
            "judge": _judge_name(judge),
            "template_version": task.template_version(template),
        }
        rec.update(task.metrics(done, by_id, data_dir=data_dir) if len(done) else {})
        rows.append(rec)
    return pd.DataFrame(rows)


def judged_frame(store, benchmark: str, judge: Judge | str, data_dir=None, **frame_kw) -> pd.DataFrame:
    """`store.frame()` for a judged benchmark, restricted to one judge's scores (never a mix of judges).

    >>> judged_frame(store, "alpaca_eval", "gpt-4-1106-preview")
    """
    task = get_judged_task(benchmark)
    sv = scorer_version(task, judge, task.template(data_dir))
    df = store.frame(scorer=benchmark, scorer_version=sv, benchmark=benchmark, **frame_kw)
    if not df.empty:
        df["judge"] = _judge_name(judge)
    return df
