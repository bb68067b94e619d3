"""Export: an ONNX file run by onnxruntime (one thread) against the bundle's own predict, on every
row of adult (48,842 rows, 8 categorical columns as strings, 10% of three numeric columns and
2% of two categorical columns made missing).

    .venv/bin/python bench/export.py            # about 2 minutes on a 2-core machine

A default NeuralClassifier (robust scaling, piecewise-linear embeddings, 3 x 256 MLP) and a
default NeuralRegressor (target hours-per-week) are fitted on 10,000 rows (20 epochs), saved,
loaded back and exported. Reported per model: the largest absolute difference between the ONNX
outputs and ``predict_proba`` / ``predict`` over all rows (for the regressor also divided by the
target's standard deviation), label agreement, and the median latency per 1000 rows (20
repeats, torch and onnxruntime both on one thread): the bundle's ``predict_proba`` / ``predict``
on a DataFrame, onnxruntime's ``run`` on ready arrays, and onnxruntime including the
conversion of the DataFrame's columns to arrays.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import archtune

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "datasets" / "tabular" / "adult.tsv.gz"
CATEGORICAL = ["workclass", "education", "marital-status", "occupation", "relationship", "race", "sex",
               "native-country"]


def table() -> pd.DataFrame:
    frame = pd.read_csv(DATA, sep="\t")
    for name in CATEGORICAL:
        frame[name] = "c" + frame[name].astype(str)
    rng = np.random.default_rng(0)
    for name in ["age", "fnlwgt", "capital-gain"]:
        frame.loc[rng.random(len(frame)) < 0.1, name] = np.nan
    for name in ["occupation", "sex"]:
        frame[name] = frame[name].astype(object)
        frame.loc[rng.random(len(frame)) < 0.02, name] = None
    return frame


def feed(frame: pd.DataFrame, session) -> dict[str, np.ndarray]:
    out = {}
    for spec in session.get_inputs():
        column = frame[spec.name]
        if spec.type == "tensor(double)":
            out[spec.name] = column.to_numpy(dtype="float64", na_value=np.nan)
        else:
            out[spec.name] = np.where(column.isna(), "", column.astype(str)).astype(object)
    return out


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def measure(model, X: pd.DataFrame, directory: Path, name: str, repeats: int) -> dict:
    import onnxruntime as ort

    bundle = archtune.save(model, directory / name)
    loaded = archtune.load(bundle)
    started = time.perf_counter()
    exported = archtune.export(bundle, directory / f"{name}.onnx")
    export_s = time.perf_counter() - started
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(exported.path), options, providers=["CPUExecutionProvider"])
    outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, feed(X, session))))
    result: dict = {"rows": len(X), "export_seconds": round(export_s, 1),
                    "onnx_bytes": exported.path.stat().st_size}
    if hasattr(loaded, "classes_"):
        proba = loaded.predict_proba(X)
        result["max_abs_diff_proba"] = float(np.abs(outputs["probabilities"] - proba).max())
        result["labels_equal"] = float(np.mean(outputs["label"] == loaded.predict(X)))
        predict = loaded.predict_proba
    else:
        values = loaded.predict(X)
        diff = float(np.abs(outputs["prediction"] - values).max())
        result["max_abs_diff"] = diff
        result["max_abs_diff_over_target_std"] = diff / float(loaded.target_scale_[0])
        predict = loaded.predict
    rows = X.iloc[:1000]
    ready = feed(rows, session)
    result["ms_per_1000_rows"] = {
        "bundle_predict": round(median_ms(lambda: predict(rows), repeats), 2),
        "onnxruntime_run": round(median_ms(lambda: session.run(None, ready), repeats), 2),
        "onnxruntime_with_conversion": round(median_ms(lambda: session.run(None, feed(rows, session)), repeats), 2),
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-rows", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    frame = table()
    X, y = frame.drop(columns="target"), frame["target"]
    train = frame.sample(n=args.train_rows, random_state=0)
    settings = {"max_epochs": args.epochs, "random_state": 0}
    classifier = archtune.NeuralClassifier(**settings).fit(train.drop(columns="target"), train["target"])
    regressor = archtune.NeuralRegressor(**settings).fit(train.drop(columns=["target", "hours-per-week"]),
                                                         train["hours-per-week"])
    with tempfile.TemporaryDirectory() as tmp:
        report = {"classifier": measure(classifier, X, Path(tmp), "classifier", args.repeats),
                  "regressor": measure(regressor, X.drop(columns="hours-per-week"), Path(tmp), "regressor",
                                       args.repeats)}
    report["torch"], report["onnxruntime"] = torch.__version__, __import__("onnxruntime").__version__
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
