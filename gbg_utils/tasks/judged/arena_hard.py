"""Arena-Hard v0.1 (500 hard prompts from Chatbot Arena): pairwise against gpt-4-0314's answers, judged in both
orders with Arena-Hard's judge prompt; the score is the win rate against the baseline with a bootstrap 95% CI.

An item (id 328c149ed45a41c0b9d6f14659e63599, cluster "ABC Sequence Puzzles & Groups"):

    Use ABC notation to write a melody in the style of a folk tune.

Judge (`judge_config.yaml` in the data dir, as arena-hard-auto's gen_judgment.py uses it): its system prompt,
then its template filled with the question and the two answers. Game 0 shows the baseline as Assistant A and
the model as B, game 1 swaps them (position swap). Verdict: `VERDICT_RULE`. As in gen_judgment.py, a judgment
with no verdict label is continued once ("continue your judgment and finish by outputting a final verdict
label", number_of_judgment_attempts = 2); both turns are kept in the raw text.

Score (`battle_outcomes` + `arena_score`): show_result.py turns every game into a battle against the baseline,
repeated 3 times for a strong verdict (`>>`), a tie counting half, and fits a Bradley-Terry model; the score is
the fitted win probability against gpt-4-0314. Every battle is against the baseline, so the MLE of that
two-player Bradley-Terry model is exactly the weighted win fraction (ties half), which is what we compute; the
CI is show_result.py's bootstrap (resample the battles with replacement, 100 rounds, 2.5/97.5 percentiles),
with a seeded generator. Per-sample score in the store: the mean over its parsed games of win 1 / tie 0.5 /
loss 0 (unweighted; the weighted benchmark score comes from `metrics`).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..base import Item, chat
from ..data import DataSearch, read_jsonl
from .base import JudgeClient, JudgedTask, Judgment, Template, data_error

QUESTION_FILE = "arena_hard/question.jsonl"
BASELINE_FILE = "arena_hard/model_answer/gpt-4-0314.jsonl"
CONFIG_FILES = {"judge_config.yaml": "judge_config.yaml"}
CONTINUE = "continue your judgment and finish by outputting a final verdict label"
WEIGHT = 3  # show_result.py: a "significantly better" verdict counts as 3 battles
BOOTSTRAP_ROUNDS = 100

# The scorer's version (`Task.version`, part of every stored score's identity) and the single source of the
# version in the rule label below: bump it when VERDICT_RULE changes.
VERSION = "1"
VERDICT_RULE = f"arena-hard-verdict/v{VERSION}"
"""The judge config's regex `\\[\\[([AB<>=]+)\\]\\]` over the whole judgment: no label -> ask to continue (once),
one distinct label -> the verdict, several distinct labels -> unparseable (gen_judgment.py's get_score). Only the
five labels A>>B, A>B, A=B, B>A, B>>A count (show_result.py gives any other label weight 0): anything else is
unparseable."""
LABELS = ("A>>B", "A>B", "A=B", "B>A", "B>>A")
PATTERN = re.compile(r"\[\[([AB<>=]+)\]\]")  # judge_config.yaml's regex_pattern


def get_score(judgment: str, pattern: re.Pattern) -> tuple[str | None, bool]:
    """(label, try_again), as arena-hard-auto's get_score."""
    matches = [m for m in pattern.findall(judgment) if m != ""]
    if len(set(matches)) == 0:
        return None, True
    if len(set(matches)) == 1:
        return matches[0].strip("\n"), False
    return None, False


def model_outcome(label: str, game: int) -> tuple[float, int]:
    """(outcome for the model: 1 win, 0.5 tie, 0 loss; battle weight) of a label in a game.
    Game 0: A = baseline, B = model. Game 1: A = model, B = baseline."""
    a_wins = {"A>>B": 1.0, "A>B": 1.0, "A=B": 0.5, "B>A": 0.0, "B>>A": 0.0}[label]
    weight = WEIGHT if ">>" in label else 1
    return (1.0 - a_wins if game == 0 else a_wins), weight


def battle_outcomes(labels_by_game: list[tuple[str, int]]) -> np.ndarray:
    """One entry per battle (outcome for the model), strong verdicts repeated `WEIGHT` times."""
    out = []
    for label, game in labels_by_game:
        o, w = model_outcome(label, game)
        out += [o] * w
    return np.asarray(out, dtype=float)


def arena_score(outcomes: np.ndarray, rounds: int = BOOTSTRAP_ROUNDS, seed: int = 0) -> dict:
    """Win rate vs the baseline (percent) and its bootstrap 95% CI."""
    if len(outcomes) == 0:
        return {"score": None, "ci_low": None, "ci_high": None, "n_battles": 0}
    rng = np.random.default_rng(seed)
    boot = outcomes[rng.integers(0, len(outcomes), size=(rounds, len(outcomes)))].mean(axis=1) * 100
    return {
        "score": float(outcomes.mean() * 100),
        "ci_low": float(np.percentile(boot, 2.5)),
        "ci_high": float(np.percentile(boot, 97.5)),
        "n_battles": int(len(outcomes)),
    }


class ArenaHard(JudgedTask):
    name = "arena_hard"
    version = VERSION
    description = (
        "Arena-Hard v0.1: 500 prompts, pairwise vs gpt-4-0314 in both orders, GPT-4-Turbo judge, win rate + bootstrap CI"
    )
    default_max_new_tokens = 4096  # arena-hard-auto's gen_answer default
    paper_n_samples = 16
    paper_judge = "gpt-4-1106-preview"
    judge_max_tokens = 4096  # judge_config.yaml
    games = (0, 1)
    attempts = 2  # judge_config.yaml: number_of_judgment_attempts

    def load_all(self, data_dir=None) -> list[Item]:
        src = DataSearch(self.name, data_dir)
        d = src.local(QUESTION_FILE, BASELINE_FILE)
        if d is None:
            raise data_error(src, f"{QUESTION_FILE} and {BASELINE_FILE} (arena-hard-auto's data/arena-hard-v0.1)")
        base = {}
        for r in read_jsonl(d / BASELINE_FILE):
            base[r["question_id"]] = r["choices"][0]["turns"][0]["content"]
        items = []
        for q in read_jsonl(d / QUESTION_FILE):
            items.append(
                Item(
                    q["question_id"],
                    {"question": q["turns"][0]["content"], "baseline": base[q["question_id"]], "cluster": q["cluster"]},
                    q["cluster"],
                )
            )
        return items

    def prompt(self, item: Item) -> list[dict]:
        return chat(item.data["question"])

    # --- judging -----------------------------------------------------------------------------------
    def template(self, data_dir=None) -> Template:
        t = self._template_from("arena_hard", CONFIG_FILES, data_dir)
        self._pattern = re.compile(self.config(t).get("regex_pattern") or PATTERN.pattern)
        return t

    def config(self, template: Template) -> dict:
        import yaml

        cache = self.__dict__.setdefault("_configs", {})  # parsed once per template, not once per judgment
        if template.sha256 not in cache:
            cache[template.sha256] = yaml.safe_load(template.text("judge_config.yaml"))
        return cache[template.sha256]

    def judge_body(self, judge: JudgeClient, item: Item, completion: str, game: int, template: Template) -> dict:
        cfg = self.config(template)
        a, b = (item.data["baseline"], completion or "") if game == 0 else (completion or "", item.data["baseline"])
        user = cfg["prompt_template"][0].format(question_1=item.data["question"], answer_1=a, answer_2=b)
        messages = [{"role": "system", "content": cfg["system_prompt"]}, {"role": "user", "content": user}]
        return judge.body(messages, judge.budget(int(cfg.get("max_tokens", self.judge_max_tokens))))

    def judge_one(self, judge: JudgeClient, body: dict, item: Item, game: int, prior: dict | None = None) -> Judgment:
        """Up to `attempts` turns. A turn that fails after an earlier one was answered does not lose it: the
        judgment is recorded as failed with the answered turns (`detail["turns_text"]`), and the next run, given
        them back as `prior`, sends only the turns still missing (the first one is paid for once)."""
        pattern = getattr(self, "_pattern", PATTERN)  # judge_config.yaml's regex_pattern, read with the template
        conv, text, turns = list(body["messages"]), "", []
        label = None
        for new in (prior or {}).get("turns_text") or []:  # turns a failed attempt already paid for
            turns.append(new)
            text += "\n" + new
            conv = conv + [{"role": "assistant", "content": new}, {"role": "user", "content": CONTINUE}]
        for _ in range(self.attempts - len(turns)):
            try:
                choice = judge.chat({**body, "messages": conv})
            except Exception as e:
                if not turns:
                    raise  # nothing paid for yet: the runner records the failure
                err = " ".join(str(e).split())[:500]
                return Judgment(
                    text, None, None, {"turns": len(turns), "turns_text": turns}, error=f"turn {len(turns) + 1}: {err}"
                )
            new = (choice.get("message") or {}).get("content") or ""
            turns.append(new)
            text += "\n" + new
            label, again = get_score(text, pattern)
            if not again:
                break
            conv = conv + [{"role": "assistant", "content": new}, {"role": "user", "content": CONTINUE}]
        return self._judgment(text, label, game, {"turns": len(turns)})

    def parse(self, choice: dict, item: Item, game: int) -> Judgment:
        text = "\n" + ((choice.get("message") or {}).get("content") or "")
        label, _ = get_score(text, getattr(self, "_pattern", PATTERN))
        return self._judgment(text, label, game, {"turns": 1})

    def _judgment(self, text: str, label: str | None, game: int, detail: dict) -> Judgment:
        if label not in LABELS:
            if label is not None:
                detail["label"] = label  # a label outside the five: kept for inspection, not counted
            return Judgment(text, None, None, detail)
        outcome, _ = model_outcome(label, game)
        return Judgment(text, label, outcome, detail)

    def sample_score(self, item, judgments):
        parsed = [judgments[g] for g in self.games if judgments[g]["parsed_ok"]]
        extracted = "|".join(judgments[g]["verdict"] or "?" for g in self.games)
        if not parsed:
            return None, extracted, "unparseable"
        reason = (
            None if len(parsed) == len(self.games) else f"{len(self.games) - len(parsed)} of {len(self.games)} games unparseable"
        )
        return float(np.mean([j["value"] for j in parsed])), extracted, reason

    def metrics(self, rows: pd.DataFrame, items: dict[str, Item], data_dir=None) -> dict:
        labels = [(gs[g]["verdict"], g) for gs in rows["games"] for g in self.games if gs[g]["parsed_ok"]]
        out = arena_score(battle_outcomes(labels))
        games = [gs[g] for gs in rows["games"] for g in self.games]
        out["n_games"] = len(games)
        out["n_games_unparseable"] = sum(1 for j in games if not j["parsed_ok"])
        return out
