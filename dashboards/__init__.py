"""dashboards: Grafana boards as code (``dashboards.boards``), their InfluxQL queries (``dashboards.queries``,
with names from ``storage.schema``), the generated JSON and provisioning files (``dashboards.build``), and
``dashboards.push`` to a running Grafana."""
