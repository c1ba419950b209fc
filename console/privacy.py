"""What a public output (the kiosk, the parents' digest and its page, topic and pushes) may carry: the rules
of docs/public.md in code, applied where public text is made and checked by the tests on every output.

Allowed: the canteen's own name, the day's tests in words (sample, supplier and batch, item, method, value,
verdict, the tester's name as the programme shows it), samples kept against the menu, whether the cabinet
stayed cold, how alerts were handled. Never: another canteen's anything, device and message ids, internal
codes (item codes, rule names, alert ids), accounts, phone numbers, notes typed by staff.
"""

from __future__ import annotations

import re

#: Mainland mobile numbers and landlines with an area code, however they are spaced.
PHONE = re.compile(r"(?<!\d)(?:\+?86[\s-]?)?(?:1[3-9]\d[\s-]?\d{4}[\s-]?\d{4}|0\d{2,3}[\s-]?\d{7,8})(?!\d)")
#: A code of the platform's (``pesticide.op_carbamate``, ``test.failed``): public text says it in words.
INTERNAL_CODE = re.compile(r"\b[a-z]+\.[a-z][a-z0-9_]+\b")
MASK = "***"


def scrub(text: str | None) -> str:
    """Free text a device or a person typed, fit for a public output: phone numbers masked."""
    return PHONE.sub(MASK, text or "")
