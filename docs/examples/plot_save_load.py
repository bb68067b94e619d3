"""
Save and load a bundle
======================

:func:`archtune.save` writes a model as a bundle: a folder of safetensors weights and JSON,
never pickle, checksummed; :func:`archtune.load` reads it back and predicts exactly as the
saved model did.
"""

import tempfile
from pathlib import Path

from sklearn.datasets import load_wine

import archtune
from archtune import NeuralClassifier

X, y = load_wine(return_X_y=True, as_frame=True)
model = NeuralClassifier(max_epochs=15, random_state=0).fit(X, y)

folder = Path(tempfile.mkdtemp()) / "wine"
archtune.save(model, folder)
print(sorted(path.name for path in folder.iterdir()))

same = archtune.load(folder)
assert (same.predict_proba(X) == model.predict_proba(X)).all()
print(type(same).__name__, "predicts as the saved model:", (same.predict(X) == model.predict(X)).all())
