"""Reuse what a trained network learned: start a fit from it (``init_from``), freeze and
fine-tune (see source.py for what a network can be started from)."""
