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


#: Shanxi's 11 prefecture-level cities (code, name): a generated province has one city of the reference city's
#: shape per name; Jincheng is the reference city itself.
PROVINCE_CITIES: list[tuple[str, str]] = [
    ("ty", "太原市"),
    ("dt", "大同市"),
    ("yq", "阳泉市"),
    ("cz", "长治市"),
    ("jc", "晋城市"),
    ("sz", "朔州市"),
    ("jz", "晋中市"),
    ("yu", "运城市"),
    ("xz", "忻州市"),
    ("lf", "临汾市"),
    ("ll", "吕梁市"),
]
_NUMERALS = "一二三四五六"


def generate_city(seed: int = 2026) -> dict[str, Any]:
    """The registry of the reference city as plain data (dump it to YAML, or validate it as a Registry)."""
    canteens = _city_canteens(random.Random(seed), "jc", "晋城市", DISTRICTS)
    return _registry("jincheng", canteens, [("jc", DISTRICTS)], city_account="jc-city-smr")


def generate_province(seed: int = 2026, cities: int = 11) -> dict[str, Any]:
    """A generated province of ``cities`` cities (at most 11): Jincheng as in :func:`generate_city`, the others of
    the same shape (six districts of the same sizes, named by number) — about 5,000 canteens and 54,000 devices
    for all 11. One province account (role ``city``: it sees everything) and each city's district accounts."""
    if not 1 <= cities <= len(PROVINCE_CITIES):
        raise ValueError(f"a province has 1 to {len(PROVINCE_CITIES)} cities, not {cities}")
    chosen = sorted(PROVINCE_CITIES[:cities], key=lambda c: c[0] != "jc")  # the reference city first, whole
    canteens: list[dict[str, Any]] = []
    districts: list[tuple[str, dict[str, tuple[str, int]]]] = []
    for code, name in chosen:
        shape = (
            DISTRICTS
            if code == "jc"
            else {f"{name}{_NUMERALS[i]}区": (f"d{i + 1}", count) for i, (_, count) in enumerate(DISTRICTS.values())}
        )
        canteens += _city_canteens(random.Random(seed if code == "jc" else f"{seed}:{code}"), code, name, shape)
        districts.append((code, shape))
    return _registry("shanxi", canteens, districts, city_account="sx-province-smr")


def _city_canteens(
    rng: random.Random, city: str, city_name: str, districts: dict[str, tuple[str, int]]
) -> list[dict[str, Any]]:
    """A city's school canteens (its tiers shuffled: 109 with a lab, 238 with strips, the rest untested) and its
    three meal suppliers."""
    slots = [(district, code) for district, (code, count) in districts.items() for _ in range(count)]
    tiers = ["lab"] * LAB_CANTEENS + ["strips"] * STRIP_CANTEENS
    tiers += ["none"] * (len(slots) - len(tiers))
    rng.shuffle(tiers)
    canteens = []
    numbers: dict[str, int] = {}
    for (district, code), tier in zip(slots, tiers, strict=True):
        kind = rng.choices(["kindergarten", "primary", "middle"], weights=[35, 45, 20])[0]
        numbers[code] = numbers.get(code, 0) + 1
        number = numbers[code]
        canteen_id = f"{city}-{code}-{number:03d}"
        canteens.append(_canteen(rng, canteen_id, city_name, district=district, kind=kind, tier=tier, number=number))
    for n in range(1, SUPPLIERS + 1):
        district = list(districts)[n - 1]
        canteen_id = f"{city}-sup-{n:03d}"
        canteens.append(_canteen(rng, canteen_id, city_name, district=district, kind="supplier", tier="lab", number=n))
    return canteens


def _registry(
    region: str,
    canteens: list[dict[str, Any]],
    districts: list[tuple[str, dict[str, tuple[str, int]]]],
    *,
    city_account: str,
) -> dict[str, Any]:
    accounts: list[dict[str, Any]] = [
        {"username": "shian-gateway", "role": "gateway"},
        {"username": city_account, "role": "city"},
    ]
    accounts += [
        {"username": f"{city}-edu-{code}", "role": "district", "district": district}
        for city, shape in districts
        for district, (code, _) in shape.items()
    ]
    accounts += [{"username": f"school-{c['id']}", "role": "school", "canteen": c["id"]} for c in canteens]
    return {
        "version": 1,
        "region": region,
        "timezone": "Asia/Shanghai",
        "calendar": CALENDAR,
        "canteens": canteens,
        "accounts": accounts,
    }


def _canteen(
    rng: random.Random, canteen_id: str, city_name: str, *, district: str, kind: str, tier: str, number: int
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
        "name": f"{city_name}{district.removeprefix(city_name)}第{number}{TYPE_NAMES[kind]}食堂",
        "district": district,
        "type": kind,
        "testing_tier": tier,
        "meals": _meals(kind, rng),
        "devices": devices,
    }
