"""Atomic file writes: a file appears under its name complete, or not at all.

Every writer of a file that another process may read while it is written (the dataset cache,
downloads, the abTEM cache, results records, uploads, figures, tokens, configuration,
checkpoints) writes through :class:`AtomicPath`: the data go to a unique temporary name
beside the target (``.<name>.<random hex>.tmp``, so that concurrent writers never share one),
are flushed to disk (``fsync``), and the temporary file is renamed over the target
(``os.replace``, atomic on POSIX and Windows), after which the folder is flushed too. On any
error the temporary file is removed and the target is left as it was.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from types import TracebackType

__all__ = ["AtomicPath", "atomic_write_bytes", "atomic_write_text"]


def _fsync(path: Path, *, folder: bool = False) -> None:
    try:
        descriptor = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if folder else 0))
    except OSError:
        if folder:  # a folder that cannot be opened (Windows) is flushed with its files
            return
        raise
    try:
        os.fsync(descriptor)
    except OSError:
        if not folder:
            raise
    finally:
        os.close(descriptor)


class AtomicPath:
    """A unique temporary path beside ``target`` that replaces ``target`` when committed.

    Used as a context manager it gives the temporary path, commits when the block ends
    normally and discards the temporary file when it raises.

    Parameters
    ----------
    target : str or Path
        The file to write; its folder must exist.
    suffix : str, optional
        End of the temporary name (default ``".tmp"``), for writers that insist on a file
        extension (Keras saves only to ``.keras``).

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> with AtomicPath(folder / "out.txt") as temporary:
    ...     _ = temporary.write_text("done")
    >>> (folder / "out.txt").read_text(), [p.name for p in folder.iterdir()]
    ('done', ['out.txt'])
    """

    def __init__(self, target: str | Path, *, suffix: str = ".tmp") -> None:
        self.target = Path(target)
        self.temporary = self.target.with_name(
            f".{self.target.name}.{uuid.uuid4().hex}{suffix}")

    def commit(self) -> Path:
        """Flush the temporary file to disk and rename it over the target; return the target.

        Raises
        ------
        OSError
            If the temporary file is missing or cannot be flushed or renamed (it is removed).
        """
        try:
            _fsync(self.temporary)
            os.replace(self.temporary, self.target)
        except BaseException:
            self.discard()
            raise
        _fsync(self.target.parent, folder=True)
        return self.target

    def discard(self) -> None:
        """Remove the temporary file, if it exists."""
        self.temporary.unlink(missing_ok=True)

    def __enter__(self) -> Path:
        return self.temporary

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see the module docstring); return the path."""
    with AtomicPath(path) as temporary:
        temporary.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see the module docstring); return the path.

    Parameters
    ----------
    path : str or pathlib.Path
        The file to write (replaced if it exists).
    text : str
        Its content.
    encoding : str, optional
        Text encoding; default ``"utf-8"``.
    """
    return atomic_write_bytes(path, text.encode(encoding))
