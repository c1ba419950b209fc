"""The RTMP module's own statistics (its ``stat`` page): which streams publish, at what frame rate and bitrate,
to how many RTMP clients. Parsed with the standard library's XML parser; the page comes from our own server."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StreamStat:
    name: str
    publishing: bool
    #: What the publisher sends, in kbit/s (the module's average over its last seconds).
    bitrate_kbps: float
    fps: float | None
    width: int | None
    height: int | None
    bytes_in: int
    #: RTMP clients: the publisher and any RTMP players (parents watch over HLS, counted elsewhere).
    clients: int


def _int(element: ET.Element | None, path: str) -> int | None:
    text = element.findtext(path) if element is not None else None
    try:
        return int(float(text)) if text else None
    except ValueError:
        return None


def parse_stat(xml: bytes | str, application: str) -> dict[str, StreamStat]:
    """stream name -> its statistics, for the streams of ``application``."""
    root = ET.fromstring(xml)
    streams: dict[str, StreamStat] = {}
    for app in root.iter("application"):
        if app.findtext("name") != application:
            continue
        for stream in app.iter("stream"):
            name = stream.findtext("name") or ""
            video = stream.find("meta/video")
            fps = _int(video, "frame_rate")
            streams[name] = StreamStat(
                name=name,
                publishing=stream.find("publishing") is not None,
                bitrate_kbps=round((_int(stream, "bw_in") or 0) / 1000, 1),
                fps=float(fps) if fps is not None else None,
                width=_int(video, "width"),
                height=_int(video, "height"),
                bytes_in=_int(stream, "bytes_in") or 0,
                clients=_int(stream, "nclients") or 0,
            )
    return streams
