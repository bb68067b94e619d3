"""Images: IDX files (MNIST, Fashion-MNIST), folders with one sub-folder per class, and
arrays N x C x H x W.

The estimators take images as arrays. Internally an image batch travels flattened (one row
of C*H*W pixel columns), so that preprocessing, the trainer, bundles and prediction are the
tables' own; the convolutional network reshapes the row back (models/cnn.py).

    from archtune.data.images import load_fashion_mnist
    X, y = load_fashion_mnist("train")          # uint8 [60000, 1, 28, 28], labels [60000]
    NeuralClassifier(arch="cnn").fit(X, y)
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Any

import numpy as np

from archtune.errors import DataError

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")  # the Debian package dataset-fashion-mnist
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def is_image_array(X: Any) -> bool:
    """An array of images: 3-D (N x H x W, one channel) or 4-D (N x C x H x W)."""
    return isinstance(X, np.ndarray) and X.ndim in (3, 4)


def image_shape(X: np.ndarray) -> tuple[int, int, int]:
    return (1, *X.shape[1:]) if X.ndim == 3 else tuple(X.shape[1:])  # type: ignore[return-value]


def flatten_images(X: np.ndarray, what: str = "X") -> tuple[np.ndarray, tuple[int, int, int]]:
    """(rows of C*H*W float32 pixels, (C, H, W)); uint8 pixels are scaled to [0, 1]."""
    if X.dtype.kind not in "uif" and X.dtype != bool:
        raise DataError(f"{what}: images must be numeric arrays; got dtype {X.dtype}")
    shape = image_shape(X)
    if min(shape) < 1 or len(X) == 0:
        raise DataError(f"{what}: empty image array of shape {X.shape}")
    flat = X.reshape(len(X), -1).astype(np.float32)
    if X.dtype == np.uint8:
        flat /= 255.0
    if not np.isfinite(flat).all():
        row = int(np.flatnonzero(~np.isfinite(flat).all(axis=1))[0])
        raise DataError(f"{what}: image {row} has NaN or infinite pixels")
    return flat, shape


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """An IDX file (the MNIST format), optionally gzip-compressed."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such IDX file")
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    dims = raw[3]
    header = 4 + 4 * dims
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(f"{path}: truncated IDX file ({len(raw) - header} bytes of data, {expected} expected "
                        f"for shape {shape})")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def load_fashion_mnist(split: str = "train", directory: str | os.PathLike | None = None,
                       n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST images [N, 1, 28, 28] (uint8) and labels, from the IDX files that
    ``apt-get install dataset-fashion-mnist`` puts in /usr/share/datasets/fashion-mnist."""
    folder = Path(directory) if directory is not None else FASHION_MNIST_DIR
    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise DataError(f"split must be 'train' or 'test'; got split={split!r}")
    images_path = folder / f"{prefix}-images-idx3-ubyte.gz"
    if not images_path.is_file():
        raise DataError(f"{images_path}: Fashion-MNIST is not installed here (apt-get install dataset-fashion-mnist)")
    images = read_idx(images_path)[:n]
    labels = read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz")[:n]
    return images[:, None, :, :], labels.astype(np.int64)


def is_image_folder(path: str | os.PathLike) -> bool:
    """A folder of class sub-folders holding images."""
    root = Path(path)
    return root.is_dir() and any(
        sub.is_dir() and any(f.suffix.lower() in IMAGE_SUFFIXES for f in sub.iterdir()) for sub in root.iterdir())


def image_folder_table(path: str | os.PathLike) -> Any:
    """``path/<class>/<image>`` as a table: an "image" column of absolute paths and a "label"
    column (the command line's view of an image folder: ``archtune fit photos/ --target label``)."""
    import pandas as pd

    root = Path(path).resolve()
    rows = [(str(file), sub.name) for sub in sorted(root.iterdir()) if sub.is_dir()
            for file in sorted(sub.iterdir()) if file.suffix.lower() in IMAGE_SUFFIXES]
    return pd.DataFrame(rows, columns=["image", "label"])


def read_image_folder(path: str | os.PathLike, size: tuple[int, int] | None = None,
                      mode: str = "RGB") -> tuple[np.ndarray, np.ndarray]:
    """Images [N, C, H, W] (uint8) and their class names from ``path/<class>/<image>``.

    Every image is converted to ``mode`` ("RGB" or "L") and, when ``size`` is given, resized
    to it; otherwise all images must share one size.
    """
    from PIL import Image, UnidentifiedImageError

    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder of class sub-folders")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise DataError(f"{root}: no class sub-folders (expected {root}/<class>/<image>.png)")
    images, labels = [], []
    for label in classes:
        for file in sorted((root / label).iterdir()):
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(file) as img:
                    img = img.convert(mode)
                    if size is not None:
                        img = img.resize(size[::-1])
                    array = np.asarray(img, dtype=np.uint8)
            except (UnidentifiedImageError, OSError) as exc:
                raise DataError(f"{file}: cannot read the image ({exc})") from None
            if images and array.shape != images[0].shape:
                raise DataError(f"{file}: size {array.shape[:2]} differs from {images[0].shape[:2]}; "
                                "pass size=(H, W) to resize")
            images.append(array)
            labels.append(label)
    if not images:
        raise DataError(f"{root}: no images ({', '.join(IMAGE_SUFFIXES)}) in the class sub-folders")
    stacked = np.stack(images)
    stacked = stacked[:, None] if stacked.ndim == 3 else stacked.transpose(0, 3, 1, 2)
    return stacked, np.asarray(labels, dtype=object)


__all__ = ["flatten_images", "is_image_array", "load_fashion_mnist", "read_idx", "read_image_folder"]


# ------------------------------------------------------------------ columns of image paths

IMAGE_PATH_SHARE = 0.9


def looks_like_image_paths(values: Any) -> bool:
    """A string column whose values (90% or more) are file names of images."""
    import pandas as pd

    present = pd.Series(values).dropna().astype(str)
    if present.empty:
        return False
    return bool(present.str.lower().str.endswith(IMAGE_SUFFIXES).mean() >= IMAGE_PATH_SHARE)


def read_image_column(values: Any, shape: tuple[int, int, int] | None, where: str, column: str) -> np.ndarray:
    """The images a column of paths names, as uint8 [N, C, H, W]. Without ``shape`` (fitting)
    the first image sets it; images of another size are resized to it. A missing value gives a
    black image; a missing or unreadable file is an error naming its row."""
    import pandas as pd
    from PIL import Image, UnidentifiedImageError

    paths = list(values)
    out = np.zeros((len(paths), *shape), dtype=np.uint8) if shape is not None else None
    for row, value in enumerate(paths):
        if not isinstance(value, str) and pd.isna(value):  # NaN, None, pd.NA: a black image
            continue
        try:
            with Image.open(str(value)) as img:
                channels = shape[0] if shape else (1 if img.mode in ("L", "1", "I;16") else 3)
                img = img.convert("L" if channels == 1 else "RGB")
                if shape is None:
                    shape = (channels, img.height, img.width)
                if (img.height, img.width) != shape[1:]:
                    img = img.resize((shape[2], shape[1]))
                array = np.asarray(img, dtype=np.uint8)
        except (FileNotFoundError, IsADirectoryError):
            raise DataError(f"{where}: column {column!r}, row {row + 1}: image file {value} not found") from None
        except (UnidentifiedImageError, OSError) as exc:
            raise DataError(f"{where}: column {column!r}, row {row + 1}: cannot read image {value} ({exc})") from None
        if out is None:
            out = np.zeros((len(paths), *shape), dtype=np.uint8)
        out[row] = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    if out is None:
        raise DataError(f"{where}: column {column!r} names no images")
    return out
