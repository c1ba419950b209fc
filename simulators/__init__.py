"""simulators: devices that behave like a city's, for the demo, load runs and scenarios.

- ``simulators.payloads``: ``PayloadFactory``, realistic payloads of every type;
- ``simulators.fleet`` and ``simulators.city``: a whole city's devices (the reference city generator) and
  ``simulators.city_run``: that fleet against the platform on a simulated clock;
- ``simulators.demo``: the demo's handful of devices, one of them buggy;
- ``simulators.scenario``: scenario files and the alerts they must (not) raise; shipped ones in ``scenarios/``;
- ``simulators.load``: the load mode, as a ratio to ``mosquitto_pub``.
"""
