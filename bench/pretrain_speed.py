"""Pretraining speed: seconds per epoch of archtune's masked-feature pretraining
(`archtune.pretrain`) against a hand-written PyTorch loop doing the same pretext task.

Both train the same network (the one archtune builds for the estimator below, copied with its
initial weights), on the same preprocessed rows of ``adult.tsv.gz`` (categorical columns as
categories), with the same batch size, the same corruption (each feature replaced with
probability 0.3 by the same feature of another row of the batch), the same loss (squared
error per numeric column, cross-entropy per categorical column, 2 x the mask's binary
cross-entropy) and the same optimiser (Adam, lr 1e-3, fused kernel, constant rate, no weight
decay, no validation pass). The hand loop is randperm, index slicing, the corruption written
out, forward, loss, backward, step.

    .venv/bin/python bench/pretrain_speed.py                # ~1 minute on 2 cores
    .venv/bin/python bench/pretrain_speed.py --epochs 3 --repeats 1 --rows 4000   # smoke run

One thread each (torch.set_num_threads(1)) and CPU time (time.process_time), so that the two
compare on a busy machine; the figure is the median epoch over all repeats, the first epoch of
each run left out (it pays for the first allocations).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

import archtune
from archtune import NeuralClassifier
from archtune.models import build_model
from archtune.pretraining.tasks import FeatureLayout
from archtune.train.callbacks import Callback

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "tabular" / "adult.tsv.gz"
CATEGORICAL = ["workclass", "education", "marital-status", "occupation", "relationship", "race", "sex",
               "native-country"]
RATE, MASK_WEIGHT = 0.3, 2.0


class EpochClock(Callback):
    """CPU seconds of each epoch."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def on_train_begin(self, trainer) -> None:
        self.last = time.process_time()

    def on_epoch_end(self, trainer, logs) -> None:
        now = time.process_time()
        self.seconds.append(now - self.last)
        self.last = now


def hand_loop(network: torch.nn.Module, X: torch.Tensor, layout: FeatureLayout, batch_size: int, epochs: int,
              seed: int) -> list[float]:
    """The pretext task written out in plain PyTorch; CPU seconds per epoch."""
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3, fused=True)
    columns = torch.tensor([c for group in layout.groups for c in group])
    column_group = torch.tensor([g for g, group in enumerate(layout.groups) for _ in group])
    numeric = torch.tensor(layout.numeric)
    n_groups, n_numeric = len(layout.groups), len(layout.numeric)
    n_features = n_numeric + len(layout.categorical)
    generator = torch.Generator().manual_seed(seed)
    network.train()
    seconds = []
    for _ in range(epochs):
        start = time.process_time()
        order = torch.randperm(len(X))
        for i in range(0, len(X), batch_size):
            clean = X[order[i:i + batch_size]]
            n = len(clean)
            mask = torch.rand(n, n_groups, generator=generator) < RATE
            partner = (torch.arange(n).unsqueeze(1) + torch.randint(1, n, (n, n_groups), generator=generator)) % n
            cells = clean[:, columns]
            corrupted = clean.clone()
            corrupted[:, columns] = torch.where(mask[:, column_group], cells.gather(0, partner[:, column_group]), cells)
            out = network(corrupted)
            loss = F.mse_loss(out[:, :n_numeric], clean[:, numeric], reduction="none").mean(0).sum()
            at = n_numeric
            for column, width, n_classes in layout.categorical:
                block = clean[:, column:column + width]
                labels = (block[:, 0] if width == 1
                          else (block * torch.arange(1, width + 1, dtype=block.dtype)).sum(1)).long()
                loss = loss + F.cross_entropy(out[:, at:at + n_classes], labels)
                at += n_classes
            loss = loss / n_features + MASK_WEIGHT * F.binary_cross_entropy_with_logits(out[:, at:], mask.float())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        seconds.append(time.process_time() - start)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(1)
    X = pd.read_csv(DATA, sep="\t", nrows=args.rows).drop(columns="target")
    estimator = NeuralClassifier(categorical_features=CATEGORICAL, batch_size=args.batch_size,
                                 lr_schedule="constant", warmup_epochs=0, early_stopping=False, weight_decay=0.0,
                                 learning_rate=1e-3, optimizer="adam", random_state=0)
    ours, theirs = [], []
    for repeat in range(args.repeats):
        clock = EpochClock()
        pretrained = archtune.pretrain(X, estimator=estimator, pretrain_epochs=args.epochs, callbacks=[clock])
        ours += clock.seconds[1:]
        # The same architecture with the same initial weights as archtune's run started from.
        network = build_model(pretrained.model_config_, pretrained.input_spec_, pretrained.pretext_["n_outputs"],
                              "regression", torch.Generator().manual_seed(0))
        rows = torch.from_numpy(pretrained.preprocessor_.transform(X))
        layout = FeatureLayout.from_preprocessor(pretrained.preprocessor_)
        theirs += hand_loop(copy.deepcopy(network), rows, layout, args.batch_size, args.epochs, repeat)[1:]
    a, h = statistics.median(ours), statistics.median(theirs)
    print(f"adult, {args.rows} rows x {X.shape[1]} columns, batch {args.batch_size}, {args.epochs} epochs x "
          f"{args.repeats} repeats, 1 thread, CPU s/epoch (median, first epoch of each run left out)")
    print(f"network: {sum(p.numel() for p in network.parameters())} parameters, head "
          f"{pretrained.pretext_['n_outputs']} outputs")
    print(f"{'hand-written loop':<28}{h:8.3f} s/epoch  1.00x")
    print(f"{'archtune.pretrain':<28}{a:8.3f} s/epoch  {a / h:.2f}x   (target: within 1.20x)")


if __name__ == "__main__":
    main()
