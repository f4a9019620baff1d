"""How a serving process tunes the Python interpreter: its cyclic garbage collector.

A loaded worker tracks some 500,000 container objects (the model's modules and tensors,
the mirror's stories, term and entity dicts), all of them alive for as long as the
generation is served. A full collection walks every one of them: 0.4 s on a 2-core EPYC,
during which the worker answers nothing: every read it holds waits that long.
`freeze` moves what is alive into the collector's permanent generation, so later collections
look only at objects made since. Frozen objects are still freed by reference counting when
dropped (a replaced generation holds no reference cycles: measured, none left after it is
closed).
"""

from __future__ import annotations

import gc


def freeze(collect: bool = True) -> None:
    """Exclude every live object from future collections (after a collection, by default)."""
    if collect:
        gc.collect()
    gc.freeze()
