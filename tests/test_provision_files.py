"""The files ``shian broker provision`` writes work with Debian's Mosquitto as the deployment guide starts it:
as root, dropping to the user ``mosquitto`` before it opens the password and ACL files."""

from __future__ import annotations

import grp
import os
from pathlib import Path

import pytest

from broker_config.provision import BROKER_GROUP, provision
from runtime.process import ManagedProcess, find_program, free_port
from tests.test_broker_security import security_registry

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not any(g.gr_name == BROKER_GROUP for g in grp.getgrall()),
    reason="needs root and the mosquitto group (Debian's mosquitto package), as CI has",
)


def _let_the_broker_through(path: Path) -> None:
    """Test directories are private (0700); /etc/mosquitto, where the guide puts these files, is not."""
    for parent in path.resolve().parents:
        parent.chmod(parent.stat().st_mode | 0o001)


def test_a_root_started_mosquitto_reads_the_provisioned_files(tmp_path: Path) -> None:
    out, data = tmp_path / "provisioned", tmp_path / "data"
    port = free_port()
    result = provision(security_registry(), out, port=port, bind_address="127.0.0.1", persistence_dir=data)
    assert result.readable_by == BROKER_GROUP
    for path in (result.passwd, result.acl):
        assert path.stat().st_mode & 0o777 == 0o640
        assert path.stat().st_gid == grp.getgrnam(BROKER_GROUP).gr_gid
    data.mkdir()
    os.chown(data, -1, grp.getgrnam(BROKER_GROUP).gr_gid)
    data.chmod(0o770)
    _let_the_broker_through(out)
    argv = [find_program("mosquitto", "mosquitto"), "-c", str(result.config)]
    broker = ManagedProcess("mosquitto", argv, "127.0.0.1", port, tmp_path / "mosquitto.log")
    with broker:  # raises, with the broker's log, if it exits while starting ("Unable to open pwfile")
        assert broker.running
