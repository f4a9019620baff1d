"""An index directory: complete generations side by side and a pointer naming the current one.

Layout of `index/<name>/`:
    CURRENT            the name of the current generation (replaced atomically: write aside,
                       fsync, rename), e.g. `gen-000003`
    gen-000003/        a complete generation: `store.sqlite` (see `recommender.storage.store`)
    .gen-000004.tmp-*  a generation being built (removed if its builder died)

A build writes a new generation aside, fsyncs it, renames it into place and only then switches
the pointer, so at every moment CURRENT names a complete generation (a kill at any point leaves
either the old or the new one current). Every process that uses a generation holds a shared
`flock` on its `LOCK` file, a builder on its staging directory's; a
generation that is not current and that nobody holds (a killed process's locks vanish with it)
is removed by `collect`, which every build and every switch runs.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from recommender.fsutil import fsync_dir, fsync_tree, write_atomic
from recommender.storage.store import Store, StoreError

POINTER = "CURRENT"
LOCK = "LOCK"
_GENERATION = re.compile(r"^gen-(\d{6,})$")


class IndexMissing(RuntimeError):
    """No index at a directory (never built, or in an old format)."""


@dataclass(frozen=True)
class LogMark:
    """A position in one generation's log: a rebuild replays the writes after it."""

    generation: str
    seq: int


class Lease:
    """A shared lock on a generation: it is not removed while held."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = os.open(path / LOCK, os.O_RDONLY | os.O_CREAT, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_SH)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class IndexDir:
    """The generations of one index directory."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def pointer(self) -> Path:
        return self.path / POINTER

    def current(self) -> Path:
        """The current generation's directory."""
        try:
            name = self.pointer.read_text("utf-8").strip()
        except FileNotFoundError:
            hint = (
                " (it holds an index in an older format)"
                if (self.path / "manifest.json").exists()
                else ""
            )
            raise IndexMissing(
                f"no index at {self.path}{hint}: run `recommender index build --input FILE "
                f"--index {self.path}` first"
            ) from None
        if not _GENERATION.match(name) or not (self.path / name).is_dir():
            raise IndexMissing(f"index {self.path}: CURRENT names '{name}', which is not there")
        return self.path / name

    def version(self) -> tuple[int, int]:
        """Changes whenever the pointer is replaced (inode and modification time)."""
        try:
            st = os.stat(self.pointer)
        except FileNotFoundError:
            return (0, 0)
        return (st.st_ino, st.st_mtime_ns)

    def mark(self) -> LogMark | None:
        """The current generation and its last change (None without a readable index). A
        rebuild takes this before any slow work, so every write the served generation
        acknowledges after it is carried over."""
        try:
            generation = self.current()
            store = Store(generation / Store.FILENAME)
        except (IndexMissing, StoreError):
            return None
        try:
            return LogMark(generation.name, store.head())
        finally:
            store.close()

    def generations(self) -> list[Path]:
        if not self.path.is_dir():
            return []
        return sorted(p for p in self.path.iterdir() if _GENERATION.match(p.name))

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A locked staging directory for a new generation; removed if the block fails."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.collect()
        last = max(
            (int(m.group(1)) for p in self.generations() if (m := _GENERATION.match(p.name))),
            default=0,
        )
        name = f"gen-{last + 1:06d}"
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=self.path))
        tmp.chmod(0o755)
        fd = os.open(tmp / LOCK, os.O_RDONLY | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_SH)  # shared, like any user: `collect` needs it free
        try:
            yield tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        finally:
            os.close(fd)

    def install(self, staged: Path) -> Path:
        """Move a complete staged generation to its final name (not yet current)."""
        name = staged.name.split(".tmp-")[0].lstrip(".")
        final = self.path / name
        fsync_tree(staged)
        os.replace(staged, final)
        fsync_dir(self.path)
        return final

    def switch(self, generation: Path) -> None:
        """Make `generation` current: one atomic rename of the pointer."""
        write_atomic(self.pointer, (generation.name + "\n").encode())

    def collect(self) -> list[Path]:
        """Remove generations that are not current and that no process holds, and staging
        directories whose builder is gone. Returns what was removed."""
        try:
            current: Path | None = self.current()
        except IndexMissing:
            current = None
        removed = []
        candidates = [p for p in self.generations() if p != current]
        if self.path.is_dir():
            candidates += [p for p in self.path.iterdir() if ".tmp-" in p.name and p.is_dir()]
        for path in candidates:
            lock = path / LOCK
            try:
                fd = os.open(lock, os.O_RDONLY | os.O_CREAT, 0o644)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            shutil.rmtree(path, ignore_errors=True)
            os.close(fd)
            removed.append(path)
        return removed
