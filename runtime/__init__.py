"""runtime: what every layer above may use and that knows nothing of food safety.

- ``runtime.clock``: ``Clock``, ``SystemClock``, ``FakeClock`` (time is passed in, never read inside logic);
- ``runtime.backoff``: ``Backoff``, the one retry schedule of every reconnecting or retrying loop;
- ``runtime.process``: ``ManagedProcess``, ``free_port``, ``find_program``, ``ServerError`` (child servers);
- ``runtime.logs``: ``configure_logging`` (structlog: console on a terminal, JSON otherwise);
- ``runtime.tuning``: ``tune_for_ingest`` (garbage-collector and GIL settings for full-speed intake);
- ``runtime.errors``: ``ShianError``, the base of every expected failure (printed as one line by ``shian``).

It imports nothing else of the project: the bottom layer (docs/architecture.md).
"""
