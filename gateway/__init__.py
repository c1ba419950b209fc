"""gateway: receive -> validate -> dedup -> spool (group commit, fsync) -> acknowledge -> receipt.

- ``gateway.service``: ``Gateway``, which serves one bus connection;
- ``gateway.runner``: ``run_gateway``, which keeps it connected (reconnect with backoff, drain on stop);
- ``gateway.intake``: ``Classifier``, the pure decision on one delivery (``Accepted``, ``Rejected``, ``Ignored``);
- ``gateway.entries``: what the spool keeps of a decision, and the clock-skew limits;
- ``gateway.replay``: dead letters validated again after the registry was fixed;
- ``gateway.stats`` and ``gateway.metrics``: counters, and their Prometheus endpoint.

It writes to the spool; storage and rules read from there, never from here.
"""
