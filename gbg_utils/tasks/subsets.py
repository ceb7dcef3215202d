"""Fair subsets: what `limit` draws from a benchmark.

`limit: N` is not the first N items (MMLU-Redux's first 100 are all anatomy, MixEval's first 2000 all
free-form): it is a seeded sample of N items, stratified by each item's `stratum` (MMLU-Redux: the subject;
MixEval: format/source benchmark; AlpacaEval: the source dataset; Arena-Hard: the topic cluster; GSM8K and
HumanEval have none, so their draw is a plain seeded sample), returned in the benchmark's own order.

    >>> items = task.load(limit=50, subset_seed=0)     # Task.load calls draw(all items, 50, 0)

The rule (RULE), one seat at a time, so that a larger limit only adds items:

* the first seat of each stratum: strata in a seeded order drawn with probability proportional to their size
  (sequential sampling without replacement), so with fewer seats than strata every stratum gets at most one
  and each is in with a chance that grows with its size; once `limit` >= the number of strata, every stratum
  has one item;
* every further seat: to the stratum with the largest size / (2 * seats + 1) (Sainte-Lague / Webster, the
  divisor method of rounding to the nearest), ties to the earlier stratum of that seeded order, a full stratum
  never; the allocation is proportional to the strata's sizes up to rounding, with the one-per-stratum floor;
* inside a stratum, items in a seeded order (the sha256 of seed and item id); a stratum with k seats takes its
  first k.

So the draw is nested: for one seed, the `limit` 20 items are among the `limit` 50 items. (Largest-remainder
rounding would not be: its allocation can lose a seat when the total grows, the Alabama paradox.) Everything
random comes from sha256 of the seed and the item's id or stratum name, in integer arithmetic: the same
(limit, seed) gives the same items on every machine and Python version, and an item's key does not depend on
which other items the benchmark holds. `limit` >= the benchmark's size is all items.
"""

from __future__ import annotations

import hashlib
import heapq
from fractions import Fraction

RULE = "stratified/webster-min1/sha256/v1"  # bump when the draw changes: the same (limit, seed) would mean other items


def check_limit(limit, name: str = "limit") -> None:
    """A limit is None (all items) or an int >= 1; anything else is a one-line ValueError."""
    if limit is None:
        return
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise ValueError(f"{name} must be an integer >= 1 or None (all items), got {limit!r}")
    if limit < 1:
        raise ValueError(f"{name} must be >= 1 (leave it out for all items), got {limit}")


def _key(seed: int, *parts: str) -> int:
    h = hashlib.sha256("\0".join([str(int(seed)), *parts]).encode("utf-8"))
    return int.from_bytes(h.digest(), "big")


def stratum_of(item):
    """The stratum an item is drawn in: `item.stratum` (which defaults to its group), None for none."""
    return getattr(item, "stratum", getattr(item, "group", None))


def allocate(sizes: dict, limit: int, seed: int = 0) -> dict:
    """Seats per stratum for `limit` items: {stratum: count}, in the order of `sizes` (see the module's rule)."""
    total = sum(sizes.values())
    limit = min(limit, total)
    names = [s for s in sizes if sizes[s] > 0]
    # First seats: strata drawn one by one with probability proportional to size, from the seeded integer stream.
    order, left, rest = [], total, list(names)
    for k in range(len(names)):
        r = _key(seed, "stratum-order", str(k)) % left
        for s in rest:
            if r < sizes[s]:
                break
            r -= sizes[s]
        order.append(s)
        rest.remove(s)
        left -= sizes[s]
    seats = dict.fromkeys(sizes, 0)
    for s in order[:limit]:
        seats[s] = 1
    rank = {s: i for i, s in enumerate(order)}
    heap = [(-Fraction(sizes[s], 3), rank[s], s) for s in order if sizes[s] > 1]
    heapq.heapify(heap)
    for _ in range(limit - min(limit, len(order))):
        _, r, s = heapq.heappop(heap)
        seats[s] += 1
        if seats[s] < sizes[s]:
            heapq.heappush(heap, (-Fraction(sizes[s], 2 * seats[s] + 1), r, s))
    return seats


def draw(items: list, limit: int | None, seed: int = 0) -> list:
    """`limit` of `items`, stratified by `stratum_of(item)` and seeded, in their original order (None: all)."""
    check_limit(limit)
    items = list(items)
    if limit is None or limit >= len(items):
        return items
    strata: dict = {}
    for i, it in enumerate(items):
        strata.setdefault(stratum_of(it), []).append(i)
    seats = allocate({s: len(ix) for s, ix in strata.items()}, limit, seed)
    chosen = []
    for s, ix in strata.items():
        ranked = sorted(ix, key=lambda i: (_key(seed, "item", str(items[i].id)), i))
        chosen += ranked[: seats[s]]
    return [items[i] for i in sorted(chosen)]


def describe(items: list, limit: int | None, seed: int, drawn: list | None = None) -> str:
    """One line on what a limit drew, e.g. "50 of 3000 items, a stratified draw (subset_seed 0) over 30 of 30 strata"."""
    if limit is None or limit >= len(items):
        return f"all {len(items)} items"
    drawn = drawn if drawn is not None else draw(items, limit, seed)
    n_strata = len({stratum_of(it) for it in items})
    if n_strata == 1:
        return f"{len(drawn)} of {len(items)} items, a seeded sample (subset_seed {seed})"
    covered = len({stratum_of(it) for it in drawn})
    return f"{len(drawn)} of {len(items)} items, a stratified draw (subset_seed {seed}) covering {covered} of {n_strata} strata"
