"""Cameras' stream keys as provisioning makes them, and the [video] settings that are refused at start-up."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.video_rig import video_registry
from video.keys import CLEAR_FILE, DIGESTS_FILE, StreamKeys, clear_keys, provision_stream_keys
from wiring.settings import ConfigError, load_settings


def test_keys_are_kept_rotated_and_dropped_with_their_cameras(tmp_path: Path) -> None:
    first = provision_stream_keys(video_registry(), tmp_path)
    keys = clear_keys(tmp_path)
    assert sorted(first.created) == ["c-a-cam", "c-b-cam", "c-c-cam"]  # the retired c-a-old has none
    assert stat.S_IMODE((tmp_path / CLEAR_FILE).stat().st_mode) == 0o600
    digests = StreamKeys.load(tmp_path / DIGESTS_FILE)
    assert digests.matches("c-a-cam", keys["c-a-cam"])
    assert not digests.matches("c-a-cam", keys["c-b-cam"])  # another camera's key
    assert not digests.matches("c-a-old", "anything")
    assert keys["c-a-cam"] not in (tmp_path / DIGESTS_FILE).read_text()  # only digests where the platform reads

    again = provision_stream_keys(video_registry(), tmp_path, rotate=["c-b-cam"])
    assert (again.created, again.rotated) == ([], ["c-b-cam"])
    renewed = clear_keys(tmp_path)
    assert renewed["c-a-cam"] == keys["c-a-cam"]
    assert renewed["c-b-cam"] != keys["c-b-cam"]

    data = video_registry().model_dump(mode="json", exclude_none=True)
    data["canteens"][2]["devices"] = [d for d in data["canteens"][2]["devices"] if d["kind"] != "camera"]
    registry_file = tmp_path / "registry.yaml"
    registry_file.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "shian.cli",
            "broker",
            "provision",
            "--registry",
            str(registry_file),
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "stream keys removed: c-c-cam" in out
    assert "c-c-cam" not in clear_keys(tmp_path)


@pytest.mark.parametrize(
    ("toml", "says"),
    [
        ('[video]\nmode = "external"\n', "video.play_url, video.publish_url, video.stat_url, video.hook_secret"),
        ('[web]\nenabled = false\n[video]\nmode = "managed"\n', "video needs the console"),
        ("[video]\nmax_viewers = 10\nmax_viewers_per_stream = 20\n", "max_viewers must not be below"),
    ],
)
def test_video_settings_that_cannot_work_are_refused_naming_the_key(tmp_path: Path, toml: str, says: str) -> None:
    path = tmp_path / "shian.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError, match=says):
        load_settings(path)
