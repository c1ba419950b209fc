"""The platform's own verdict on a rapid test: it does not trust a verdict it can recompute."""

from __future__ import annotations

from devices.messages import TestResult, TestVerdict
from rules.config import RulesConfig


def platform_verdict(test: TestResult, config: RulesConfig) -> TestVerdict | None:
    """The verdict from the value and method standard; None where only the device can judge (a colour card,
    a qualitative strip)."""
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
