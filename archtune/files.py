"""Atomic file writes: readers see the old file or the new one, never a part.

Every file archtune writes (bundles, checkpoints, leaderboards, metrics, predictions) goes
through `atomic_write_bytes`: a temporary file in the same folder, fsync, then a rename.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

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
        os.fchmod(fd, 0o666 & ~_umask())
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


def _umask() -> int:
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
