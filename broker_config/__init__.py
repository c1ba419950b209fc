"""broker_config: Mosquitto, as Shian runs it.

- ``broker_config.mosquitto_conf``: ``MosquittoConfig``, the generated configuration (every setting answers a
  trap measured on these machines);
- ``broker_config.managed``: ``ManagedMosquitto``, a broker of the platform's own on a free loopback port;
- ``broker_config.provision``: accounts, password file, ACL and TLS listener from the registry.
"""
