"""Scoring the stored samples: by each task's own rule (scoring), by an LLM judge (judge), by a reward model (reward).
Every score lands in the store's `scores` table, so the statistics read them all alike."""
