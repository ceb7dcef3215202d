"""gbg: how much does an LLM evaluation depend on decoding? (Song et al. 2024, arXiv 2407.10457)

The data flows one way, and the subpackages follow it: params -> generate (backends, runner) -> store ->
score (tasks' rules, the LLM judge, reward models) -> stats -> report (plots, sentences, notebooks).
See ARCHITECTURE.md.
"""

__version__ = "0.1.0"
