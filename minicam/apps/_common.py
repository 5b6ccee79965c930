"""What the three apps share, and nothing of the methods: a usage error is one message and exit status
2; an output folder never overlaps the inputs and takes one run at a time; every file is written under a
temporary name and then renamed, so a reader (or a Ctrl-C, or a full disk) never sees half a file; a
request that cannot fit in memory is refused before it starts."""
from __future__ import annotations

import contextlib
import os
import sys
import warnings
from pathlib import Path

__all__: list[str] = []  # the apps' own helpers: nothing here is for a user to call

INTERRUPTED = 130  # the shell's status for a program stopped by Ctrl-C (128 + SIGINT)


class UsageError(ValueError):
    """A bad option, found before any work: the app prints it as one message and exits with status 2."""


def write_atomic(path: Path, write, durable: bool = False) -> Path:
    """path written by write(file) (a binary file object) under a temporary name beside it, then renamed
    over path: the old file stays whole until the new one is complete, and a failure leaves no temporary.
    durable: the data reach the disk before the rename (for a file whose loss costs hours: trained weights),
    so that a power cut cannot leave an empty file under the old name either."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        with open(temporary, "wb") as f:
            write(f)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


class OutputFolder:
    """--out as a folder the run may write in: not one of the inputs nor inside one, and no input inside it
    (a rerun would read its own pictures), writable, and locked for the run (a hidden file, removed at the
    end), so that a second run into the same folder is refused instead of interleaving its files with this one's. The folder is made only by
    `open`, when the run has something to write."""

    LOCK = ".minicam.lock"

    def __init__(self, out, inputs=(), option: str = "--out"):
        if not isinstance(out, (str, os.PathLike)) or str(out) == "":
            raise UsageError(f"{option} must be a folder path, got {out!r}")
        self.path, self.option = Path(out), option
        where = self.path.resolve()
        for given in inputs:
            source = Path(given).resolve()
            if _inside(where, source) or _inside(source, where):
                raise UsageError(f"{option} {self.path} overlaps --images {given}: the run would write among its "
                                 f"inputs (and a rerun would read its own pictures); choose a folder outside them")
        existing = next(p for p in (where, *where.parents) if p.exists() or p == Path(p.anchor))
        if not existing.is_dir():
            raise UsageError(f"{option} must be a folder, but {existing} is a file; choose another path")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise UsageError(f"{option}: cannot write in {existing} (permission denied); choose a writable folder")
        self._lock = None

    def open(self) -> Path:
        """The folder, made if missing and locked for this run (a UsageError if another run holds it)."""
        self.path.mkdir(parents=True, exist_ok=True)
        lock = open(self.path / self.LOCK, "a+b")
        try:
            _lock_file(lock)
            if os.stat(self.path / self.LOCK).st_ino != os.fstat(lock.fileno()).st_ino:
                raise OSError("the lock file was removed by the run that held it")  # that run has just finished
        except OSError:
            lock.close()
            raise UsageError(f"{self.option} {self.path} is in use by another run that is still writing there; wait "
                             "for it to finish or choose another folder") from None
        self._lock = lock
        return self.path

    def close(self) -> None:
        """The lock released and its file removed (so the gallery holds only the run's files); nothing if the
        folder was never opened. A run that opened the file before it went checks that it still exists."""
        if self._lock is not None:
            with contextlib.suppress(OSError):
                (self.path / self.LOCK).unlink()
            self._lock.close()
            self._lock = None


def _lock_file(f) -> None:
    """An exclusive lock on the open file f, or an OSError at once if another process holds it."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt
        msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
    else:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def _available_memory() -> int | None:
    """Bytes of memory this process may use: Linux's MemAvailable (free memory and the page cache the kernel
    can drop), elsewhere the physical memory; None where neither can be told."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def check_memory(needed: float, option: str, value, per: float, unit: str) -> None:
    """A UsageError if `needed` bytes (what `option` = value asks for) exceed the memory available here; it
    says how much is needed and the largest value that fits (per bytes for each `unit`)."""
    free = _available_memory()
    if free is not None and needed > free:
        raise UsageError(f"{option} {value} would need about {needed / 2 ** 30:.1f} GB of memory, and "
                         f"{free / 2 ** 30:.1f} GB are available here; give at most {max(1, int(free // per))} {unit}")


@contextlib.contextmanager
def quiet_warnings(prog: str, notes: list | None = None):
    """Warnings of the libraries the app calls (Pillow on odd files, torch) as one line each on stderr
    naming the app (or kept in `notes`), not as source lines of a library the user never called."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for seen in dict.fromkeys(str(w.message).splitlines()[0] for w in caught):
        if notes is not None:
            notes.append(seen)
        else:
            print(f"{prog}: note: {seen}", file=sys.stderr)
