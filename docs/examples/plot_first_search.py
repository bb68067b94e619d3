"""
A first search and its leaderboard
==================================

:class:`archtune.AutoNeuralClassifier` searches networks with Optuna for a time budget (here
15 seconds: a real search wants minutes), fits LightGBM and the classical baselines on the
same split, and selects an ensemble. The leaderboard ranks them all, best first.
"""

from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

import archtune
from archtune import AutoNeuralClassifier

X, y = load_breast_cancer(return_X_y=True, as_frame=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)

search = AutoNeuralClassifier(budget="15s", random_state=0).fit(X_train, y_train)
print(f"test accuracy of what predicts: {search.score(X_test, y_test):.3f}")
print(f"the best network alone:         {search.best_estimator_.score(X_test, y_test):.3f}")

# %%
# The leaderboard
# ---------------
# One row per network trial, baseline and the ensemble: its validation score with a 95%
# bootstrap interval (``val_low``, ``val_high``), its fit time and a note (the best epoch, why
# a trial stopped, whether the ensemble is used and why).
board = search.leaderboard_
print(board[["model", "val_score", "val_low", "val_high", "fit_seconds"]].to_string())

# %%
# The score of each trial over the search's time.
archtune.plot_optimization_history(search)
