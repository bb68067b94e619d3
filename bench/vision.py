"""Vision: archtune's default CNN on Fashion-MNIST, against an MLP and a hand-written PyTorch
model of the same size.

    (a) archtune CNN   ``NeuralClassifier(arch="cnn")`` with its defaults (2 conv blocks of 32
                       and 64 filters, batch norm, max pooling, spatial dropout, flatten, 2 x 256
                       dense, augmentation by shift and flip), early stopping on a 10% split
    (b) archtune MLP   ``NeuralClassifier()`` (2 x 256), the baseline
    (c) hand loop      the same layers as (a) written as an ``nn.Sequential``, the same
                       augmentation, AdamW at 1e-3, the same batch size and rows per epoch: a
                       randperm per epoch and index slicing of in-memory tensors

Accuracy is on the 10000 test images. The speed figure is CPU seconds per epoch (one thread
by default, as in bench/fit_overhead.py), archtune's in-loop epoch time (``history_.seconds``)
against the hand loop's, median over epochs; target <= 1.10. Accuracy target: >= 0.89 on the
full data. Reference figures (../shared/datasets/README.md, from Fashion-MNIST's README):
MLP 256-128-100 0.883, two conv layers with pooling about 0.91, ResNet-18 0.949.

Needs Fashion-MNIST (``apt-get install dataset-fashion-mnist``). Reproduce from the root::

    .venv/bin/python bench/vision.py                   # full data, up to 15 epochs (~25 min, 1 thread)
    .venv/bin/python bench/vision.py --quick           # 6000 images, 3 epochs (smoke run)
    .venv/bin/python bench/vision.py --threads 2 --epochs 20
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from archtune import NeuralClassifier  # noqa: E402
from archtune.data.images import load_fashion_mnist  # noqa: E402
from archtune.models.cnn import Augment  # noqa: E402


def hand_model(dropout: float = 0.1) -> nn.Module:
    """The layers archtune's default CNN has, written out."""
    return nn.Sequential(
        Augment(("shift", "flip")),
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout2d(dropout),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout2d(dropout),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 256), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(256, 256), nn.ReLU(), nn.Dropout(dropout), nn.Linear(256, 10))


def hand_epochs(X: np.ndarray, y: np.ndarray, batch_size: int, epochs: int) -> list[float]:
    """CPU seconds of each epoch of the hand loop on standardised images."""
    images = torch.from_numpy(X.astype(np.float32) / 255.0)
    images = (images - images.mean(dim=0)) / images.std(dim=0).clamp_min(1e-6)
    labels = torch.from_numpy(y)
    model = hand_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(0)
    seconds = []
    for _ in range(epochs):
        started = time.process_time()
        model.train()
        perm = torch.randperm(len(images), generator=generator)
        for start in range(0, len(images), batch_size):
            idx = perm[start:start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(images[idx]), labels[idx]).backward()
            optimizer.step()
        seconds.append(time.process_time() - started)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--n-train", type=int, default=None, help="Training images (default: all 60000).")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="6000 training images, 3 epochs.")
    parser.add_argument("--json", type=Path, help="Write the figures here.")
    args = parser.parse_args()
    if args.quick:
        args.n_train, args.epochs = 6000, 3
    torch.set_num_threads(args.threads)
    X, y = load_fashion_mnist("train", n=args.n_train)
    X_test, y_test = load_fashion_mnist("test")
    print(f"Fashion-MNIST: {len(X)} training images, {len(X_test)} test images; {args.threads} thread(s), "
          f"up to {args.epochs} epochs", flush=True)

    results = {}
    for name, params in (("archtune CNN", {"arch": "cnn"}), ("archtune MLP", {})):
        started, cpu = time.perf_counter(), time.process_time()
        model = NeuralClassifier(max_epochs=args.epochs, random_state=0, **params).fit(X, y)
        accuracy = float(model.score(X_test, y_test))
        history = model.history_
        results[name] = {"test_accuracy": accuracy, "epochs": len(history), "best_epoch": int(model.best_epoch_),
                         "wall_seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu,
                         "epoch_seconds": float(statistics.median(history["seconds"]))}
        print(f"{name}: test accuracy {accuracy:.4f} after {len(history)} epochs (best {model.best_epoch_}); "
              f"{results[name]['epoch_seconds']:.2f} s/epoch", flush=True)
        if name == "archtune CNN":
            batch_size = model.train_config(int(len(X) * 0.9), 0).batch_size
            n_train = int(round(len(X) * 0.9))

    hand = hand_epochs(X[:n_train], y[:n_train], batch_size, epochs=3)
    hand_seconds = float(statistics.median(hand))
    cnn_seconds = results["archtune CNN"]["epoch_seconds"]
    results["hand loop"] = {"epoch_seconds": hand_seconds, "batch_size": batch_size}
    ratio = cnn_seconds / hand_seconds
    print(f"hand-written PyTorch loop, same layers and augmentation: {hand_seconds:.2f} s/epoch (batch {batch_size})")
    print()
    print("| model | test accuracy | s/epoch |")
    print("|---|---|---|")
    for name in ("archtune CNN", "archtune MLP"):
        r = results[name]
        print(f"| {name} | {r['test_accuracy']:.4f} | {r['epoch_seconds']:.2f} |")
    print(f"| hand loop (same CNN) | - | {hand_seconds:.2f} |")
    print()
    accuracy = results["archtune CNN"]["test_accuracy"]
    print(f"CNN accuracy target >= 0.89: {'pass' if accuracy >= 0.89 else 'MISSED'} ({accuracy:.4f}); "
          f"reference: MLP 0.883, two conv layers ~0.91, ResNet-18 0.949")
    print(f"epoch time ratio archtune / hand loop: {ratio:.2f}x (target <= 1.10: {'pass' if ratio <= 1.10 else 'MISSED'})")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "ratio": ratio, "args": vars(args)}, indent=2,
                                        default=str))


if __name__ == "__main__":
    main()
