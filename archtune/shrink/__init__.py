"""Shrinking a fitted network for serving: structured pruning (prune.py) and knowledge
distillation (distill.py)."""
