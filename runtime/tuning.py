"""Interpreter settings for a process that ingests at full speed (the figures are in docs/gateway.md).

The gateway makes a few short-lived objects per message; at tens of thousands of messages a second CPython's
defaults spend a fifth of the time in the cyclic garbage collector, and make the spool's commit thread wait
up to 5 ms for the GIL each time SQLite hands it back.
"""

from __future__ import annotations

import gc
import sys

#: Container allocations between young-generation collections (CPython's default: 700). Per-message objects
#: are freed by reference counting; the collector is only for cycles, which the hot path does not make.
GC_THRESHOLD = 50_000
#: How long a thread may hold the GIL while another waits for it (CPython's default: 5 ms).
SWITCH_INTERVAL_S = 0.001


def tune_for_ingest() -> None:
    """Call once everything long-lived (modules, the registry) is loaded: it is then left out of collections."""
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 10, 10)
    sys.setswitchinterval(SWITCH_INTERVAL_S)
