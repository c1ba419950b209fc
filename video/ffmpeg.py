"""The ffmpeg command lines around the media server: what a relay, a simulated camera, a still and a clip run.

Streams are copied (``-c copy``); only a simulated camera encodes (a generated picture has to be encoded once
by whoever makes it, as a real camera does), and a still decodes one frame.
"""

from __future__ import annotations

from pathlib import Path

from runtime.process import find_program

#: The font every Chinese label is drawn with (./dev installs fonts-wqy-microhei).
FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")


def ffmpeg() -> str:
    return find_program("ffmpeg", "ffmpeg")


def publish_target(publish_url: str, camera: str, key: str) -> str:
    return f"{publish_url.rstrip('/')}/{camera}?key={key}"


def relay_argv(source: str, target: str) -> list[str]:
    """Pull a camera's stream and push it to the media server unchanged."""
    transport = ["-rtsp_transport", "tcp"] if source.startswith("rtsp") else []
    return [
        ffmpeg(), "-nostdin", "-hide_banner", "-loglevel", "warning",
        *transport, "-i", source, "-c", "copy", "-f", "flv", target,
    ]  # fmt: skip


def synthetic_camera_argv(
    target: str, label_file: Path, *, fps: int = 10, size: str = "320x180", bitrate_kbps: int = 150
) -> list[str]:
    """A generated kitchen: a moving test picture with the label (canteen, camera, area) and the clock burned
    in, at low resolution and bitrate, one keyframe a second (one HLS fragment)."""
    font = f"fontfile={FONT}:" if FONT.exists() else ""
    label = f"drawtext={font}textfile={label_file}:x=6:y=6:fontsize=14:fontcolor=white:box=1:boxcolor=black@0.6"
    clock = f"drawtext={font}text='%{{localtime}}':x=6:y=h-24:fontsize=14:fontcolor=white:box=1:boxcolor=black@0.6"
    return [
        ffmpeg(), "-nostdin", "-hide_banner", "-loglevel", "error", "-re",
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}",
        "-vf", f"{label},{clock}",
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
        "-g", str(fps), "-b:v", f"{bitrate_kbps}k", "-maxrate", f"{bitrate_kbps}k", "-bufsize", f"{bitrate_kbps}k",
        "-f", "flv", target,
    ]  # fmt: skip


def still_argv(fragment: Path, out: Path) -> list[str]:
    """The first frame of one HLS fragment, as a JPEG."""
    return [
        ffmpeg(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-i", str(fragment), "-frames:v", "1", "-q:v", "3", str(out),
    ]  # fmt: skip


def clip_argv(list_file: Path, out: Path) -> list[str]:
    """HLS fragments joined into one MP4, copied."""
    return [
        ffmpeg(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "concat", "-safe", "0", "-i", str(list_file),
        "-c", "copy", "-bsf:a", "aac_adtstoasc", "-movflags", "+faststart", str(out),
    ]  # fmt: skip
