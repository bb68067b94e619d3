"""Multi-label classification: Hamming loss and per-label ROC AUC on held-out rows (issue 32).

No shared table is multi-label (the ``birds`` audio features are not in ../shared), so the
tables are scikit-learn's ``make_multilabel_classification`` (a bag-of-words model: each row
draws its labels, then word counts from their mixture), seeded, in two shapes:

    small   4000 rows, 20 features, 6 labels (about 2 labels a row)
    birds   4000 rows, 260 features, 19 labels (the birds table's width and label count;
            about 2 labels a row)

Each table is split 80/20 (seeded). Two models:

    archtune   ``NeuralClassifier()`` (its default recipe) on the 0/1 indicator matrix: one
               sigmoid and binary cross-entropy per label (archtune.data.multilabel).
    LightGBM   ``MultiOutputClassifier(LGBMClassifier())`` (scikit-learn's per-label wrapper,
               LightGBM's defaults, ``verbose=-1``).

Printed per table and seed: Hamming loss (share of wrong labels; lower is better), subset
accuracy (rows with every label right), F1 averaged over rows ("samples") and the macro mean
of the per-label ROC AUCs (labels with both values in the test rows), and fit seconds.

Reproduce (from the repository root; ~3 minutes on 2 cores)::

    .venv/bin/python bench/multilabel.py                    # both tables, seed 0
    .venv/bin/python bench/multilabel.py --tables small --seeds 3 --max-epochs 8   # quick
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.datasets import make_multilabel_classification
from sklearn.metrics import accuracy_score, f1_score, hamming_loss, roc_auc_score

TABLES = {"small": dict(n_samples=4000, n_features=20, n_classes=6, n_labels=2),
          "birds": dict(n_samples=4000, n_features=260, n_classes=19, n_labels=2)}


def table(name: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    X, Y = make_multilabel_classification(**TABLES[name], random_state=seed)
    order = np.random.default_rng(seed).permutation(len(X))
    cut = int(0.8 * len(X))
    return X[order[:cut]], Y[order[:cut]], X[order[cut:]], Y[order[cut:]]


def scores(Y: np.ndarray, proba: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    both = [j for j in range(Y.shape[1]) if 0 < Y[:, j].sum() < len(Y)]
    return {"hamming": hamming_loss(Y, pred), "subset_acc": accuracy_score(Y, pred),
            "f1_samples": f1_score(Y, pred, average="samples", zero_division=0.0),
            "auc_macro": float(np.mean([roc_auc_score(Y[:, j], proba[:, j]) for j in both]))}


def run_archtune(X, Y, X_test, seed: int, max_epochs: int | None):
    from archtune import NeuralClassifier

    params = {"random_state": seed} | ({"max_epochs": max_epochs} if max_epochs else {})
    model = NeuralClassifier(**params).fit(X, Y)
    return model.predict_proba(X_test), model.predict(X_test)


def run_lightgbm(X, Y, X_test, seed: int, max_epochs: int | None):
    from lightgbm import LGBMClassifier
    from sklearn.multioutput import MultiOutputClassifier

    model = MultiOutputClassifier(LGBMClassifier(random_state=seed, verbose=-1)).fit(X, Y)
    proba = np.column_stack([p[:, 1] for p in model.predict_proba(X_test)])  # a list: one (n, 2) per label
    return proba, model.predict(X_test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tables", nargs="+", default=list(TABLES), choices=list(TABLES))
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--max-epochs", type=int, default=None, help="archtune's max_epochs (default: its own)")
    args = parser.parse_args()
    print(f"{'table':6} {'seed':>4} {'model':9} {'hamming':>8} {'subset_acc':>10} {'f1_samples':>10} "
          f"{'auc_macro':>9} {'seconds':>8}")
    for name in args.tables:
        for seed in range(args.seeds):
            X, Y, X_test, Y_test = table(name, seed)
            for label, run in (("archtune", run_archtune), ("LightGBM", run_lightgbm)):
                started = time.perf_counter()
                proba, pred = run(X, Y, X_test, seed, args.max_epochs)
                seconds = time.perf_counter() - started
                s = scores(Y_test, proba, pred)
                print(f"{name:6} {seed:>4} {label:9} {s['hamming']:8.4f} {s['subset_acc']:10.4f} "
                      f"{s['f1_samples']:10.4f} {s['auc_macro']:9.4f} {seconds:8.1f}", flush=True)


if __name__ == "__main__":
    main()
