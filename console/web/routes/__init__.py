"""One module per route family, each with its own router; a route module imports the read side below it and
the wing's ``deps`` and ``render``, never another route module (import-linter checks it)."""
