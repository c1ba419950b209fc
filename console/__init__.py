"""The web console for supervisors: alert inbox, canteen pages, overviews, hand-entered strip results and a
REST API, every one scoped by role (docs/console.md).

It reads the rules store for alerts and the configured time-series store (``console.readings``) for the rest,
and takes hand-entered results through the gateway's own intake. The platform (``wiring``) builds and serves it.
"""
