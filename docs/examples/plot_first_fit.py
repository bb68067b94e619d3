"""
A first fit
===========

A :class:`archtune.NeuralClassifier` on scikit-learn's breast-cancer table (569 rows, 30
numeric columns, two classes): fit, score, read the per-epoch history and draw the learning
curves. The defaults are archtune's tabular recipe; ``max_epochs=20`` only keeps the example
short (the default is 64).
"""

from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

import archtune
from archtune import NeuralClassifier

X, y = load_breast_cancer(return_X_y=True, as_frame=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)

model = NeuralClassifier(max_epochs=20, random_state=0).fit(X_train, y_train)
print(f"test accuracy: {model.score(X_test, y_test):.3f}")
print(f"best epoch: {model.best_epoch_} (its weights are the ones kept)")
print(model.history_[["epoch", "train_loss", "val_loss", "val_accuracy"]].tail())

# %%
# The learning curves: training and validation loss and accuracy per epoch, the best epoch
# marked. Validation rows are a tenth of the training rows (``validation_fraction``).
archtune.plot_learning_curves(model)
