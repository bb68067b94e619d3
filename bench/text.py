"""Text: archtune on SST-2 sentiment, against TF-IDF + logistic regression and a hand-written
PyTorch model of the same size.

    (a) archtune      ``NeuralClassifier()`` on the ``sentence`` column alone: the column is
                      recognised as text and read by the default sequence encoder (embedding
                      64, convolution of 128 filters over 5 tokens, global max pooling), then
                      2 x 256 dense; early stopping on a 10% split
    (b) archtune LSTM the same with ``sequence="lstm", bidirectional=True``
    (c) TF-IDF + LR   scikit-learn: word 1-2-grams, logistic regression (C=1)
    (d) hand loop     (a)'s layers written as PyTorch modules, AdamW at 1e-3, the same batch
                      size and rows per epoch; timed only

Accuracy is on sst2_test.tsv.gz (872 sentences, the GLUE validation set papers report on);
training uses sst2_train.tsv.gz (60614 phrases). Target: archtune >= 0.80. Speed: archtune's
in-loop epoch time against the hand loop's, CPU seconds, target <= 1.10.

Reproduce from the repository root::

    .venv/bin/python bench/text.py                 # full data, up to 10 epochs (~15 min, 1 thread)
    .venv/bin/python bench/text.py --quick         # 10000 phrases, 3 epochs
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archtune import NeuralClassifier  # noqa: E402

TEXT = ROOT.parent / "shared" / "datasets" / "text"


class HandModel(nn.Module):
    def __init__(self, vocabulary: int, embedding: int = 64, filters: int = 128, hidden: int = 256):
        super().__init__()
        self.embedding = nn.Embedding(vocabulary, embedding, padding_idx=0)
        self.dropout1d = nn.Dropout1d(0.1)
        self.conv = nn.Conv1d(embedding, filters, 5, padding=2)
        self.mlp = nn.Sequential(nn.Linear(filters, hidden), nn.ReLU(), nn.Dropout(0.1), nn.Linear(hidden, hidden),
                                 nn.ReLU(), nn.Dropout(0.1), nn.Linear(hidden, 1))

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(self.dropout1d(self.embedding(codes).transpose(1, 2))))
        h = h.masked_fill(~(codes > 0).unsqueeze(1), float("-inf")).max(dim=2).values
        return self.mlp(torch.where(torch.isfinite(h), h, torch.zeros_like(h)))


def hand_epochs(codes: np.ndarray, labels: np.ndarray, vocabulary: int, batch_size: int, epochs: int) -> list[float]:
    X, y = torch.from_numpy(np.array(codes)).long(), torch.from_numpy(np.array(labels)).float().unsqueeze(1)
    model = HandModel(vocabulary)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    loss_fn = nn.BCEWithLogitsLoss()
    generator = torch.Generator().manual_seed(0)
    seconds = []
    for _ in range(epochs):
        started = time.process_time()
        model.train()
        perm = torch.randperm(len(X), generator=generator)
        for start in range(0, len(X), batch_size):
            idx = perm[start:start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(X[idx]), y[idx]).backward()
            optimizer.step()
        seconds.append(time.process_time() - started)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--n-train", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--skip-lstm", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.quick:
        args.n_train, args.epochs = 10000, 3
    torch.set_num_threads(args.threads)
    train = pd.read_csv(TEXT / "sst2_train.tsv.gz", sep="\t")
    if args.n_train:
        train = train.sample(args.n_train, random_state=0)
    test = pd.read_csv(TEXT / "sst2_test.tsv.gz", sep="\t")
    print(f"SST-2: {len(train)} training phrases, {len(test)} test sentences; {args.threads} thread(s)", flush=True)
    results: dict[str, dict] = {}

    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    started = time.perf_counter()
    tfidf = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=2), LogisticRegression(C=1.0, max_iter=2000))
    tfidf.fit(train["sentence"], train["label"])
    results["TF-IDF + LR"] = {"test_accuracy": float(tfidf.score(test["sentence"], test["label"])),
                              "wall_seconds": time.perf_counter() - started}
    print(f"TF-IDF + LR: {results['TF-IDF + LR']['test_accuracy']:.4f}", flush=True)

    variants = [("archtune (conv)", {})] + ([] if args.skip_lstm else
                                           [("archtune (bi-LSTM)", {"sequence": "lstm", "bidirectional": True})])
    for name, params in variants:
        started = time.perf_counter()
        model = NeuralClassifier(max_epochs=args.epochs, random_state=0, **params)
        model.fit(train[["sentence"]], train["label"])
        accuracy = float(model.score(test[["sentence"]], test["label"]))
        results[name] = {"test_accuracy": accuracy, "epochs": len(model.history_), "best_epoch": int(model.best_epoch_),
                         "epoch_seconds": float(statistics.median(model.history_["seconds"])),
                         "wall_seconds": time.perf_counter() - started}
        print(f"{name}: {accuracy:.4f} after {len(model.history_)} epochs (best {model.best_epoch_}), "
              f"{results[name]['epoch_seconds']:.2f} s/epoch", flush=True)
        if name == "archtune (conv)":
            pre = model.preprocessor_
            n_train = int(round(len(train) * 0.9))
            codes = pre.transform(train[["sentence"]].iloc[:n_train], "X").astype(np.int64)
            vocabulary = pre.text_columns[0][0]
            batch_size = model.train_config(n_train, 0).batch_size

    hand = float(statistics.median(hand_epochs(codes, train["label"].to_numpy()[:n_train], vocabulary, batch_size, 2)))
    results["hand loop"] = {"epoch_seconds": hand, "batch_size": batch_size}
    ratio = results["archtune (conv)"]["epoch_seconds"] / hand
    print()
    print("| model | SST-2 test accuracy | s/epoch |")
    print("|---|---|---|")
    for name, r in results.items():
        accuracy = f"{r['test_accuracy']:.4f}" if "test_accuracy" in r else "-"
        print(f"| {name} | {accuracy} | {r.get('epoch_seconds', float('nan')):.2f} |")
    best = results["archtune (conv)"]["test_accuracy"]
    print(f"\narchtune accuracy target >= 0.80: {'pass' if best >= 0.80 else 'MISSED'} ({best:.4f})")
    print(f"epoch time ratio archtune / hand loop: {ratio:.2f}x (target <= 1.10: {'pass' if ratio <= 1.10 else 'MISSED'})")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "ratio": ratio, "args": vars(args)}, indent=2, default=str))


if __name__ == "__main__":
    main()
