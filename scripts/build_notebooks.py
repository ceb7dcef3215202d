"""Write notebooks/*.ipynb from the cells below (outputs empty, `parameters` tag and kernelspec set).

The parameters cell of each notebook is generated from its schema in gbg_utils/params.py, so the two
cannot drift apart; edit a notebook here, run `python scripts/build_notebooks.py`, commit both.
"""
import dataclasses
import typing

import nbformat as nbf
import yaml

from gbg_utils.params import NOTEBOOK_DIR, PARAMS_DIR, SCHEMAS, _type_name

HELP = {
    "models": "embedded names, hub ids or local HF folders",
    "benchmarks": "gsm8k, humaneval, mmlu_redux, mixeval, mixeval_hard, alpaca_eval, arena_hard, wildbench",
    "limit": "first N items of each benchmark (None: all)",
    "n_samples": "sampled outputs per item (greedy is always generated too)",
    "n_samples_by_benchmark": "per-benchmark override of n_samples, e.g. {'mmlu_redux': 32}",
    "temperature": "sampling temperature", "top_p": "nucleus sampling (1: off)", "top_k": "(-1: off)",
    "repetition_penalty": "(1: off)", "max_new_tokens": "None: the benchmark's default", "seed": "base seed of the samples",
    "backend": "vllm | transformers | openai", "dtype": "bfloat16 | float32 | float16",
    "base_url": "openai backend only, the API key is read from the environment, never a parameter",
    "store": "the shared sample store, relative to the project root", "data_dir": "None: $GBG_DATA_DIR, packaged data, then the hub",
    "n_boot": "bootstrap resamples for the CIs",
    "judge_model": "judged benchmarks only: the OpenAI-compatible judge's model name",
    "judge_base_url": "the judge's server URL, its key is read from $OPENAI_API_KEY", "output_dir": "tables, figures and provenance go here (gbg run sets it)",
    "sizes": "parameters (billions) of each model, same order", "methods": "alignment method of each model, same order",
    "temperatures": "the sweep, 0 is greedy", "slider_item": "index of the item the live slider re-samples",
    "repetition_penalties": "the sweep", "reward_models": "HF reward models to rank samples by (needs the reward module)",
    "selectors": "oracle | majority | logprob | random", "reference_score": "a stronger model's score, drawn as a line (0-1)",
    "reference_label": "its label",
}

HEAD = """import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from gbg_utils import plots, reading, stats, study
from gbg_utils.params import validate

P = validate("{name}", globals())  # rejects ill-typed or out-of-range values with a clear message
pd.set_option("display.precision", 3)"""

COLLECT = """df = study.collect(P{extra}, logprobs=True)
print(f"{{len(df)}} scored completions: {{df.model.nunique()}} model(s) x {{df.benchmark.nunique()}} benchmark(s) x "
      f"{{df.config_key.nunique()}} decoding config(s)")"""

GAP_COLS = '["model", "benchmark", "temperature", "n_items", "n_runs", "greedy", "mean", "std", "best", "worst", "gap", "gap_ci_low", "gap_ci_high", "p_value"]'

NOTEBOOKS = {
    "gap": ("Greedy vs sampling: the gap",
            "Is greedy decoding better or worse than sampling, and by how much? For every model and benchmark: the greedy "
            "score, the mean, spread, best and worst of the N sampled *runs* (run j = the j-th sample of every item), a paired "
            "test over the same items, and whether the models' ranking flips between greedy and sampling (paper Table 2).",
            "",
            [("code", f"""gap = stats.gap_table(df, n_boot=P.n_boot)
display(gap[{GAP_COLS}])"""),
             ("code", """display(Markdown(reading.describe_gap(gap)))"""),
             ("code", """runs = stats.run_scores(df)
figures = {"gap_table": plots.plot_gap_table(gap), "run_distributions": plots.plot_run_distributions(runs, gap)}"""),
             ("code", """ranks = stats.rank_table(df) if df.model.nunique() > 1 else pd.DataFrame()
flips = stats.rank_flips(df) if df.model.nunique() > 1 else pd.DataFrame()
display(flips if not flips.empty else Markdown("_One model: no ranking to flip._"))"""),
             ("code", """study.save(P.output_dir, P, "gap", tables={"gap": gap, "runs": runs, "ranks": ranks, "rank_flips": flips}, figures=figures)""")]),
    "scaling": ("Scaling: does non-determinism shrink with model size?",
                "One family at several sizes: greedy, sampling mean and the spread of sampled runs against model size.",
                "",
                [("code", """df["size_b"] = df["model"].map(dict(zip(P.models, P.sizes)))
gap = stats.gap_table(df, n_boot=P.n_boot).assign(size_b=lambda g: g.model.map(dict(zip(P.models, P.sizes)))).sort_values(["benchmark", "size_b"])
display(gap[["model", "size_b", "benchmark", "n_items", "n_runs", "greedy", "mean", "std", "gap", "gap_ci_low", "gap_ci_high"]])"""),
                 ("code", """sweep = stats.sweep_table(df, x="size_b", n_boot=P.n_boot)
figures = {"scaling": plots.plot_sweep(sweep, x="size_b", hue="decoding"), "gap_table": plots.plot_gap_table(gap)}
lines = [f"- {b}: std of sampled runs " + ", ".join(f"{r.model} ({r.size_b:g}B) {100 * r.std:.1f}" for r in g.itertuples())
         for b, g in gap.groupby("benchmark")]
display(Markdown("\\n".join(lines) + "\\n\\n" + reading.describe_gap(gap)))"""),
                 ("code", """study.save(P.output_dir, P, "scaling", tables={"gap": gap, "sweep": sweep}, figures=figures)""")]),
    "alignment": ("Alignment: does preference tuning change the gap?",
                  "A base model and its aligned variants (the paper: Llama-3-8B-Instruct and its DPO/KTO/IPO/ORPO/RDPO/SimPO "
                  "checkpoints): greedy, sampling mean and std per method. **Offline, no aligned family ships: the offline "
                  "parameters use the embedded models as stand-ins, which answers nothing about alignment; it only exercises "
                  "the pipeline.**",
                  "",
                  [("code", """gap = stats.gap_table(df, n_boot=P.n_boot).assign(method=lambda g: g.model.map(dict(zip(P.models, P.methods))))
display(gap[["method", "model", "benchmark", "n_items", "n_runs", "greedy", "mean", "std", "gap", "gap_ci_low", "gap_ci_high"]])
if all(m.startswith("stand-in") for m in P.methods):
    display(Markdown("**These are stand-in models, not an aligned family: read nothing about alignment into them.**"))"""),
                   ("code", """runs = stats.run_scores(df)
figures = {"gap_table": plots.plot_gap_table(gap), "run_distributions": plots.plot_run_distributions(runs, gap)}
display(Markdown(reading.describe_gap(gap)))"""),
                   ("code", """study.save(P.output_dir, P, "alignment", tables={"gap": gap, "runs": runs}, figures=figures)""")]),
    "temperature": ("Temperature: how does the score move with T?",
                    "A temperature sweep per benchmark (T=0 is greedy), with bootstrap bands; and, in JupyterLab, a slider that "
                    "re-samples one prompt live at the slider's temperature.",
                    ", temperatures=P.temperatures",
                    [("code", """sweep = stats.sweep_table(df, x="temperature", n_boot=P.n_boot)
display(sweep[["model", "benchmark", "decoding", "temperature", "n_items", "mean", "ci_low", "ci_high", "std"]])
figures = {"temperature": plots.plot_sweep(sweep, x="temperature")}
display(Markdown(reading.describe_sweep(sweep, "temperature")))"""),
                     ("code", """study.save(P.output_dir, P, "temperature", tables={"sweep": sweep}, figures=figures)"""),
                     ("markdown", "### Live: drag the slider\nRe-samples item `slider_item` of the first benchmark with the first model (loaded on the first move)."),
                     ("code", """from gbg_utils.generation import load_backend
from gbg_utils.tasks import get_task
from gbg_utils.widgets import TemperatureExplorer

task = get_task(P.benchmarks[0])
item = task.load(data_dir=P.data_dir, limit=P.slider_item + 1)[P.slider_item]
explorer = TemperatureExplorer(lambda: load_backend(P.backend, P.models[0], dtype=P.dtype), task, item, n=P.n_samples,
                               max_new_tokens=P.max_new_tokens)
explorer.widget""")]),
    "repetition": ("Repetition penalty: does it help?",
                   "A repetition-penalty sweep (1.0 = off); greedy and sampling at each penalty.",
                   ", repetition_penalties=P.repetition_penalties",
                   [("code", """sweep = stats.sweep_table(df, x="repetition_penalty", by=("model", "benchmark"), n_boot=P.n_boot)
display(sweep[["model", "benchmark", "decoding", "repetition_penalty", "n_items", "mean", "ci_low", "ci_high"]])
figures = {"repetition_penalty": plots.plot_sweep(sweep, x="repetition_penalty")}
display(Markdown(reading.describe_sweep(sweep, "repetition_penalty")))"""),
                    ("code", """study.save(P.output_dir, P, "repetition", tables={"sweep": sweep}, figures=figures)""")]),
    "length": ("Length: are sampled outputs longer?",
               "Tokens of greedy vs sampled outputs per benchmark and model (paper Figure 6), and length against correctness.",
               "",
               [("code", """lengths = stats.length_table(df)
display(lengths)
by_correct = df.assign(correct=df.score >= 1).groupby(["model", "benchmark", "greedy", "correct"])["n_tokens"].agg(["mean", "count"]).reset_index()
display(by_correct)
figures = {"lengths": plots.plot_lengths(lengths)}
display(Markdown(reading.describe_lengths(lengths)))"""),
                ("code", """study.save(P.output_dir, P, "length", tables={"lengths": lengths, "length_by_correctness": by_correct}, figures=figures)""")]),
    "best_of_n": ("Best-of-N: how good is the best of N samples?",
                  "Best-of-k curves for k = 1..N through unbiased k-subset estimators: oracle (best by correctness), majority vote, "
                  "the policy's own mean log-probability, random, and any reward model named in the parameters, against greedy "
                  "and a reference line.",
                  "",
                  [("code", """from gbg_utils import selection

reward_columns = study.add_rewards(df, P)  # reward:<name> per reward model, scored over the store first
curves = selection.best_of_k_table(df, selectors=P.selectors + reward_columns, n_boot=P.n_boot).rename(columns={"selector": "method"})
gap = stats.gap_table(df, n_boot=0)
display(curves[curves.k.isin([1, 2, 4, 8, 16, 32, 64, 128])].pivot_table(index=["model", "benchmark", "k"], columns="method", values="value"))
display(Markdown(reading.describe_best_of_k(curves)))"""),
                   ("code", """reference = {P.reference_label: P.reference_score} if P.reference_score is not None else {}
figures = {"best_of_k": plots.plot_best_of_k(curves, reference=reference or None, greedy=gap), "item_pass_rates": plots.plot_item_pass_rates(stats.per_item(df))}"""),
                   ("code", """study.save(P.output_dir, P, "best_of_n", tables={"best_of_k": curves, "gap": gap}, figures=figures)""")]),
}


def _annotation(tp) -> str:
    args = typing.get_args(tp)
    if type(None) in args and len(args) == 2:
        # quoted: papermill's parser accepts quotes, and Python does not evaluate a string annotation
        return f'"Optional[{_annotation(next(a for a in args if a is not type(None))).strip(chr(34))}]"'
    return _type_name(tp)


def params_cell(name: str) -> str:
    cls = SCHEMAS[name]
    hints = typing.get_type_hints(cls)
    offline = yaml.safe_load((PARAMS_DIR / name / "offline.yaml").read_text())
    lines = []
    for f in dataclasses.fields(cls):
        default = offline.get(f.name, f.default if f.default is not dataclasses.MISSING else f.default_factory())
        # papermill's parser takes neither `X | None` nor `;` in this cell: write Optional[X] and commas.
        assert ";" not in HELP[f.name] and "=" not in HELP[f.name], f.name
        lines.append(f"{f.name}: {_annotation(hints[f.name])} = {default!r}  # {HELP[f.name]}")
    return "\n".join(lines)


def build(name: str) -> nbf.NotebookNode:
    title, intro, extra, cells = NOTEBOOKS[name]
    nb = nbf.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
                   "language_info": {"name": "python"}}
    c = [nbf.v4.new_markdown_cell(f"# {title}\n\n{intro}\n\nRun headless: `gbg run {name} --params offline` "
                                  f"(or `smoke`, `paper`); parameters live in `params/{name}/`.")]
    p = nbf.v4.new_code_cell(params_cell(name))
    p.metadata["tags"] = ["parameters"]
    c += [p, nbf.v4.new_code_cell(HEAD.format(name=name)), nbf.v4.new_code_cell(COLLECT.format(extra=extra))]
    for kind, src in cells:
        c.append(nbf.v4.new_code_cell(src) if kind == "code" else nbf.v4.new_markdown_cell(src))
    for i, cell in enumerate(c):
        cell["id"] = f"{name}-{i}"  # stable ids: rebuilding does not churn the diff
    nb.cells = c
    return nb


if __name__ == "__main__":
    NOTEBOOK_DIR.mkdir(exist_ok=True)
    for name in NOTEBOOKS:
        nb = build(name)
        nbf.validator.normalize(nb)
        nbf.write(nb, NOTEBOOK_DIR / f"{name}.ipynb")
        print("wrote", NOTEBOOK_DIR / f"{name}.ipynb")
