"""gbg: how much does an LLM evaluation depend on decoding? (Song et al. 2024, arXiv 2407.10457)

The data flows one way: params -> generate (generation, runner) -> store -> score (tasks, scoring)
-> statistics (stats) -> figures (plots).
"""

__version__ = "0.1.0"
