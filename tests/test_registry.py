"""The canteen registry: a file an operator edits by hand, so every error names the file and the line."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from devices.registry import RegistryError, SchoolCalendar, load_registry, parse_registry
from devices.topics import DeviceKind
from wiring.settings import BUNDLED_REGISTRY

GOOD = """\
region: test
calendar:
  holidays:
    - 2026-10-01
    - {start: 2027-01-16, end: 2027-02-20}
  school_days: [2026-10-10]
canteens:
  - id: c1
    name: 第一小学
    district: 城区
    type: primary
    testing_tier: strips
    meals:
      - meal: lunch
        start: "11:40"
        end: "12:30"
        dishes: [米饭, 青菜]
    devices:
      - {id: det-1, kind: detector}
      - {id: cab-1, kind: cabinet, heartbeat_s: 30}
"""


def test_the_bundled_demo_registry_loads() -> None:
    registry = load_registry(BUNDLED_REGISTRY)
    assert registry.canteens
    assert {d.kind for d in registry.canteens[0].devices} == set(DeviceKind)


def test_lookup_and_school_calendar() -> None:
    registry = parse_registry(GOOD)
    found = registry.assignment("cab-1")
    assert found is not None
    assert found.canteen.id == "c1"
    assert found.device.heartbeat_s == 30
    assert registry.assignment("nobody") is None
    canteen = registry.canteens[0]
    assert registry.is_school_day(canteen, dt.date(2026, 11, 25))  # a Wednesday
    assert not registry.is_school_day(canteen, dt.date(2026, 11, 28))  # a Saturday
    assert not registry.is_school_day(canteen, dt.date(2026, 10, 1))  # National Day
    assert not registry.is_school_day(canteen, dt.date(2027, 2, 1))  # winter vacation
    assert registry.is_school_day(canteen, dt.date(2026, 10, 10))  # a make-up Saturday


def test_a_copy_with_another_calendar_answers_from_its_own() -> None:
    registry = parse_registry(GOOD)
    canteen, saturday = registry.canteens[0], dt.date(2026, 11, 28)
    assert not registry.is_school_day(canteen, saturday)  # now remembered
    made_up = registry.model_copy(update={"calendar": SchoolCalendar(school_days=[saturday])})
    assert made_up.is_school_day(made_up.canteens[0], saturday)
    assert not registry.is_school_day(canteen, saturday)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("kind: detector", "kind: fridge", r"bad\.yaml:19: canteens\.0\.devices\.0\.kind: Input should be"),
        ("    district: 城区\n", "", r"bad\.yaml:8: canteens\.0\.district: Field required"),
        ('end: "12:30"', 'end: "11:00"', r"bad\.yaml:14: canteens\.0\.meals\.0: .*ends"),
        ("dishes: [米饭, 青菜]", "dishes: []", r"bad\.yaml:17: canteens\.0\.meals\.0\.dishes"),
        ("id: cab-1", "id: det-1", r"bad\.yaml:20: device id 'det-1' is already used by canteens\[0\]\.devices\[0\]"),
        ("id: c1", "id: deadletter", r"bad\.yaml:8: canteens\.0\.id: .*reserved"),
        ("testing_tier: strips", "testing_tier: strips\n    colour: red", r"bad\.yaml:13: canteens\.0\.colour: Extra"),
        (
            "    - 2026-10-01\n",
            "    - 2026-10-01\n    - {start: 2026-05-05, end: 2026-05-01}\n",
            r"bad\.yaml:5: calendar\.holidays\.1.*ends",
        ),
        ("  - id: c1", "  - id: c1\n   bad indent: [", r"bad\.yaml:\d+: not valid YAML"),
    ],
)
def test_errors_name_file_line_and_problem(old: str, new: str, expected: str) -> None:
    assert old in GOOD
    with pytest.raises(RegistryError, match=expected):
        parse_registry(GOOD.replace(old, new, 1), "bad.yaml")


def test_every_problem_is_reported_not_just_the_first() -> None:
    text = GOOD.replace("kind: detector", "kind: fridge").replace("type: primary", "type: university")
    with pytest.raises(RegistryError) as info:
        parse_registry(text, "bad.yaml")
    assert len(info.value.problems) == 2


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="cannot read"):
        load_registry(tmp_path / "missing.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(RegistryError, match=r"empty\.yaml:1: the file is empty"):
        load_registry(empty)


ACCOUNTS = (
    GOOD
    + """\
accounts:
  - {username: gw, role: gateway}
  - {username: school-c1, role: school, canteen: c1}
  - {username: cq, role: district, district: 城区}
"""
)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("username: gw,", "username: 'g/w',", r"bad\.yaml:22: accounts\.0\.username: .*the id rule"),
        ("username: gw,", "username: 'g+w',", r"bad\.yaml:22: accounts\.0\.username: .*the id rule"),
        ("username: gw,", "username: '#',", r"bad\.yaml:22: accounts\.0\.username: .*the id rule"),
        ("username: gw,", "username: '',", r"bad\.yaml:22: accounts\.0\.username: .*is empty"),
        ("username: gw,", f"username: {'g' * 65},", r"bad\.yaml:22: accounts\.0\.username: .*65 characters"),
        ("username: gw,", "username: det-1,", r"bad\.yaml:22: username 'det-1' is already a device id"),
        ("canteen: c1}", "canteen: c9}", r"bad\.yaml:23: canteen 'c9' is not in the registry"),
        ("district: 城区}", "district: 高平市}", r"bad\.yaml:24: no canteen is in district '高平市'"),
        ("role: school, canteen: c1}", "role: school}", r"bad\.yaml:23: accounts\.1: .*needs 'canteen'"),
    ],
)
def test_account_names_are_checked_with_file_and_line(old: str, new: str, expected: str) -> None:
    assert old in ACCOUNTS
    with pytest.raises(RegistryError, match=expected):
        parse_registry(ACCOUNTS.replace(old, new, 1), "bad.yaml")


def test_a_registry_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(GOOD.encode("utf-8").replace("第一小学".encode(), b"caf\xe9"))
    with pytest.raises(RegistryError, match=r"latin1\.yaml:9: not UTF-8"):
        load_registry(path)


def test_a_handler_is_named_by_office_never_by_login() -> None:
    from tests.console_helpers import tenants_registry

    registry = tenants_registry()
    assert registry.office_of("school-a") == "城区一小食堂"
    assert registry.office_of("district-cq") == "城区监管部门"
    assert registry.office_of("city") == "市级监管部门"
    assert registry.office_of("rules") == "平台"
    assert registry.office_of(None) is None
    named = registry.model_copy(update={"authority": "晋城市市场监督管理局"})
    assert named.office_of("city") == "晋城市市场监督管理局"
