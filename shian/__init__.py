"""shian: the ``shian`` command (``shian.cli``), one module per command group in ``shian.commands``."""
