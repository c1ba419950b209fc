"""The platform's verdict on a rapid test, decided here and nowhere else: the rules raise their alerts by it,
storage stores it (so every page, bulletin, board and public face counts it), and the device's or typist's own
verdict is kept beside it only to be shown as what it was."""

from __future__ import annotations

from typing import Protocol

from devices.items import ItemCatalogue
from devices.messages import TestVerdict
from rules.config import RulesConfig


class Judgeable(Protocol):
    """What a verdict is judged from: a ``test.result`` or a stored row of one."""

    @property
    def item_code(self) -> str: ...
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


def platform_verdict(test: Judgeable, config: RulesConfig, items: ItemCatalogue) -> TestVerdict | None:
    """The platform's re-check of a reading against its item's limit under its standard (the item catalogue,
    devices/items.py); None where only the device can judge (a colour card, a qualitative strip)."""
    if test.control_delta_a is not None and test.control_delta_a < config.control_delta_a_min:
        return "invalid"  # the enzyme was inactive: nothing this run measured means anything
    item = items.get(test.item_code)
    if item is None or test.value is None or test.unit is None or test.method is None:
        return None
    limit = item.limit(test.method, test.unit, test.method_std)
    if limit is None:
        return None
    if test.unit == "%":  # an inhibition rate: exactly the limit is positive, and just below it is suspect
        if test.value >= limit:
            return "fail"
        return "suspect" if test.value >= config.suspect_from_pct else "pass"
    return "fail" if test.value > limit else "pass"  # a content: exceeding the limit fails (超标)


def judged_verdict(test: Judgeable, config: RulesConfig, items: ItemCatalogue) -> TestVerdict:
    """The verdict the platform stands by: its re-check where it makes one, else the device's. A void run is
    void whatever the device said, and a device's 不合格 is never overturned (the platform may only be
    stricter)."""
    recheck = platform_verdict(test, config, items)
    if recheck == "invalid":
        return "invalid"
    if test.result == "fail" or recheck == "fail":
        return "fail"
    return recheck or test.result
