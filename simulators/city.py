"""The reference city: Jincheng's 456 school canteens and 3 off-campus meal suppliers, generated reproducibly.

Six county-level districts; a realistic mix of kindergartens, primary and middle schools; 347 canteens with
rapid-test coverage (109 with a lab and detector, 238 with test strips and a strip reader); every canteen with a
sample cabinet and several cameras — about 5,000 devices.
"""

from __future__ import annotations

import random
from typing import Any

#: District -> (code, school canteens).
DISTRICTS: dict[str, tuple[str, int]] = {
    "城区": ("cq", 110),
    "泽州县": ("zz", 92),
    "高平市": ("gp", 88),
    "阳城县": ("yc", 70),
    "陵川县": ("lc", 48),
    "沁水县": ("qs", 48),
}
SCHOOL_CANTEENS = 456
SUPPLIERS = 3
LAB_CANTEENS = 109
STRIP_CANTEENS = 238
TYPE_NAMES = {"kindergarten": "幼儿园", "primary": "小学", "middle": "中学", "supplier": "集体用餐配送单位"}
DISHES = [
    "米饭",
    "馒头",
    "小米粥",
    "番茄炒蛋",
    "青椒肉丝",
    "清炒白菜",
    "红烧豆腐",
    "土豆丝",
    "紫菜蛋汤",
    "炖鸡块",
    "蒸南瓜",
    "拌黄瓜",
    "西红柿面",
    "包子",
    "牛奶",
    "水果",
]
CALENDAR = {
    "holidays": [
        {"start": "2026-10-01", "end": "2026-10-08"},  # National Day
        {"start": "2027-01-16", "end": "2027-02-21"},  # winter vacation
        "2027-04-05",  # Qingming
        {"start": "2027-05-01", "end": "2027-05-05"},  # Labour Day
        {"start": "2027-07-10", "end": "2027-08-31"},  # summer vacation
    ],
    "school_days": ["2026-10-11"],  # a make-up Sunday
}


def _meals(kind: str, rng: random.Random) -> list[dict[str, Any]]:
    def meal(name: str, start: str, end: str, count: int, weekdays: list[int] | None = None) -> dict[str, Any]:
        entry: dict[str, Any] = {"meal": name, "start": start, "end": end, "dishes": rng.sample(DISHES, count)}
        if weekdays:
            entry["weekdays"] = weekdays
        return entry

    if kind == "kindergarten":
        return [
            meal("breakfast", "08:00", "08:40", 3),
            meal("lunch", "11:30", "12:20", 4),
            meal("snack", "15:00", "15:30", 2),
        ]
    if kind == "primary":
        meals = [meal("lunch", "11:40", "12:40", rng.randint(3, 5))]
        return ([meal("breakfast", "07:10", "07:50", 3)] if rng.random() < 0.4 else []) + meals
    if kind == "middle":  # boarding schools serve three meals, some on Sunday evening too
        return [
            meal("breakfast", "06:40", "07:20", 3),
            meal("lunch", "11:50", "12:50", rng.randint(4, 6)),
            meal("dinner", "17:30", "18:20", rng.randint(3, 5), [1, 2, 3, 4, 5, 7] if rng.random() < 0.5 else None),
        ]
    return [meal("lunch", "10:30", "13:00", 6)]  # a supplier delivers lunches to schools without a canteen


def generate_city(seed: int = 2026) -> dict[str, Any]:
    """The registry of the reference city as plain data (dump it to YAML, or validate it as a Registry)."""
    rng = random.Random(seed)
    slots = [(district, code) for district, (code, count) in DISTRICTS.items() for _ in range(count)]
    tiers = ["lab"] * LAB_CANTEENS + ["strips"] * STRIP_CANTEENS
    tiers += ["none"] * (SCHOOL_CANTEENS - len(tiers))
    rng.shuffle(tiers)
    canteens = []
    numbers: dict[str, int] = {}
    for (district, code), tier in zip(slots, tiers, strict=True):
        kind = rng.choices(["kindergarten", "primary", "middle"], weights=[35, 45, 20])[0]
        numbers[code] = numbers.get(code, 0) + 1
        canteens.append(
            _canteen(
                rng, f"jc-{code}-{numbers[code]:03d}", district=district, kind=kind, tier=tier, number=numbers[code]
            )
        )
    for n in range(1, SUPPLIERS + 1):
        district = list(DISTRICTS)[n - 1]
        canteens.append(_canteen(rng, f"jc-sup-{n:03d}", district=district, kind="supplier", tier="lab", number=n))
    return {
        "version": 1,
        "region": "jincheng",
        "timezone": "Asia/Shanghai",
        "calendar": CALENDAR,
        "canteens": canteens,
        "accounts": _accounts(canteens),
    }


def _canteen(
    rng: random.Random, canteen_id: str, *, district: str, kind: str, tier: str, number: int
) -> dict[str, Any]:
    devices: list[dict[str, Any]] = []
    if tier != "none":
        devices.append({"id": f"{canteen_id}-det1", "kind": "detector", "heartbeat_s": 60})
    devices.append({"id": f"{canteen_id}-cab1", "kind": "cabinet", "heartbeat_s": 60})
    devices += [
        {"id": f"{canteen_id}-cam{i}", "kind": "camera", "heartbeat_s": 30} for i in range(1, rng.randint(7, 11) + 1)
    ]
    return {
        "id": canteen_id,
        "name": f"晋城市{district}第{number}{TYPE_NAMES[kind]}食堂",
        "district": district,
        "type": kind,
        "testing_tier": tier,
        "meals": _meals(kind, rng),
        "devices": devices,
    }


def _accounts(canteens: list[dict[str, Any]]) -> list[dict[str, Any]]:
    accounts: list[dict[str, Any]] = [
        {"username": "shian-gateway", "role": "gateway"},
        {"username": "jc-city-smr", "role": "city"},
    ]
    accounts += [
        {"username": f"jc-edu-{code}", "role": "district", "district": district}
        for district, (code, _) in DISTRICTS.items()
    ]
    accounts += [{"username": f"school-{c['id']}", "role": "school", "canteen": c["id"]} for c in canteens]
    return accounts
