"""Transfer learning: a CNN trained on five classes, fine-tuned on the other five with 100
labelled images per class, against the same CNN trained from scratch on those 500 images.

For each dataset (Fashion-MNIST from its Debian package, CIFAR-10 from the shared JPEGs):

    source     ``NeuralClassifier(arch="cnn")`` trained on every training image of classes 0-4
    scratch    the same CNN, from random weights, on 100 images per class of classes 5-9
    transfer   ``NeuralClassifier(arch="cnn", init_from=source, ...)`` on the same 500 images,
               in three ways: "two-phase" (``freeze="body"``: the new output layer trains alone
               for ``freeze_epochs``, then everything at ``fine_tune_lr_factor`` = 0.1 x the
               rate), "conv frozen" (``freeze=2``: the two conv blocks stay fixed, the dense
               layers train at the full rate) and "all layers" (nothing frozen, every layer at
               the full rate: ``fine_tune_lr_factor=1``)

Accuracy is on every test image of classes 5-9 (5000). Each seed draws its own 500 images
(the source is trained once per dataset). Target: transfer beats scratch by at least 5
accuracy points on both datasets (issue 16).

Reproduce from the repository root (one thread, so a busy machine changes times, not results)::

    .venv/bin/python bench/transfer.py                      # both datasets, 3 seeds
    .venv/bin/python bench/transfer.py --datasets fashion_mnist --seeds 0 1 --source-epochs 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from archtune import NeuralClassifier  # noqa: E402
from archtune.data.images import load_fashion_mnist, read_image_folder  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
CIFAR_CACHE = Path("/tmp/archtune-bench-cifar10")
VARIANTS = {"two-phase": {"freeze": "body"}, "conv frozen": {"freeze": 2, "fine_tune_lr_factor": 1.0, "freeze_epochs": None},
            "all layers": {"fine_tune_lr_factor": 1.0}}


def cifar10(split: str) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 images [N, 3, 32, 32] and class indices (alphabetical folder order, which is
    CIFAR-10's own order), from the shared tarball, extracted once into /tmp."""
    if not (CIFAR_CACHE / split).is_dir():
        CIFAR_CACHE.mkdir(parents=True, exist_ok=True)
        with tarfile.open(SHARED / "images" / "cifar10_jpeg.tar.gz") as tar:
            tar.extractall(CIFAR_CACHE, filter="data")
    X, names = read_image_folder(CIFAR_CACHE / split)
    classes = sorted(set(names))
    return X, np.array([classes.index(n) for n in names])


def load(dataset: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if dataset == "fashion_mnist":
        X, y = load_fashion_mnist("train")
        X_test, y_test = load_fashion_mnist("test")
    else:
        X, y = cifar10("train")
        X_test, y_test = cifar10("test")
    return X, y, X_test, y_test


def few_labels(X: np.ndarray, y: np.ndarray, per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``per_class`` random images of each class in y."""
    rng = np.random.default_rng(seed)
    idx = np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in np.unique(y)])
    rng.shuffle(idx)
    return X[idx], y[idx]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["fashion_mnist", "cifar10"],
                        choices=["fashion_mnist", "cifar10"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--source-epochs", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=40, help="Epochs on the 500 images (early stopping).")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, help="Write the figures here.")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results: dict[str, dict] = {}
    for dataset in args.datasets:
        X, y, X_test, y_test = load(dataset)
        first, second = y < 5, y >= 5
        test = y_test >= 5
        started = time.perf_counter()
        source = NeuralClassifier(arch="cnn", max_epochs=args.source_epochs, random_state=0).fit(X[first], y[first])
        source_seconds = time.perf_counter() - started
        source_accuracy = float(source.score(X_test[y_test < 5], y_test[y_test < 5]))
        print(f"{dataset}: source CNN on {int(first.sum())} images of classes 0-4: test accuracy "
              f"{source_accuracy:.4f} ({source_seconds:.0f} s)", flush=True)
        rows = []
        for seed in args.seeds:
            X_few, y_few = few_labels(X[second], y[second], args.per_class, seed)
            scratch = NeuralClassifier(arch="cnn", max_epochs=args.epochs, random_state=seed).fit(X_few, y_few)
            row = {"seed": seed, "scratch": float(scratch.score(X_test[test], y_test[test]))}
            for name, settings in VARIANTS.items():
                transfer = NeuralClassifier(arch="cnn", max_epochs=args.epochs, random_state=seed, init_from=source,
                                            **settings).fit(X_few, y_few)
                row[name] = float(transfer.score(X_test[test], y_test[test]))
            rows.append(row)
            print(f"  seed {seed}: " + ", ".join(f"{k} {v:.4f}" for k, v in row.items() if k != "seed"), flush=True)
        results[dataset] = {"source_accuracy": source_accuracy, "source_seconds": source_seconds, "seeds": rows}
    print()
    print("| dataset | scratch | " + " | ".join(VARIANTS) + " | best gain, points (mean / min over seeds) | target >= 5 |")
    print("|---|---|" + "---|" * len(VARIANTS) + "---|---|")
    for dataset, r in results.items():
        means = {k: statistics.mean(s[k] for s in r["seeds"]) for k in ("scratch", *VARIANTS)}
        best = max(VARIANTS, key=lambda k: means[k])
        gains = [100 * (s[best] - s["scratch"]) for s in r["seeds"]]
        verdict = "met" if min(gains) >= 5 else "MISSED"
        r.update(best=best, gain_points_mean=statistics.mean(gains), gain_points_min=min(gains))
        print(f"| {dataset} | " + " | ".join(f"{means[k]:.4f}" for k in ("scratch", *VARIANTS))
              + f" | {best}: {statistics.mean(gains):.1f} / {min(gains):.1f} | {verdict} |")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "args": vars(args)}, indent=2, default=str))


if __name__ == "__main__":
    main()
