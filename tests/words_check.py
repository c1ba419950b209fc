"""What a page or message a person reads must not contain: the platform's codes, field names, Python's None,
pydantic's messages, English verdict words on a Chinese page, unfilled template fields."""

from __future__ import annotations

import re

_CODE_PATTERNS = {
    "a dotted code": re.compile(r"(?<![\w/.-])[a-z][a-z0-9]*(?:\.[a-z][a-z0-9_]*)+(?![\w/.-])"),
    "a snake_case name": re.compile(r"(?<![\w/.-])[a-z][a-z0-9]*_[a-z0-9_]+(?![\w/.-])"),
    "None": re.compile(r"\bNone\b"),
    "a pydantic message": re.compile(r"Input should be|Value error,|validation error for|Field required"),
    "an unfilled field": re.compile(r"\{[a-z_]+\}"),
}
_ENGLISH_CODES = re.compile(
    r"\b(pass|fail|suspect|invalid|qualitative|breakfast|lunch|dinner|snack|detector|cabinet|camera|open|"
    r"acknowledged|resolved|critical|warning)\b"
)
_CJK = re.compile(r"[\u4e00-\u9fff]")


def leftovers(text: str, language: str = "zh", *, allow: tuple[str, ...] = ()) -> list[str]:
    """Each thing in ``text`` a reader should never see, named with what it is; ``allow``: strings that may
    appear (names the data itself carries, such as a device id)."""
    for allowed in allow:
        text = text.replace(allowed, " ")
    found = [f"{what}: {m.group(0)!r}" for what, pattern in _CODE_PATTERNS.items() for m in pattern.finditer(text)]
    if language == "zh":
        found += [f"an English code word: {m.group(0)!r}" for m in _ENGLISH_CODES.finditer(text)]
    return found


def chinese_in(text: str) -> list[str]:
    """Chinese characters left on an English page."""
    return _CJK.findall(text)
