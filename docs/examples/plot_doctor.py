"""
The training doctor
===================

:func:`archtune.diagnose` trains a copy of an estimator with every step's per-layer
gradients, update ratios and activations recorded, and names what is wrong, with the evidence
and advice. A deep sigmoid network is a textbook case of vanishing gradients.
"""

from sklearn.datasets import load_breast_cancer

import archtune
from archtune import NeuralClassifier

X, y = load_breast_cancer(return_X_y=True, as_frame=True)
diagnosis = archtune.diagnose(
    NeuralClassifier(hidden_layers=12, activation="sigmoid", parametric_activation=False,
                     numeric_embedding=None, random_state=0),
    X, y, max_epochs=5)
print(diagnosis)

# %%
# Each finding has a stable code, a severity and the numbers behind it.
for finding in diagnosis.findings:
    print(finding.code, finding.severity, finding.evidence)
