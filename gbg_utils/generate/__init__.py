"""Generation: the backends (vLLM, transformers, an OpenAI-compatible server) and the runner that fills the store
with greedy + N samples per item, resumably."""
