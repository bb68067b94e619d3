"""Atomic file writes: readers see the old file or the new one, never a part.

Every file archtune writes (bundles, checkpoints, leaderboards, metrics, predictions) goes
through `atomic_write_bytes`: a temporary file in the same folder, fsync, then a rename.
"""

from __future__ import annotations

import errno
import json
import math
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archtune.errors import SaveError

if TYPE_CHECKING:
    from torch import nn


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a part.

    A failed write (disk full, no permission) raises `SaveError` naming the path, leaves the
    previous version of the file as it was and no temporary file behind.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _save_error(path, exc) from exc
    try:
        # mkstemp creates the file private (0600); a saved file gets the mode any new file
        # would: 0666 less the umask, as open() gives.
        os.fchmod(fd, 0o666 & ~umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError) and not isinstance(exc, SaveError):
            raise _save_error(path, exc) from exc
        raise
    _fsync_dir(path.parent)


def json_ready(value: Any) -> Any:
    """``value`` with every float that JSON cannot hold (NaN, +-Infinity) replaced by None,
    NumPy scalars and arrays as plain Python values, tuples as lists and other objects by
    their ``str``: what `json_bytes` writes."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if hasattr(value, "tolist") and type(value).__module__ == "numpy":  # NumPy scalars and arrays
        return json_ready(value.tolist())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


def json_bytes(value: Any, indent: int | None = 2) -> bytes:
    """Strict JSON (RFC 8259) of ``value``: never a literal NaN or Infinity, which
    Python's json writes by default and most other readers reject (they become null)."""
    return json.dumps(json_ready(value), indent=indent, allow_nan=False).encode()


def umask() -> int:
    """The process's umask, read without changing it where Linux shows it (os.umask can only
    be read by setting it, which would race with other threads creating files)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _save_error(path: Path, exc: OSError) -> SaveError:
    reason = "no space left on device" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
    return SaveError(f"{path}: cannot save: {reason}; the previous version (if any) is kept")


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def weights_bytes(module: "nn.Module") -> bytes:
    from safetensors.torch import save

    return save({k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()})


def write_weights(module: "nn.Module", path: str | os.PathLike) -> None:
    """Write a module's weights as safetensors, atomically."""
    atomic_write_bytes(path, weights_bytes(module))
