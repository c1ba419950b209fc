"""The platform's verdict on a rapid test, decided here and nowhere else: the rules raise their alerts by it,
storage stores it (so every page, bulletin, board and public face counts it), and the device's or typist's own
verdict is kept beside it only to be shown as what it was."""

from __future__ import annotations

from typing import Protocol

from devices.messages import TestVerdict
from rules.config import RulesConfig


class Judgeable(Protocol):
    """What a verdict is judged from: a ``test.result`` or a stored row of one."""

    @property
    def result(self) -> TestVerdict: ...
    @property
    def method(self) -> str | None: ...
    @property
    def method_std(self) -> str: ...
    @property
    def unit(self) -> str | None: ...
    @property
    def value(self) -> float | None: ...
    @property
    def control_delta_a(self) -> float | None: ...


def platform_verdict(test: Judgeable, config: RulesConfig) -> TestVerdict | None:
    """The platform's re-check from the value and method standard; None where only the device can judge (a
    colour card, a qualitative strip)."""
    if test.control_delta_a is not None and test.control_delta_a < config.control_delta_a_min:
        return "invalid"  # the enzyme was inactive: nothing this run measured means anything
    if test.method != "enzyme_inhibition" or test.unit != "%" or test.value is None:
        return None
    threshold = config.enzyme_threshold(test.method_std)
    if test.value >= threshold:  # exactly the threshold is positive
        return "fail"
    if test.value >= config.suspect_from_pct:
        return "suspect"
    return "pass"


def judged_verdict(test: Judgeable, config: RulesConfig) -> TestVerdict:
    """The verdict the platform stands by: its re-check where it makes one, else the device's. A void run is
    void whatever the device said, and a device's 不合格 is never overturned (the platform may only be
    stricter)."""
    recheck = platform_verdict(test, config)
    if recheck == "invalid":
        return "invalid"
    if test.result == "fail" or recheck == "fail":
        return "fail"
    return recheck or test.result
