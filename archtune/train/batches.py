"""Where mini-batches come from: a dense tensor, or rows of a scipy sparse matrix.

The training loop, evaluation and prediction cut batches by indexing their input with an
index tensor or a slice (``X[idx]``, ``X[i:i + b]``). A dense tensor does that itself;
`SparseRows` does the same for a CSR matrix and densifies only the rows asked for, as skorch
does, so a 20000 x 20000 TF-IDF matrix is never dense as a whole (bench/sparse_memory.py).
"""

from __future__ import annotations

from typing import Any, Union

import numpy as np
import torch

# A dense batch of sparse rows is kept under this many bytes: evaluation's 8192-row batches of
# 20000 columns would be 655 MB of float32.
DENSE_BATCH_BYTES = 64 * 2**20


class SparseRows:
    """Rows of a CSR matrix that become dense float32 tensors when indexed.

    Parameters
    ----------
    matrix : scipy.sparse.csr_matrix
        The prepared (scaled) rows, float32.
    device : torch.device or str
        Where the dense batches are put.
    """

    def __init__(self, matrix: Any, device: torch.device | str = "cpu"):
        self.matrix = matrix
        self.device = torch.device(device)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.matrix.shape)  # type: ignore[return-value]

    def __len__(self) -> int:
        return int(self.matrix.shape[0])

    def to(self, device: torch.device | str) -> "SparseRows":
        """The same rows, with batches put on ``device`` (the matrix itself stays on the host)."""
        return self if torch.device(device) == self.device else SparseRows(self.matrix, device)

    def __getitem__(self, index: Any) -> torch.Tensor:
        """The rows ``index`` (an index tensor, array, list or slice) as a dense [n, columns] tensor."""
        if isinstance(index, torch.Tensor):
            index = index.cpu().numpy()
        rows = self.matrix[index] if isinstance(index, slice) else self.matrix[np.asarray(index, dtype=np.int64)]
        return torch.from_numpy(rows.toarray().astype(np.float32, copy=False)).to(self.device)

    @property
    def batch_rows(self) -> int:
        """The most rows a dense batch may hold under `DENSE_BATCH_BYTES`."""
        return max(1, DENSE_BATCH_BYTES // (4 * max(1, self.shape[1])))


Rows = Union[torch.Tensor, SparseRows]


def rows_per_batch(X: Rows, batch_size: int) -> int:
    """``batch_size``, lowered for sparse rows so that a dense batch stays bounded."""
    return min(batch_size, X.batch_rows) if isinstance(X, SparseRows) else batch_size


def rows_differ(X: Rows) -> bool:
    """Whether any row differs from the first (batch by batch for sparse rows)."""
    if not isinstance(X, SparseRows):
        return bool(len(X) > 1 and (X != X[:1]).any())
    first, size = X[:1], X.batch_rows
    return any(bool((X[i:i + size] != first).any()) for i in range(1, len(X), size))


def dense_rows(X: Rows, limit: int = 2048) -> torch.Tensor:
    """X as a dense tensor, for the doctor's probes that read whole inputs: a dense tensor as
    it is, sparse rows as their first ``limit`` rows (a sample, densified)."""
    return X[:limit] if isinstance(X, SparseRows) else X


__all__ = ["DENSE_BATCH_BYTES", "Rows", "SparseRows", "dense_rows", "rows_differ", "rows_per_batch"]
