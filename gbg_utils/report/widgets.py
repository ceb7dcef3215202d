"""The live temperature slider: re-sample one prompt at the slider's temperature and show the spread.

    >>> w = TemperatureExplorer(backend_factory, get_task("gsm8k"), item, n=8)
    >>> w.widget            # in JupyterLab: drag the slider
    >>> w.slider.value = 1.2; w.last   # headless: set the value, read the result

The model is loaded on the first re-sample, not when the widget is built, so a headless papermill run
that never moves the slider never pays for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..decoding import DecodingConfig
from ..stats import answer_stats


@dataclass
class Resample:
    temperature: float
    texts: list[str]
    extracted: list[str | None]
    correct: list[bool]
    n_distinct: int  # distinct extracted answers (stats.answer_stats: each missing answer is its own)
    entropy: float  # of the extracted answers, in bits (stats.answer_stats)

    @property
    def n_correct(self) -> int:
        return sum(self.correct)


def resample(backend, task, item, temperature: float, n: int = 8, seed: int = 0, max_new_tokens: int | None = None) -> Resample:
    """n completions of one item at `temperature` (greedy when 0), scored by the task."""
    cfg = DecodingConfig(
        temperature=temperature,
        n=1 if temperature == 0 else n,
        seed=seed,
        max_new_tokens=max_new_tokens or task.default_max_new_tokens,
        stop=tuple(task.stop or ()),
    )
    from ..generate.base import generate

    comps = generate(backend, [task.prompt(item)], cfg)[0]
    texts = [c.text for c in comps]
    scores = task.score_many([(item, t) for t in texts])
    extracted = [s.extracted for s in scores]
    n_distinct, entropy, _ = answer_stats(extracted)
    return Resample(temperature, texts, extracted, [s.score >= 1.0 for s in scores], n_distinct, entropy)


class TemperatureExplorer:
    def __init__(
        self,
        backend_factory,
        task,
        item,
        n: int = 8,
        seed: int = 0,
        max_new_tokens: int | None = None,
        value: float = 1.0,
        max_temperature: float = 2.0,
    ):
        import ipywidgets as W

        self._factory, self._backend = backend_factory, None
        self.task, self.item, self.n, self.seed, self.max_new_tokens = task, item, n, seed, max_new_tokens
        self.last: Resample | None = None
        self.slider = W.FloatSlider(
            value=value,
            min=0.0,
            max=max_temperature,
            step=0.05,
            description="temperature",
            continuous_update=False,
            style={"description_width": "initial"},
        )
        self.out = W.HTML(f"<i>Move the slider to sample {n} answers to item {item.id} of {task.name}.</i>")
        self.slider.observe(self._changed, names="value")
        self.widget = W.VBox([self.slider, self.out])

    def _changed(self, change) -> None:
        if self._backend is None:
            self._backend = self._factory()
        self.last = resample(self._backend, self.task, self.item, change["new"], self.n, self.seed, self.max_new_tokens)
        self.out.value = self.render(self.last)

    @staticmethod
    def render(r: Resample) -> str:
        import html

        rows = "".join(
            f"<tr><td>{'✔' if ok else '✘'}</td><td>{html.escape(str(e))}</td><td><pre style='white-space:pre-wrap;margin:0'>"
            f"{html.escape(t[:400])}</pre></td></tr>"
            for t, e, ok in zip(r.texts, r.extracted, r.correct)
        )
        return (
            f"<b>T = {r.temperature:.2f}</b>: {r.n_correct}/{len(r.texts)} correct, {r.n_distinct} distinct answers, "
            f"answer entropy {r.entropy:.2f} bits<table><tr><th></th><th>answer</th><th>completion</th></tr>{rows}</table>"
        )
