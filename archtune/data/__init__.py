"""Data: readers, built-in datasets, images, schema inference and preprocessing, targets.

The public names (imported lazily, PEP 562, so that reading a file never pays for PyTorch):

    from archtune.data import load_table, load_dataset, list_datasets
    from archtune.data import read_image_folder, load_fashion_mnist, read_idx

The submodules (readers, images, preprocess, ...) are archtune's own: their names may change.
"""

from __future__ import annotations

from archtune.lazy_exports import lazy_exports

_EXPORTS = {
    "load_table": "archtune.data.readers",
    "load_dataset": "archtune.data.datasets",
    "list_datasets": "archtune.data.datasets",
    "read_image_folder": "archtune.data.images",
    "load_fashion_mnist": "archtune.data.images",
    "read_idx": "archtune.data.images",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
