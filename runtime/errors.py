"""The one base class of expected failures: things a user can fix (a bad file, an unreachable server, a bad
flag), as opposed to bugs. The ``shian`` command prints any of them as one line and exits 2."""

from __future__ import annotations


class ShianError(Exception):
    """An expected failure whose message alone tells the user what is wrong and, where it can, what to do."""
