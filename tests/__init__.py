"""The test suite: ``conftest.py`` starts a real Mosquitto, InfluxDB and VictoriaMetrics on free ports."""
