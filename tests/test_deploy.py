"""The systemd units of docs/deploy.md are units systemd accepts, every line of them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "systemd"
SHIAN = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "shian"

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")


def _verify(unit: Path, unit_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **({"SYSTEMD_UNIT_PATH": f"{unit_path}:"} if unit_path else {})}
    return subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, env=env, check=False, timeout=60
    )


def test_the_platform_unit_is_valid(tmp_path: Path) -> None:
    text = (DEPLOY / "shian.service").read_text(encoding="utf-8")
    assert "ExecStart=/opt/shian/.venv/bin/shian run" in text
    unit = tmp_path / "shian.service"
    unit.write_text(text.replace("/opt/shian/.venv/bin/shian", str(SHIAN.resolve())), encoding="utf-8")
    result = _verify(unit)
    # verify only warns (and exits 0) on a line it ignores: any output is a defect
    assert (result.returncode, result.stderr, result.stdout) == (0, "", "")


def test_the_mosquitto_drop_in_is_valid(tmp_path: Path) -> None:
    debian_unit = Path("/lib/systemd/system/mosquitto.service")
    if not debian_unit.exists():
        pytest.skip("Debian's mosquitto.service is not installed")
    shutil.copy(debian_unit, tmp_path / "mosquitto.service")
    (tmp_path / "mosquitto.service.d").mkdir()
    shutil.copy(DEPLOY / "mosquitto.service.d" / "shian.conf", tmp_path / "mosquitto.service.d" / "shian.conf")
    result = _verify(tmp_path / "mosquitto.service", unit_path=tmp_path)
    assert (result.returncode, result.stderr, result.stdout) == (0, "", "")
