"""AlpacaEval 2 (805 instructions): pairwise against GPT-4-Turbo's reference outputs, judged with AlpacaEval 2's
weighted judge; win rate with its standard error and the length-controlled (LC) win rate.

An item (id "0", subset helpful_base) and its baseline output (generator gpt4_1106_preview):

    What are the names of some famous actors that started their careers on Broadway?
    -> Several famous actors started their careers on Broadway before making it big in film and television. ...

Judge (`weighted_alpaca_eval_gpt4_turbo`, files in the data dir or the alpaca-eval package): the
`alpaca_eval_clf.txt` prompt turned into chat messages by alpaca_eval's own `make_prompts` / `prompt_to_chatml`;
output_1 is the baseline and output_2 the model, swapped for half the instructions exactly as alpaca_eval does
(`is_switched_outputs`, seeded on the instruction with seed 123). One output token, logprobs with top 5: the
preference is alpaca_eval's `logprob_parser` (P(baseline) = p(m) / (p(m) + p(M)) over the top log-probs). A judge
that returns no log-probs, or whose top 5 hold neither `m` nor `M`, falls back to the token it wrote (`m` or `M`
-> a 0/1 preference); anything else is unparseable. We send temperature 0 (the config says 1 "which should
make no effect": log-probs are the raw distribution's; only the fallback token depends on it).

Per-sample score: the model's win probability in [0, 1] (1 win, 0.5 tie, 0 loss). Metrics per sample set:
alpaca_eval's `get_winrate` (win_rate, standard_error, ...) and the LC win rate (see `length_controlled`).
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from pathlib import Path

import pandas as pd

from ..base import Item, chat
from ..data import DataSearch, read_json
from .base import JudgeClient, JudgedTask, Judgment, Template, data_error

OUTPUTS_FILE = "alpaca_eval/gpt4_1106_preview.model_outputs.json"
PROMPT_FILES = {
    "alpaca_eval_clf.txt": "alpaca_eval_clf.txt",
    "weighted_alpaca_eval_gpt4_turbo.configs.yaml": "weighted_alpaca_eval_gpt4_turbo.configs.yaml",
}
GAMED_FILE = "alpaca_eval/df_gamed.csv"  # only on the HF dataset tatsu-lab/alpaca_eval; put it here for exact LC
BASELINE = "gpt4_1106_preview"
SWITCH_SEED = 123  # alpaca_eval's SingleAnnotator default, handed to RandomSwitchTwoColumnsProcessor
MIN_LC_ITEMS = 20  # the GLM is cross-validated over 5 folds; fewer judged items give no meaningful fit
HUB_FAILED: dict = {}  # one failed hub download per process is enough


def _package_prompt_files() -> dict:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # its `import pkg_resources`
            import alpaca_eval
    except ImportError:
        return {}
    root = Path(alpaca_eval.__file__).parent / "evaluators_configs"
    return {
        "alpaca_eval_clf.txt": root / "alpaca_eval_clf_gpt4_turbo" / "alpaca_eval_clf.txt",
        "weighted_alpaca_eval_gpt4_turbo.configs.yaml": root / "weighted_alpaca_eval_gpt4_turbo" / "configs.yaml",
    }


def _ae():
    """alpaca_eval's pieces, imported on first use (it imports `datasets`, which is slow)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # its `import pkg_resources`
            from alpaca_eval import completion_parsers, utils
            from alpaca_eval.metrics import get_winrate
    except ImportError as e:
        raise ImportError(f"AlpacaEval judging needs the alpaca-eval package (pip install alpaca-eval==0.6.6): {e}") from e
    return completion_parsers, utils, get_winrate


class AlpacaEval(JudgedTask):
    name = "alpaca_eval"
    version = "1"
    description = "AlpacaEval 2: 805 instructions, pairwise vs GPT-4-Turbo references, weighted GPT-4-Turbo judge, LC win rate"
    default_max_new_tokens = 2048
    paper_n_samples = 16
    paper_judge = "gpt-4-1106-preview"
    judge_max_tokens = 1
    top_logprobs = 5

    def load_all(self, data_dir=None) -> list[Item]:
        src = DataSearch(self.name, data_dir)
        d = src.local(OUTPUTS_FILE)
        if d is None:
            raise data_error(src, OUTPUTS_FILE + " (alpaca_eval's results/gpt4_1106_preview/model_outputs.json)")
        rows = read_json(d / OUTPUTS_FILE)
        # The id is the row's position in the eval set: alpaca_eval's `index` (instruction_difficulty is keyed by it).
        items = [
            Item(str(i), {"instruction": r["instruction"], "baseline": r["output"], "dataset": r["dataset"]}, r["dataset"])
            for i, r in enumerate(rows)
        ]
        return items

    def prompt(self, item: Item) -> list[dict]:
        return chat(item.data["instruction"])

    # --- judging -----------------------------------------------------------------------------------
    def template(self, data_dir=None) -> Template:
        return self._template_from("alpaca_eval/judge_prompt", PROMPT_FILES, data_dir, fallback=_package_prompt_files())

    def is_switched(self, item: Item) -> bool:
        """Whether the model's output is shown first (as `m`): alpaca_eval's RandomSwitchTwoColumnsProcessor rule."""
        _, utils, _ = _ae()
        return utils.random_seeded_choice(
            seed="is_switched_outputs" + item.data["instruction"] + str(SWITCH_SEED), choices=[False, True]
        )

    def judge_body(self, judge: JudgeClient, item: Item, completion: str, game: int, template: Template) -> dict:
        _, utils, _ = _ae()
        out_1, out_2 = item.data["baseline"], completion or ""
        if self.is_switched(item):
            out_1, out_2 = out_2, out_1
        df = pd.DataFrame([{"instruction": item.data["instruction"], "output_1": out_1, "output_2": out_2}])
        prompts, _ = utils.make_prompts(df, template.text("alpaca_eval_clf.txt"))
        messages = utils.prompt_to_chatml(prompts[0])
        return judge.body(messages, judge.budget(self.judge_max_tokens), logprobs=True, top_logprobs=self.top_logprobs)

    def parse(self, choice: dict, item: Item, game: int) -> Judgment:
        completion_parsers, _, _ = _ae()
        content = (choice.get("message") or {}).get("content") or ""
        switched = self.is_switched(item)
        detail: dict = {"switched": switched}
        first = ((choice.get("logprobs") or {}).get("content") or [None])[0] or {}
        top = first.get("top_logprobs") or []
        p_first = math.nan  # alpaca_eval's preference: 1 = output_1 better, 2 = output_2 better
        if top:
            detail["top_logprobs"] = [{"token": t.get("token"), "logprob": t.get("logprob")} for t in top]
        if any(t.get("token") in ("m", "M") for t in top):
            p_first = completion_parsers.logprob_parser(
                {"logprobs": {"content": [{"top_logprobs": top}]}},
                numerator_token="m",
                denominator_tokens=["m", "M"],
                is_binarize=False,
            )[0]
            detail["method"] = "logprobs"
        elif content.strip() in ("m", "M"):
            p_first = 1.0 if content.strip() == "m" else 2.0
            detail["method"] = "token"
        if p_first is None or math.isnan(p_first):
            return Judgment(content, None, None, detail)
        pref = 3 - p_first if switched else p_first  # back to output_1 = baseline, output_2 = model
        verdict = "m" if p_first < 1.5 else "M" if p_first > 1.5 else "m=M"
        return Judgment(content, verdict, float(pref - 1), detail)

    def sample_score(self, item, judgments):
        j = judgments[0]
        if not j["parsed_ok"]:
            return None, None, "unparseable"
        return float(j["value"]), j["verdict"], None

    def metrics(self, rows: pd.DataFrame, items: dict[str, Item], data_dir=None, lc_source: str = "auto") -> dict:
        _, _, get_winrate = _ae()
        ann = annotations(rows, items)
        wr = get_winrate(ann)  # rows with a NaN preference are dropped there (and counted by us as unparseable)
        out = {
            "win_rate": _f(wr["win_rate"]),
            "standard_error": _f(wr["standard_error"]),
            "n_wins": int(wr["n_wins"]),
            "n_wins_base": int(wr["n_wins_base"]),
            "n_draws": int(wr["n_draws"]),
            "n_total": int(wr["n_total"]),
            "discrete_win_rate": _f(wr["discrete_win_rate"]),
            "avg_length": float(ann["output_2"].str.len().mean()) if len(ann) else None,
        }
        out.update(length_controlled(ann, data_dir=data_dir, source=lc_source))
        return out


def _f(x) -> float | None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def annotations(rows: pd.DataFrame, items: dict[str, Item]) -> pd.DataFrame:
    """alpaca_eval's annotations frame for one sample set: preference (1 = baseline wins, 2 = model wins, NaN =
    unparseable), output_1 (baseline), output_2 (model), indexed by the item's position in the eval set."""
    recs = []
    for r in rows.itertuples(index=False):
        j = r.games.get(0, {})
        v = j.get("value") if j.get("parsed_ok") else None
        it = items[str(r.item_id)]
        recs.append(
            {
                "index": int(r.item_id),
                "instruction": it.data["instruction"],
                "output_1": it.data["baseline"],
                "output_2": r.text or "",
                "generator_1": BASELINE,
                "generator_2": f"{r.model}",
                "annotator": j.get("judge_model", "?"),
                "preference": math.nan if v is None or pd.isna(v) else 1.0 + float(v),
            }
        )
    return pd.DataFrame(
        recs, columns=["index", "instruction", "output_1", "output_2", "generator_1", "generator_2", "annotator", "preference"]
    ).set_index("index")


def length_controlled(ann: pd.DataFrame, data_dir=None, source: str = "auto") -> dict:
    """The LC win rate of one sample set, with alpaca_eval's GLMs (never a re-derivation of them).

    - `lc_kind="exact"`: alpaca_eval's `get_length_controlled_winrate` (GLM `length_controlled_v1`, which needs
      each instruction's difficulty and the "gamed" baselines from `df_gamed.csv`). Used when that file is in
      the data dir (`alpaca_eval/df_gamed.csv`), or -- source "auto"/"hub" and HF_HUB_OFFLINE unset -- when
      alpaca_eval can download it from the HF hub.
    - `lc_kind="approximate"`: otherwise. alpaca_eval's own `length_controlled_minimal` GLM
      (`np.tanh(std_delta_len) + not_gamed_baseline - 1`: the same length term and model term, no
      instruction-difficulty term and no regularisation toward the gamed baselines), fitted with alpaca_eval's
      `fit_LogisticRegressionCV`. The alpaca_eval authors note the difficulty term "is not a crucial feature"
      (notebooks/instruction_difficulty.ipynb); still, without it the number is not the leaderboard's LC, hence
      the label. Its standard error is None: with no per-instruction term every prediction is the same number.
    A failed hub download is remembered for the rest of the process (offline, huggingface_hub retries ~25 s).
    """
    ann = ann[ann["preference"].notna()]
    none = {"lc_win_rate": None, "lc_standard_error": None, "lc_kind": None}
    if len(ann) < MIN_LC_ITEMS:
        return {**none, "lc_note": f"LC needs >= {MIN_LC_ITEMS} judged items, got {len(ann)}"}
    try:
        from alpaca_eval.metrics import glm_winrate
    except ImportError as e:
        return {**none, "lc_note": f"alpaca-eval not installed: {e}"}
    out = _length_controlled(glm_winrate, ann, data_dir, source)
    raw = (ann["preference"].astype(float).mean() - 1) * 100
    if out["lc_win_rate"] is not None and glm_winrate.get_is_extreme_changes(raw, out["lc_win_rate"]):
        # alpaca_eval's own check (it logs a warning): e.g. every output far shorter than the baseline leaves the
        # length term and the model term unidentifiable.
        out["lc_note"] += f"; LC {out['lc_win_rate']:.1f} is very different from the raw {raw:.1f}: a sign the GLM failed"
    return out


def _length_controlled(glm_winrate, ann, data_dir, source) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn deprecations inside alpaca_eval's fit
        level = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)  # we report its "very different from the raw one" check ourselves
        try:
            notes = []
            gamed = _local_gamed(data_dir) if source in ("auto", "local") else None
            if gamed is not None or (source in ("auto", "hub") and _hub_allowed()):
                try:
                    m = _exact(glm_winrate, ann, gamed)
                    return {
                        "lc_win_rate": _f(m["length_controlled_winrate"]),
                        "lc_standard_error": _f(m["lc_standard_error"]),
                        "lc_kind": "exact",
                        "lc_note": f"length_controlled_v1 with {gamed or 'df_gamed.csv from the HF hub'}",
                    }
                except Exception as e:  # offline, or a file that isn't alpaca_eval's
                    err = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
                    if gamed is None:
                        HUB_FAILED["error"] = err  # don't wait for the network again in this process
                    notes.append(f"exact LC failed ({err})")
            else:
                notes.append(
                    "df_gamed.csv (instruction_difficulty) not available"
                    + (f": {HUB_FAILED['error']}" if HUB_FAILED else " offline")
                )
            return {
                **_approximate(glm_winrate, ann),
                "lc_kind": "approximate",
                "lc_note": "approximate LC (alpaca_eval GLM length_controlled_minimal: no instruction_difficulty term); "
                + "; ".join(notes),
            }
        finally:
            logging.getLogger().setLevel(level)


def _local_gamed(data_dir) -> Path | None:
    d = DataSearch("alpaca_eval", data_dir).local(GAMED_FILE)
    return d / GAMED_FILE if d is not None else None


def _hub_allowed() -> bool:
    off = {os.environ.get(k, "").lower() for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "GBG_OFFLINE")}
    return not (off & {"1", "true", "yes", "on"}) and "error" not in HUB_FAILED


def _exact(glm_winrate, ann: pd.DataFrame, gamed: Path | None) -> dict:
    if gamed is None:
        return glm_winrate.get_length_controlled_winrate(ann, save_weights_dir=None, is_warn_extreme_changes=False)
    # alpaca_eval downloads df_gamed.csv inside; hand it the local copy instead (restored right after).
    orig = glm_winrate.hf_hub_download
    glm_winrate.hf_hub_download = lambda *a, **k: str(gamed)
    try:
        return glm_winrate.get_length_controlled_winrate(ann, save_weights_dir=None, is_warn_extreme_changes=False)
    finally:
        glm_winrate.hf_hub_download = orig


def _approximate(glm_winrate, ann: pd.DataFrame) -> dict:
    # alpaca_eval's _get_featurized_data, minus the df_gamed download that the minimal GLM does not use.
    info = glm_winrate.GLM_INFO["length_controlled_minimal"]
    df = ann.reset_index(drop=True)
    delta = df["output_1"].str.len() - df["output_2"].str.len()
    sd = delta.std()
    X = pd.DataFrame(
        {
            "preference": df["preference"].astype(float).replace({0.0: 1.5}) - 1,
            "std_delta_len": delta / sd if sd and not math.isnan(sd) else delta * 0.0,
            "not_gamed_baseline": True,
        }
    )
    test = X[["not_gamed_baseline"]].copy()
    test["std_delta_len"] = 0
    Xy, Xt = glm_winrate.make_dmatrix_for_model(X, test, formula=info["formula"])
    model = glm_winrate.fit_LogisticRegressionCV(Xy, "preference", is_ytrue_proba=True, **info["kwargs"])
    p = model.predict_proba(Xt)[:, 1]
    return {"lc_win_rate": float(p.mean() * 100), "lc_standard_error": None}
