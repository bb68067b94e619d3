"""Search: spaces, the Optuna study loop, baselines and the leaderboard.

This is the only package that imports Optuna.
"""
