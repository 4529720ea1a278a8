"""Chunk checkpoints: one ``.npz`` per finished chunk, written atomically.

A chunk file is written to a temporary name in the same directory, flushed to disk, then
renamed over its final name (``os.replace`` is atomic on POSIX), so a killed run leaves either a
complete chunk file or none. The directory is keyed by the config digest, so a changed config
never picks up stale chunks.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["CheckpointDir", "atomic_write_bytes", "atomic_write_text"]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same directory + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600: give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """UTF-8 text version of :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"))


class CheckpointDir:
    """Finished chunks of one config (``root/<digest[:16]>/<chunk key>.npz``)."""

    def __init__(self, root: Path, digest: str) -> None:
        self.path = Path(root) / digest[:16]

    def _file(self, key: str) -> Path:
        return self.path / f"{key}.npz"

    def save(self, key: str, arrays: dict[str, NDArray[Any]]) -> None:
        """Store one chunk's result atomically."""
        import io

        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(self._file(key), buf.getvalue())

    def load(self, key: str) -> dict[str, NDArray[Any]] | None:
        """A finished chunk, or None if absent or unreadable (it is then recomputed)."""
        f = self._file(key)
        if not f.exists():
            return None
        try:
            with np.load(f) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError):
            return None

    def keys(self) -> list[str]:
        """Keys of the chunk files present."""
        return sorted(p.stem for p in self.path.glob("*.npz")) if self.path.exists() else []

    def clear(self) -> None:
        """Remove this config's chunk files (after a successful run)."""
        if not self.path.exists():
            return
        for p in self.path.glob("*.npz"):
            p.unlink()
        for d in (self.path, self.path.parent):
            try:
                d.rmdir()
            except OSError:
                break
