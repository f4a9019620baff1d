"""The living index: builds, upserts, deletes, answers, refreshes and compacts.

An `Engine` serves one index directory (`recommender.storage.generations`): the current
generation's store (the source of truth and the log) and its mirror (everything in memory,
derived). It follows the directory, so a rebuilt generation is picked up without a restart, and
it follows the store's log, so a write made by another process (another `serve` worker, a
`recommender index update`) is seen before the next computed answer. A write is acknowledged
once its transaction commits, with the written article's own list; the older lists it changes
are its second wave, done right after.

The parts, each a module:
- `generation`: one open generation (`Generation`: store, lease, mirror, ranking, meta), opened
  checked; `IndexUnavailable`; `ReadView`, the mirror and store to read directly.
- `follower`: which generation this process serves: opening, following the directory and the
  log, switching, retiring replaced generations, the lookup store; its background thread.
- `writer`: the writes (`upsert`, `delete`: one transaction each, the lists they change now),
  their second waves (`finish_waves`), the refresh of the stored lists.
- `build`: a new generation written aside, the writes meanwhile replayed, the switch
  (`build_generation`), and `compact`.
- `front`: `Engine`, the one object callers hold: it puts a follower and a writer together and
  answers the reads. Nothing outside this package reaches the parts through it; `build`
  replays through the writer of the pinned `Engine` it opens on the new generation.

A reader process never loads the encoder: these modules import it for types only.
"""

from recommender.engine.build import build_generation, compact
from recommender.engine.follower import FOLLOW_BACKOFF_CAP_SECONDS, RETIRE_SECONDS, FollowState
from recommender.engine.front import Engine
from recommender.engine.generation import Generation, IndexUnavailable, ReadView
from recommender.engine.writer import (
    WRITE_ATTEMPTS,
    EncoderUnavailable,
    Prepared,
    Status,
    WriteResult,
    prepare,
)

__all__ = [
    "FOLLOW_BACKOFF_CAP_SECONDS",
    "RETIRE_SECONDS",
    "WRITE_ATTEMPTS",
    "EncoderUnavailable",
    "Engine",
    "FollowState",
    "Generation",
    "IndexUnavailable",
    "Prepared",
    "ReadView",
    "Status",
    "WriteResult",
    "build_generation",
    "compact",
    "prepare",
]
