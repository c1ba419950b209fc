"""The console serves its own front end: the vendored ECharts is the file npm published, and no page loads
anything from another host (school networks and kiosks are often offline)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from console.web.render import CONSOLE_DIR as HERE
from tests.console_helpers import ConsoleRig

VENDOR = HERE / "static" / "vendor"


@pytest.mark.parametrize("library", ["echarts", "hls.js"])
def test_each_vendored_library_is_the_recorded_npm_file(library: str) -> None:
    versions = json.loads((VENDOR / "versions.json").read_text())
    entry = versions[library]
    data = (VENDOR / entry["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    assert f'"{entry["version"]}"'.encode() in data  # the library's own version string
    assert "Apache License" in (VENDOR / f"{library}.LICENSE").read_text()


def test_no_template_loads_anything_from_another_host() -> None:
    for template in (HERE / "templates").glob("*.html"):
        text = template.read_text()
        assert not re.search(r'(src|href)="(https?:)?//', text), template.name


def test_the_pages_and_the_static_files_are_served(tmp_path: Path) -> None:
    client = ConsoleRig(tmp_path).client("city")
    for path in ("/static/vendor/echarts.min.js", "/static/vendor/hls.light.min.js", "/static/live.js"):
        assert client.get(path).status_code == 200, path
    spec = client.get("/api/openapi.json").json()
    assert "/api/v1/alerts/{alert_id}/resolve" in spec["paths"]
    assert "/api/v1/alerts" in client.get("/api/docs").text
