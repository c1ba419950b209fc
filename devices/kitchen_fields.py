"""What the registry says of a kitchen's hours and of its cameras' pictures: the fields, checked as read.

The registry's canteens and devices are built from these; ``devices.kitchen`` turns them into spans of time.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Weekday = Annotated[int, Field(ge=1, le=7)]  # ISO weekday: 1 is Monday


class HoursWindow(BaseModel):
    """A daily span of local time, on the listed weekdays (school days only unless ``every_day``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: dt.time
    end: dt.time
    weekdays: list[Weekday] = Field(default_factory=lambda: [1, 2, 3, 4, 5])
    #: Also on holidays and weekends (a caterer that cooks every day).
    every_day: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> HoursWindow:
        if self.end <= self.start:
            raise ValueError(f"the window ends ({self.end}) before it starts ({self.start})")
        return self


#: Parents see the picture in the kitchen's hours (the default), all day, or in windows of the canteen's own.
ParentsLive = Literal["kitchen_hours", "all_day"] | list[HoursWindow]


class PulledStream(BaseModel):
    """A camera or NVR that only serves its stream: the platform pulls it and relays it to the media server."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: rtsp://, rtmp:// or http(s):// (an HLS playlist). Never shown on any page.
    pull: Annotated[str, Field(pattern=r"^(rtsps?|rtmps?|https?)://", max_length=512)]


#: A camera's picture: none (the default: health messages only), pushed by the camera over RTMP with its stream
#: key, or pulled by the platform from the address given.
CameraVideo = Literal["none", "push"] | PulledStream
