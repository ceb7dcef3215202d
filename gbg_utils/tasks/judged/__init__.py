"""The judged benchmarks of Song et al. (2024): AlpacaEval 2, Arena-Hard v0.1, WildBench v2.

Same `Task` interface as the judge-free ones (load / prompt / version / default_max_new_tokens / ...), so the
runner generates their samples like any other; scoring goes through an LLM judge instead of `score`
(base.py: what a judged task provides; score/judge.py: the judge client and runner):

    >>> from gbg_utils.score.judge import Judge, judge_store, judged_frame
    >>> task = get_judged_task("alpaca_eval")                         # gbg_utils.tasks.get_judged_task
    >>> run_generation(store, "smollm2-135m", task, n_samples=16, temperature=1.0)
    >>> print(judge_store(store, task, Judge("gpt-4-1106-preview")))
    >>> judged_frame(store, "alpaca_eval", "gpt-4-1106-preview")     # the tidy table, this judge only
"""
