"""
Regression with prediction intervals
====================================

A :class:`archtune.NeuralRegressor` on scikit-learn's diabetes table, and intervals that
hold the true value for 90% of new rows: split conformal prediction, calibrated on the
validation rows the fit held out (``predict_interval(X, coverage=0.9)``).
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split

from archtune import NeuralRegressor

X, y = load_diabetes(return_X_y=True, as_frame=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

model = NeuralRegressor(max_epochs=30, validation_fraction=0.2, random_state=0).fit(X_train, y_train)
lower, upper = model.predict_interval(X_test, coverage=0.9)
covered = np.mean((lower <= y_test) & (y_test <= upper))
print(f"R^2 on the test rows: {model.score(X_test, y_test):.3f}")
print(f"intervals cover {covered:.0%} of the test rows (nominal 90%), width {np.mean(upper - lower):.1f}")

# %%
# Each test row's interval against its true value, rows sorted by prediction.
order = np.argsort(model.predict(X_test))
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.fill_between(range(len(order)), lower[order], upper[order], alpha=0.3, label="90% interval")
ax.plot(model.predict(X_test)[order], label="prediction")
ax.scatter(range(len(order)), np.asarray(y_test)[order], s=6, color="black", label="true value")
ax.set_xlabel("test row (sorted by prediction)")
ax.set_ylabel("disease progression")
ax.legend()
