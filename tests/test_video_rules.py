"""camera.video_lost on a fake clock: raised when a camera heard on MQTT has no picture for the threshold in
kitchen hours, never outside them nor for a silent camera (device.offline's), resolved when the picture
returns; the kitchen hours themselves, viewers' limits and the parsing of the RTMP module's statistics."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from devices.kitchen import kitchen_windows, live_now
from devices.topics import Channel, DeviceKind
from rules.config import RulesConfig
from rules.engine import RulesEngine
from rules.store import RulesStore
from runtime.clock import FakeClock
from simulators.payloads import PayloadFactory
from tests.rules_helpers import MORNING, registry
from tests.storage_helpers import new_record, spool_record
from video.pictures import PictureBoard
from video.stat import StreamStat, parse_stat
from video.viewers import ViewerBook

LEAD = dt.timedelta(hours=2)  # the rules' default kitchen_opens_before_meal
THRESHOLD = dt.timedelta(seconds=60)


def _stat(camera: str, publishing: bool) -> dict[str, StreamStat]:
    return {camera: StreamStat(camera, publishing, 150.0, 10.0, 320, 180, 1000, 1)} if publishing else {}


class VideoHarness:
    def __init__(self, tmp: Path, start: dt.datetime, **canteen: object) -> None:
        self.clock = FakeClock(start)
        self.registry = registry(
            devices=[{"id": "cam1", "kind": "camera", "heartbeat_s": 30, "video": "push", "area": "cooking"}], **canteen
        )
        self.board = PictureBoard(["cam1"])
        self.store = RulesStore(tmp / "rules.sqlite")
        config = RulesConfig(video_lost_after=THRESHOLD)
        self.engine = RulesEngine(self.registry, config, self.store, self.clock, pictures=self.board.state)
        self.factory = PayloadFactory("cam1")
        self.seq = 0

    def heartbeat(self) -> None:
        self.seq += 1
        model = self.factory.camera_stream(self.clock.now())
        record = new_record(
            model, DeviceKind.CAMERA, Channel.TELEMETRY, canteen="c1", device="cam1", received_at=self.clock.now()
        )
        self.engine.process([spool_record(record, self.seq)])

    def picture(self, publishing: bool) -> None:
        self.board.update(_stat("cam1", publishing), self.clock.now())

    def after(self, seconds: float, *, heartbeat: bool = True, publishing: bool | None = None) -> None:
        """Time passes in 10 s steps, the camera beating (unless told not to) and the picture read each step."""
        end = self.clock.now() + dt.timedelta(seconds=seconds)
        while self.clock.now() < end:
            self.clock.set(min(end, self.clock.now() + dt.timedelta(seconds=10)))
            if heartbeat:
                self.heartbeat()
            if publishing is not None:
                self.picture(publishing)
            self.engine.tick()

    def lost(self) -> list[str]:
        return [a.state for a in self.store.alerts() if a.rule == "camera.video_lost"]


def test_a_lost_picture_in_kitchen_hours_is_raised_after_the_threshold_and_resolved_on_return(tmp_path: Path) -> None:
    h = VideoHarness(tmp_path, MORNING.replace(hour=11))  # lunch at 11:40: the kitchen works from 09:40
    h.after(30, publishing=True)
    assert h.lost() == []
    h.after(50, publishing=False)  # 50 s without a picture: not yet
    assert h.lost() == []
    h.after(20, publishing=False)  # past 60 s
    assert h.lost() == ["open"]
    alert = h.store.alerts()[0]
    assert "没有画面" in alert.message
    assert alert.device_id == "cam1"
    h.after(10, publishing=True)
    assert h.lost() == ["resolved"]


def test_no_alert_outside_kitchen_hours_nor_for_a_silent_camera(tmp_path: Path) -> None:
    night = VideoHarness(tmp_path / "night", MORNING.replace(hour=20))
    night.after(30, publishing=True)
    night.after(600, publishing=False)
    assert night.lost() == []

    silent = VideoHarness(tmp_path / "silent", MORNING.replace(hour=11))
    silent.after(30, publishing=True)
    silent.after(600, heartbeat=False, publishing=False)  # the camera itself is silent: device.offline's
    assert silent.lost() == []


def test_the_picture_counts_from_the_kitchens_opening(tmp_path: Path) -> None:
    h = VideoHarness(tmp_path, MORNING.replace(hour=9, minute=30))  # ten minutes before the kitchen opens
    h.after(30, publishing=False)
    h.after(560, publishing=False)  # 09:39:50: still before opening
    assert h.lost() == []
    h.after(50, publishing=False)  # 09:40:40: opened 40 s ago
    assert h.lost() == []
    h.after(30, publishing=False)  # 70 s after opening
    assert h.lost() == ["open"]


def test_kitchen_hours_default_from_meals_and_by_the_canteen() -> None:
    day = MORNING.date()
    meals = registry()
    canteen = meals.canteens[0]
    [(start, end)] = kitchen_windows(meals, canteen, day, LEAD)
    assert (start.hour, start.minute, end.hour, end.minute) == (9, 40, 12, 30)
    assert not live_now(meals, canteen, MORNING.replace(hour=20), LEAD)
    own = registry(kitchen_hours=[{"start": "06:00", "end": "13:00"}], live_to_parents="all_day")
    [(start, end)] = kitchen_windows(own, own.canteens[0], day, LEAD)
    assert (start.hour, end.hour) == (6, 13)
    assert live_now(own, own.canteens[0], MORNING.replace(hour=23), LEAD)  # parents see it all day
    assert kitchen_windows(own, own.canteens[0], dt.date(2026, 11, 27), LEAD) == []  # the Friday off


def test_viewers_beyond_a_limit_wait_and_idle_ones_leave(tmp_path: Path) -> None:
    clock = FakeClock(MORNING)
    book = ViewerBook(clock, per_stream=2, total=3)
    assert book.admit("cam1", "v1")
    assert book.admit("cam1", "v2")
    assert not book.admit("cam1", "v3")  # the stream is full
    assert book.admit("cam1", "v1")  # one already watching always may
    assert book.admit("cam2", "v4")
    assert not book.admit("cam3", "v5")  # the total is full
    assert book.refused == {"cam1": 1, "cam3": 1}
    clock.set(MORNING + dt.timedelta(seconds=20))  # nobody heard for longer than IDLE_S: all gone
    assert book.admit("cam1", "v3")
    assert book.total_watching == 1


def test_the_statistics_page_is_read_as_the_module_writes_it() -> None:
    page = (
        "<rtmp><server><application><name>live</name><live>"
        "<stream><name>cam1</name><bw_in>151200</bw_in><bytes_in>99</bytes_in><nclients>2</nclients>"
        "<meta><video><width>320</width><height>180</height><frame_rate>10</frame_rate></video></meta>"
        "<publishing/><active/></stream>"
        "<stream><name>cam2</name><bw_in>0</bw_in><nclients>1</nclients></stream>"
        "</live></application><application><name>other</name><live><stream><name>cam3</name><publishing/>"
        "</stream></live></application></server></rtmp>"
    )
    streams = parse_stat(page, "live")
    assert set(streams) == {"cam1", "cam2"}
    assert streams["cam1"] == StreamStat("cam1", True, 151.2, 10.0, 320, 180, 99, 2)
    assert not streams["cam2"].publishing
