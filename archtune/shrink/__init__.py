"""Shrinking a fitted network for serving: structured pruning (prune.py and prune_rounds.py,
with surgery.py, importance.py and latency.py) and knowledge distillation (distill.py, with
distill_loss.py, teacher.py and augment.py)."""
