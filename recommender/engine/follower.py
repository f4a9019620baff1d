"""The follower: which generation of an index directory a process serves, kept current.

A `Follower` opens the current generation of a directory (or one given generation only,
pinned), follows the directory so a rebuilt generation is picked up without a restart
(`follow`), and follows the store's log, so a write made by another process is in the mirror
before the next computed answer (`sync`). A replaced generation is retired: closed
`RETIRE_SECONDS` later, once requests in flight are done with it. Right after a switch, before
the new mirror is loaded, lookups already read the new generation's store (`lookup_store`).
Its background thread (`start`) runs one round every `follow_seconds`; while a round fails, at
growing intervals (`FollowState`).

Thread safety: `follow` may run on the background thread and in a writer at once; the switch
lock lets one of them switch. `gen` is replaced in one assignment, so a reader sees the old
generation or the new one, whole. `lookup_store` is called from request threads: the lookup
store and the list of retired closes are updated without a lock, by single assignments and
appends, while the background rounds close what is due; `close` comes after `stop`.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from recommender.config import Settings
from recommender.engine.generation import Generation, IndexUnavailable, open_generation
from recommender.storage.generations import IndexDir, IndexMissing
from recommender.storage.store import Store, StoreDamaged, StoreError
from recommender.storage.vectors import VectorIndexConfig

log = logging.getLogger("recommender.engine")

RETIRE_SECONDS = 5.0
FOLLOW_BACKOFF_CAP_SECONDS = 30.0
"""While following fails, the follower waits twice as long after each failure, up to this."""


class FollowState:
    """The follower's state: how long it waits before its next round, and the problem it
    last reported. It logs once when following starts to fail (or fails another way) and
    once when it recovers, and backs off exponentially (capped) while it fails."""

    def __init__(self, interval: float, cap: float = FOLLOW_BACKOFF_CAP_SECONDS) -> None:
        self.interval = interval
        self.cap = max(cap, interval)
        self.delay = interval
        self.problem: str | None = None

    def step(self, round_: Callable[[], None]) -> None:
        """One round of following; a failure is logged if it is new, and backs off."""
        try:
            round_()
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"
            if problem != self.problem:
                log.error(
                    "following the index failed (retrying with backoff up to %.0f s): %s",
                    self.cap,
                    problem,
                    exc_info=not isinstance(exc, IndexUnavailable),
                )
            self.problem = problem
            self.delay = min(self.delay * 2, self.cap)
            return
        if self.problem is not None:
            log.info("following the index again (it failed with: %s)", self.problem)
        self.problem = None
        self.delay = self.interval


class Follower:
    """The generation in use of one index directory; see the module documentation."""

    def __init__(
        self,
        directory: IndexDir,
        settings: Settings,
        model_id: str | None,
        index_config: VectorIndexConfig,
        generation: Path | None,
    ) -> None:
        """Open the current generation of `directory`, or the given `generation` only
        (pinned: never switched); `model_id`, when given, is the model it must be built with."""
        self.directory = directory
        self.settings = settings
        self.expected_model = model_id
        self.index_config = index_config
        self._switch_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.pinned = generation is not None
        self.version = self.directory.version()
        self.gen = self._open(generation) if generation is not None else self._open_current()
        self._lookup: tuple[tuple[int, int], Store] | None = None
        self._refused: tuple[int, int] | None = None  # the version of a damaged generation
        self._retired: list[tuple[float, Callable[[], None]]] = []
        self.on_switch: Callable[[], None] | None = None  # called after a generation switch
        if not self.pinned:
            self.directory.collect()  # what a killed build or an old process left behind

    def _open_current(self) -> Generation:
        for _ in range(5):
            try:
                path = self.directory.current()
            except IndexMissing as exc:
                raise IndexUnavailable(str(exc)) from None
            try:
                return self._open(path)
            except FileNotFoundError:
                continue  # switched and collected between reading CURRENT and opening it
        raise IndexUnavailable(f"index {self.directory.path} keeps changing; try again")

    def _open(self, path: Path) -> Generation:
        try:
            gen = open_generation(path, self.settings, self.index_config)
        except StoreDamaged as exc:
            index = self.directory.path
            raise IndexUnavailable(
                f"generation {path.name} of index {index} is damaged and is not served "
                f"({exc}). Recover: `recommender index rebuild --index {index}` reindexes its "
                "articles into a new generation (the lists are computed again); if the "
                f"articles are damaged too, `recommender index build --input FILE --index "
                f"{index} --replace` rebuilds from the export"
            ) from None
        except StoreError as exc:
            if not path.exists():
                raise FileNotFoundError(path) from None
            raise IndexUnavailable(str(exc)) from None
        model = gen.meta.get("model_id")
        if self.expected_model is not None and model != self.expected_model:
            gen.close()
            raise IndexUnavailable(
                f"index {self.directory.path} was built with model '{model}', but the "
                f"configured model is '{self.expected_model}'; rebuild the index or change "
                "the model"
            )
        return gen

    def follow(self) -> bool:
        """Switch to a new current generation if there is one. Returns whether it switched.
        Raises `IndexUnavailable` when the new one cannot be loaded (the old one is kept)."""
        version = self.directory.version()
        if self.pinned or version == self.version:
            return False
        with self._switch_lock:
            if version == self.version:
                return False
            new = self._open_current()
            old, self.gen = self.gen, new
            self.version = version
            log.info("switched to generation %s (%d articles)", new.path.name, len(new.mirror))
            self.retire(old.close)
            if self.on_switch is not None:
                self.on_switch()
        return True

    def retire(self, close: Callable[[], None]) -> None:
        """Close a replaced generation or store only once requests in flight are done with it."""
        self._retired.append((time.monotonic() + RETIRE_SECONDS, close))

    def close_retired(self, everything: bool = False) -> None:
        """Close the retired generations and stores that are due (all of them with
        `everything`), then remove what is no longer held from the directory."""
        now = time.monotonic()
        due = [c for t, c in self._retired if everything or t <= now]
        self._retired = [(t, c) for t, c in self._retired if not (everything or t <= now)]
        for close in due:
            close()
        if due:
            self.directory.collect()

    def sync(self) -> Generation:
        """The generation in use with its mirror caught up with the log. (Switching to a new
        generation is the follower's job, or a writer's: loading one takes a while.)"""
        gen = self.gen
        gen.mirror.catch_up(gen.store)
        return gen

    def lookup_store(self) -> Store:
        """The current generation's store, opened at once after a switch (before the new
        mirror is loaded), so a lookup never serves a list the new generation changed."""
        version = self.directory.version()
        if self.pinned or version == self.version:
            return self.gen.store
        lookup = self._lookup
        if version == self._refused:
            return self.gen.store
        if lookup is None or lookup[0] != version:
            try:
                store = Store(self.directory.current() / Store.FILENAME)
            except (IndexMissing, StoreError, sqlite3.DatabaseError):
                return self.gen.store
            try:
                store.check()
            except StoreDamaged as exc:
                store.close()
                self._refused = version  # the follower refuses it too, and logs why
                log.error("new generation not served: %s", exc)
                return self.gen.store
            if lookup is not None:
                self.retire(lookup[1].close)
            self._lookup = lookup = (version, store)
        return lookup[1]

    def start(self, round_: Callable[[], None]) -> None:
        """A background thread that runs `round_` every `follow_seconds`; while that fails,
        at growing intervals (`FollowState`)."""
        state = FollowState(self.settings.follow_seconds)

        def loop() -> None:
            while not self._stop.wait(state.delay):
                state.step(round_)

        self._thread = threading.Thread(target=loop, name="index-follower", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background thread (waiting up to 5 s for its round to end)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def close(self) -> None:
        """Close the lookup store, every retired generation and the generation in use."""
        if self._lookup is not None:
            self._lookup[1].close()
        self.close_retired(everything=True)
        self.gen.close()
