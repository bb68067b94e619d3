"""Peak memory of fitting a network on a 20000 x 20000 TF-IDF matrix kept sparse.

    .venv/bin/python bench/sparse_memory.py            # from the project root; about a minute

The matrix is TF-IDF of unigrams and bigrams (``max_features=20000``) of the first 20000
phrases of SST-2 (../shared/datasets/text/sst2_train.tsv.gz). It is saved, then a fresh
process loads it and fits a default ``NeuralClassifier`` (``max_epochs=1``); the figure is
that process's peak resident memory (``resource.getrusage(...).ru_maxrss``) during the fit
minus its peak before the fit (after a tiny warm-up fit, so that imports are not counted), beside the size of the matrix as CSR and as a dense float32
array. The fit never densifies more than one batch (256 rows) or one evaluation batch (at most
64 MB) at a time: see archtune/train/batches.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SST2 = ROOT.parent / "shared" / "datasets" / "text" / "sst2_train.tsv.gz"
SIZE = 20000


def build(path: Path) -> None:
    """Save the TF-IDF matrix and its labels to ``path`` (.npz)."""
    import numpy as np
    import pandas as pd
    import scipy.sparse
    from sklearn.feature_extraction.text import TfidfVectorizer

    frame = pd.read_csv(SST2, sep="\t").iloc[:SIZE]
    X = TfidfVectorizer(ngram_range=(1, 2), max_features=SIZE).fit_transform(frame["sentence"]).astype(np.float32)
    assert X.shape == (SIZE, SIZE), X.shape
    scipy.sparse.save_npz(path, X.tocsr())
    np.save(path.with_suffix(".labels.npy"), frame["label"].to_numpy())


def child(path: str) -> None:
    """Load the matrix, fit for one epoch, print the memory figures as JSON."""
    import resource
    import time

    import numpy as np
    import scipy.sparse
    import torch

    from archtune import NeuralClassifier

    torch.set_num_threads(1)
    X = scipy.sparse.load_npz(path).tocsr()
    y = np.load(Path(path).with_suffix(".labels.npy"))
    # A tiny fit first, so that the modules a fit imports are not counted as the matrix's cost.
    NeuralClassifier(max_epochs=1, random_state=0).fit(X[:200, :50], y[:200])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    started = time.perf_counter()
    model = NeuralClassifier(max_epochs=1, random_state=0).fit(X, y)
    import archtune

    assert Path(archtune.__file__).resolve().parents[1] == ROOT, archtune.__file__
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    n_params = sum(p.numel() for p in model.module_.parameters())
    print(json.dumps({"shape": list(X.shape), "nnz": int(X.nnz),
                      "csr_mb": round((X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) / 2**20, 1),
                      "dense_float32_mb": round(X.shape[0] * X.shape[1] * 4 / 2**20, 1),
                      "network_parameters": n_params,
                      "peak_before_fit_mb": round(before / 1024, 1), "peak_after_fit_mb": round(after / 1024, 1),
                      "fit_peak_delta_mb": round((after - before) / 1024, 1), "fit_seconds": round(seconds, 1),
                      "val_accuracy": round(float(model.history_["val_accuracy"].iloc[-1]), 3)}))


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tfidf.npz"
        build(path)
        # The project's root first on the path: this checkout's archtune, not an installed one.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        out = subprocess.run([sys.executable, __file__, "--child", str(path)], check=True, capture_output=True,
                             text=True, cwd=ROOT, env=env)
        print(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        main()
