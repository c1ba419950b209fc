"""The item catalogue: what a rapid test may test for, published as part of the contract (docs/contract.md).

Each item names its code (``test.result``'s ``item_code``), its Chinese and English names, what it is (pesticide,
veterinary drug, ...), the foods it is tested in, and the standards it is tested by: for each standard the method,
the unit and, where the platform re-checks a reading, the limit it re-checks against. A region adds its own items
in the registry (``items:``); a code in neither is refused at the gateway with its own reason, so no unnamed code
reaches a page.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from devices.messages import ITEM_CODE_PATTERN, FoodCategory, StandardCode, TestMethod, TestUnit

ItemGroup = Literal["pesticide", "vetdrug", "additive", "toxin", "adulterant", "microbe", "other"]
_Name = Annotated[str, Field(min_length=1, max_length=64)]

GROUP_NAMES: dict[str, tuple[str, str]] = {
    "pesticide": ("农药残留", "Pesticide residue"),
    "vetdrug": ("兽药残留", "Veterinary drug residue"),
    "additive": ("食品添加剂", "Food additive"),
    "toxin": ("真菌毒素", "Mycotoxin"),
    "adulterant": ("非法添加物", "Illegal adulterant"),
    "microbe": ("微生物", "Microbe"),
    "other": ("其他", "Other"),
}


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Standard(_Frozen):
    """One standard an item is tested by, with the method and unit it prescribes."""

    code: StandardCode
    method: TestMethod
    unit: TestUnit
    #: The reading at or above which the test fails, in ``unit``; None for a qualitative (colour/line) test,
    #: where the device reads the verdict itself and the platform has nothing to re-check.
    limit: Annotated[float, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _limit_fits_unit(self) -> Standard:
        if (self.unit == "qualitative") != (self.limit is None):
            raise ValueError("a qualitative standard has no limit, and a measured one needs its limit")
        if self.unit == "%" and self.limit is not None and self.limit > 100:
            raise ValueError(f"a limit of {self.limit} % is above 100 %")
        return self


class Item(_Frozen):
    code: Annotated[str, Field(pattern=ITEM_CODE_PATTERN, max_length=64)]
    zh: _Name
    en: _Name
    group: ItemGroup
    categories: tuple[FoodCategory, ...] = Field(min_length=1)
    standards: tuple[Standard, ...] = Field(min_length=1)

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.method for s in self.standards))

    @property
    def units(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.unit for s in self.standards))

    def standard(self, code: str) -> Standard | None:
        return next((s for s in self.standards if s.code == code), None)

    def limit(self, method: str, unit: str, standard: str) -> float | None:
        """The limit a reading is re-checked against: its own standard's, or, for a standard the catalogue does
        not list, the strictest listed for the same method and unit (the platform may only be stricter)."""
        own = self.standard(standard)
        if own is not None and own.method == method and own.unit == unit:
            return own.limit
        limits = [s.limit for s in self.standards if s.method == method and s.unit == unit and s.limit is not None]
        return min(limits) if limits else None

    def accepts(self, method: str, unit: str) -> bool:
        return any(s.method == method and s.unit == unit for s in self.standards)


def _std(code: str, method: TestMethod, unit: TestUnit, limit: float | None = None) -> Standard:
    return Standard(code=code, method=method, unit=unit, limit=limit)


#: The items every region has. Limits: GB/T 5009.199-2003 and NY/T 448-2001 (enzyme inhibition, ≥ 50 % and
#: ≥ 70 % positive); GB 2760-2014 (nitrite residue in cured meat 30 mg/kg as NaNO₂; SO₂ in dried vegetables
#: 0.2 g/kg); colloidal-gold and test-card methods are read by the device.
BUILTIN_ITEMS: tuple[Item, ...] = (
    Item(
        code="pesticide.op_carbamate",
        zh="有机磷和氨基甲酸酯类农药",
        en="Organophosphate and carbamate pesticides",
        group="pesticide",
        categories=("vegetable", "fruit"),
        standards=(
            _std("GB/T 5009.199-2003", "enzyme_inhibition", "%", 50.0),
            _std("NY/T 448-2001", "enzyme_inhibition", "%", 70.0),
            _std("GB/T 5009.199-2003", "test_card", "qualitative"),
        ),
    ),
    Item(
        code="vetdrug.clenbuterol",
        zh="克伦特罗（瘦肉精）",
        en="Clenbuterol",
        group="vetdrug",
        categories=("meat",),
        standards=(
            _std("GB/T 5009.192-2003", "colloidal_gold", "qualitative"),
            _std("KJ 201706", "colloidal_gold", "qualitative"),
        ),
    ),
    Item(
        code="vetdrug.ractopamine",
        zh="莱克多巴胺",
        en="Ractopamine",
        group="vetdrug",
        categories=("meat",),
        standards=(_std("KJ 201706", "colloidal_gold", "qualitative"),),
    ),
    Item(
        code="additive.nitrite",
        zh="亚硝酸盐",
        en="Nitrite",
        group="additive",
        categories=("meat", "vegetable", "other"),
        standards=(_std("GB 5009.33-2016", "spectrophotometry", "mg/kg", 30.0),),
    ),
    Item(
        code="additive.sulfite",
        zh="二氧化硫",
        en="Sulphur dioxide",
        group="additive",
        categories=("vegetable", "fruit", "grain", "other"),
        standards=(_std("GB 5009.34-2022", "spectrophotometry", "mg/kg", 200.0),),
    ),
    Item(
        code="toxin.aflatoxin_b1",
        zh="黄曲霉毒素 B1",
        en="Aflatoxin B1",
        group="toxin",
        categories=("grain",),
        standards=(_std("GB 5009.22-2016", "colloidal_gold", "qualitative"),),
    ),
    Item(
        code="adulterant.formaldehyde",
        zh="甲醛",
        en="Formaldehyde",
        group="adulterant",
        categories=("aquatic",),
        standards=(_std("SC/T 3025-2006", "test_card", "qualitative"),),
    ),
)


class ItemCatalogue:
    """The built-in items and a region's own, by code. A region may add items but not redefine one."""

    def __init__(self, items: Iterable[Item] = BUILTIN_ITEMS) -> None:
        self._items: dict[str, Item] = {}
        for item in items:
            if item.code in self._items:
                raise ValueError(f"item {item.code!r} is defined twice")
            self._items[item.code] = item

    def extended(self, extra: Iterable[Item]) -> ItemCatalogue:
        return ItemCatalogue([*self._items.values(), *extra])

    def get(self, code: str) -> Item | None:
        return self._items.get(code)

    def __contains__(self, code: object) -> bool:
        return code in self._items

    def __iter__(self) -> Iterator[Item]:
        return iter(self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def name(self, code: str, language: str = "zh") -> str | None:
        item = self._items.get(code)
        if item is None:
            return None
        return item.zh if language == "zh" else item.en


BUILTIN = ItemCatalogue()


def catalogue_document(items: ItemCatalogue = BUILTIN) -> list[dict[str, object]]:
    """The catalogue as published (docs/contract/items.json)."""
    return [item.model_dump(mode="json") for item in items]


def catalogue_table(items: ItemCatalogue = BUILTIN) -> str:
    """Markdown: one row per item and standard (what docs/contract.md's "The item catalogue" holds)."""
    rows = ["| item_code | 名称 | name | 类别 | foods | method_std | method | unit | fails at |", "|---" * 9 + "|"]
    for item in items:
        group = GROUP_NAMES[item.group][0]
        foods = ", ".join(item.categories)
        for s in item.standards:
            limit = "device reads it" if s.limit is None else f"{'≥' if s.unit == '%' else '>'} {s.limit:g} {s.unit}"
            rows.append(
                f"| `{item.code}` | {item.zh} | {item.en} | {group} | {foods} | {s.code} | `{s.method}` | "
                f"`{s.unit}` | {limit} |"
            )
    return "\n".join(rows) + "\n"
