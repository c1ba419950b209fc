"""Evidence from the picture: a still frame of a camera's stream now, and a clip around a moment, cut from the
media server's rolling buffer of HLS fragments (PLAYLIST_S seconds of them, on its disk) without re-encoding."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from runtime.errors import ShianError
from video.ffmpeg import clip_argv, still_argv
from video.nginx_conf import FRAGMENT_S

STILL = "still.jpg"
CLIP = "clip.mp4"
#: The clip around an AI violation: from this long before it to this long after.
CLIP_BEFORE_S = 10.0
CLIP_AFTER_S = 20.0


class NoPicture(ShianError, LookupError):
    """The camera has no picture in the buffer now (not publishing, or never was)."""


@dataclass(frozen=True, slots=True)
class Fragment:
    path: Path
    duration_s: float


def fragments(hls_dir: Path, camera: str) -> list[Fragment]:
    """The fragments the camera's playlist lists now, oldest first."""
    playlist = hls_dir / camera / "index.m3u8"
    try:
        lines = playlist.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    found, duration = [], None
    for line in lines:
        if line.startswith("#EXTINF:"):
            duration = float(line[8:].split(",", 1)[0])
        elif line and not line.startswith("#") and duration is not None:
            found.append(Fragment(playlist.parent / line, duration))
            duration = None
    return found


async def _run(argv: list[str]) -> None:
    process = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, error = await process.communicate()
    if process.returncode != 0:
        raise ShianError(f"ffmpeg failed ({process.returncode}): {error.decode(errors='replace').strip()[-300:]}")


#: A stream that has just started publishing has its first fragment this long later at most.
FIRST_FRAGMENT_S = 3 * FRAGMENT_S


async def take_still(hls_dir: Path, camera: str, out: Path) -> Path:
    """The newest complete fragment's first frame (at most a fragment old) as ``out``; a stream that has only
    just started is waited for, up to FIRST_FRAGMENT_S."""
    listed = fragments(hls_dir, camera)
    for _ in range(int(FIRST_FRAGMENT_S / 0.25)):
        if listed:
            break
        await asyncio.sleep(0.25)  # nginx writes the playlist when the first fragment closes; nothing to wait on
        listed = fragments(hls_dir, camera)
    if not listed:
        raise NoPicture(camera)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".part.jpg")
    await _run(still_argv(listed[-1].path, partial))
    partial.replace(out)
    return out


async def take_clip(hls_dir: Path, camera: str, out: Path, *, seconds: float) -> Path:
    """The last ``seconds`` of the buffer as one MP4: call it ``after`` seconds past the moment, with
    ``seconds`` = before + after. The fragments are copied first, so the server's cleanup cannot take them."""
    listed = fragments(hls_dir, camera)
    chosen: list[Fragment] = []
    for fragment in reversed(listed):
        if sum(f.duration_s for f in chosen) >= seconds:
            break
        chosen.insert(0, fragment)
    if not chosen:
        raise NoPicture(camera)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as work:
        copies = []
        for fragment in chosen:
            copy = Path(work) / fragment.path.name
            try:
                shutil.copyfile(fragment.path, copy)
            except FileNotFoundError:
                continue  # cleaned up between the listing and the copy: the clip starts a little later
            copies.append(copy)
        if not copies:
            raise NoPicture(camera)
        listing = Path(work) / "fragments.txt"
        listing.write_text("".join(f"file '{c}'\n" for c in copies), encoding="utf-8")
        partial = out.with_suffix(".part.mp4")
        await _run(clip_argv(listing, partial))
        partial.replace(out)
    return out
