"""
Export to ONNX
==============

:func:`archtune.export` writes one ONNX file that predicts outside Python with the
preprocessing inside it: raw columns in (one input per column, NaN for missing, strings for
categories), labels and probabilities out. onnxruntime runs it (``pip install
'archtune[onnx]'``).
"""

import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd

import archtune

rng = np.random.default_rng(0)
X = pd.DataFrame({"age": rng.normal(40, 10, 500), "city": rng.choice(["Paris", "Lyon", "Nice"], 500)})
X.loc[::7, "age"] = np.nan
y = (X["city"] == "Paris") ^ (X["age"].fillna(40) > 45)
model = archtune.NeuralClassifier(max_epochs=5, random_state=0).fit(X, y)

path = Path(tempfile.mkdtemp()) / "toy.onnx"
archtune.export(model, path)

session = ort.InferenceSession(str(path))
rows = {"age": np.array([31.0, np.nan]), "city": np.array(["Paris", "Berlin"], dtype=object)}
label, proba = session.run(["label", "probabilities"], rows)   # "Berlin": unknown, as in predict
print("ONNX:   ", proba)
print("archtune:", model.predict_proba(pd.DataFrame(rows)))
assert np.allclose(proba, model.predict_proba(pd.DataFrame(rows)), atol=1e-5)
