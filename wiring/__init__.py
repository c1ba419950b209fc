"""wiring: the platform put together.

- ``wiring.settings``: ``Settings`` from a TOML file and ``SHIAN_*`` environment variables, checked once;
- ``wiring.build``: the one builder: gateway, storage drain, rules engine with its notifiers, and their files;
- ``wiring.platform``: ``Platform`` (the running parts, their start and stop order) and ``run_platform``;
- ``wiring.broker``: the configured broker or a managed Mosquitto; ``wiring.loops``: the background loops.

It knows nothing of simulators: devices are attached by whoever runs the platform.
"""
