"""scipy sparse input: a matrix of numeric columns (a TF-IDF or one-hot output, say).

Every scipy.sparse format is read as CSR (rows are what batches take), and the matrix is never
densified as a whole: the preprocessor scales it value by value (`Preprocessor.fit_sparse`)
and batches are densified as they are drawn (archtune.train.batches.SparseRows).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from archtune.errors import DataError


def is_sparse(X: Any) -> bool:
    """Whether X is a scipy sparse matrix or array (of any format)."""
    import scipy.sparse

    return bool(scipy.sparse.issparse(X))


def read_sparse(X: Any, what: str = "X") -> Any:
    """X as a CSR float64 matrix with sorted, summed entries.

    Raises
    ------
    DataError
        X is not 2-D, holds complex or non-numeric values, or a NaN or infinite value (the
        row and column are named: a missing entry of a sparse matrix is a zero, so an
        explicit NaN is a mistake to fix, not a missing value to impute).
    """
    import scipy.sparse

    if X.ndim != 2:
        raise DataError(f"{what} must be 2-dimensional (rows x columns); got a sparse array of shape {X.shape}")
    if X.dtype.kind == "c":
        raise DataError(f"{what} holds complex numbers: Complex data not supported; pass real parts and "
                        "imaginary parts as separate columns")
    if X.dtype.kind not in "biuf":
        raise DataError(f"{what} is a sparse matrix of dtype {X.dtype}; sparse input must be numeric")
    matrix = scipy.sparse.csr_matrix(X, dtype=np.float64)  # any format (COO, CSC, LIL, DOK, ...) to CSR
    matrix.sum_duplicates()  # also sorts each row's indices
    bad = ~np.isfinite(matrix.data)
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        row = int(np.searchsorted(matrix.indptr, pos, side="right")) - 1
        raise DataError(f"{what}: sparse matrix row {row + 1}, column {int(matrix.indices[pos])} is "
                        f"{matrix.data[pos]}: sparse input must be finite (a sparse matrix has no missing "
                        "values: its absent entries are zeros); fill or remove it")
    return matrix


__all__ = ["is_sparse", "read_sparse"]
