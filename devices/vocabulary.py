"""The contract's codes in words, Chinese and English: what a verdict, a method, a meal, a device kind, a food
category, a camera's violation and a kitchen area are called. Every face of the platform (the alert texts, the
console, the public pages) reads them from here; item names are the item catalogue's (devices/items.py)."""

from __future__ import annotations

from typing import Literal

Language = Literal["zh", "en"]
Words = dict[str, tuple[str, str]]  # code -> (zh, en)

VERDICTS: Words = {
    "pass": ("合格", "Pass"),
    "fail": ("不合格", "Fail"),
    "suspect": ("可疑", "Suspect"),
    "invalid": ("无效", "Invalid"),
}
METHODS: Words = {
    "enzyme_inhibition": ("酶抑制法", "Enzyme inhibition"),
    "test_card": ("速测卡", "Test card"),
    "colloidal_gold": ("胶体金", "Colloidal gold"),
    "spectrophotometry": ("分光光度法", "Spectrophotometry"),
}
MEALS: Words = {
    "breakfast": ("早餐", "Breakfast"),
    "lunch": ("午餐", "Lunch"),
    "dinner": ("晚餐", "Dinner"),
    "snack": ("加餐", "Snack"),
}
KINDS: Words = {
    "detector": ("快检仪", "Detector"),
    "cabinet": ("留样柜", "Sample cabinet"),
    "camera": ("摄像头", "Camera"),
}
CATEGORIES: Words = {
    "vegetable": ("蔬菜", "Vegetable"),
    "fruit": ("水果", "Fruit"),
    "meat": ("肉类", "Meat"),
    "aquatic": ("水产", "Aquatic"),
    "egg": ("蛋类", "Egg"),
    "grain": ("粮食", "Grain"),
    "other": ("其他", "Other"),
}
VIOLATIONS: Words = {
    "no_mask": ("未戴口罩", "No mask"),
    "no_hat": ("未戴厨师帽", "No hat"),
    "no_uniform": ("未穿工作服", "No uniform"),
    "smoking": ("吸烟", "Smoking"),
    "phone": ("玩手机", "Using a phone"),
    "rodent": ("发现老鼠", "Rodent"),
    "bin_open": ("垃圾桶未盖", "Bin left open"),
    "unattended_flame": ("灶台无人看管", "Unattended flame"),
    "stranger": ("陌生人闯入", "Stranger"),
}
AREAS: Words = {
    "receiving": ("验收区", "Receiving"),
    "prep": ("切配区", "Preparation"),
    "cooking": ("烹饪区", "Cooking"),
    "washing": ("清洗区", "Washing"),
    "disinfection": ("消毒区", "Disinfection"),
    "storage": ("库房", "Storage"),
    "sample_room": ("留样间", "Sample room"),
    "serving": ("备餐区", "Serving"),
}
UNITS: Words = {"%": ("%", "%"), "mg/kg": ("mg/kg", "mg/kg"), "qualitative": ("定性", "Qualitative")}
#: A qualitative test's verdict as a strip or card is read.
QUALITATIVE: Words = {
    "pass": ("阴性", "negative"),
    "fail": ("阳性", "positive"),
    "suspect": ("可疑", "doubtful"),
    "invalid": ("无效", "void"),
}


def word(words: Words, code: str | None, language: Language) -> str:
    """``code`` in words; a code the table does not know is shown as it is, never dropped."""
    if code is None:
        return ""
    entry = words.get(code)
    return entry[0 if language == "zh" else 1] if entry else code


def number(value: float) -> str:
    """A reading as the console writes it: one decimal (62.5, 12.0)."""
    return f"{value:.1f}"


def short_reading(value: float | None, unit: str | None, result: str, language: Language) -> str:
    """A reading as a table's cell shows it: 62.5 %, 35.2 mg/kg, 阴性."""
    if value is None or unit in (None, "qualitative"):
        return word(QUALITATIVE, result, language)
    return f"{number(value)} {unit}"


def reading(value: float | None, unit: str | None, result: str, language: Language) -> str:
    """What a test read, in words with its unit: 抑制率 62.5 %, 含量 35.2 mg/kg, 阳性."""
    if value is None or unit in (None, "qualitative"):
        return word(QUALITATIVE, result, language)
    if unit == "%":
        return f"抑制率 {number(value)} %" if language == "zh" else f"{number(value)} % inhibition"
    return f"含量 {number(value)} {unit}" if language == "zh" else f"{number(value)} {unit}"
