"""A school enters its weekly menu in the console (a CSV file or pasted): stored for the rules engine, shown on
the canteen page, every bad line named; districts and the city read it and change nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from console.menus import MenuError, parse_menu_csv
from tests.console_helpers import ConsoleRig, csrf_of

TOMORROW = "2026-11-26"  # the rig's clock stands on Wednesday 2026-11-25
AFTER = "2026-11-27"


@pytest.fixture
def rig(tmp_path: Path) -> ConsoleRig:
    return ConsoleRig(tmp_path)


def test_a_school_imports_a_csv_menu_and_the_rules_store_has_it(rig: ConsoleRig) -> None:
    client = rig.client("school-a")
    csrf = csrf_of(client.get("/canteens/c-a/menu").text)
    csv = f"date,meal,dishes\n{TOMORROW},lunch,米饭、青菜、番茄炒蛋、红烧鱼\n{AFTER},lunch,小米粥;鸡蛋\n"
    files = {"file": ("第48周菜单.csv", ("\ufeff" + csv).encode(), "text/csv")}
    response = client.post("/canteens/c-a/menu", data={"csrf_token": csrf}, files=files)
    assert response.status_code == 303
    tomorrow = dt.date.fromisoformat(TOMORROW)
    assert rig.rules.menus.dishes("c-a", tomorrow, "lunch") == ["米饭", "青菜", "番茄炒蛋", "红烧鱼"]
    assert rig.rules.menus.dishes("c-a", tomorrow + dt.timedelta(days=1), "lunch") == ["小米粥", "鸡蛋"]
    assert rig.rules.menus.dishes("c-a", tomorrow - dt.timedelta(days=1), "lunch") is None  # today is untouched
    page = client.get("/canteens/c-a/menu").text
    assert "已保存 2 餐的菜单" in page
    assert "红烧鱼" in page
    assert "米饭、青菜" in client.get("/canteens/c-a").text  # today: the registry's fixed dishes


def test_bad_lines_are_named_and_nothing_is_stored(rig: ConsoleRig) -> None:
    client = rig.client("school-a")
    csrf = csrf_of(client.get("/canteens/c-a/menu").text)
    text = f"date,meal,dishes\n{TOMORROW},lunch,米饭\n2026-13-01,lunch,米饭\n{TOMORROW},supper,米饭\n"
    response = client.post("/canteens/c-a/menu", data={"csrf_token": csrf, "text": text})
    assert response.status_code == 422
    assert "menu.csv:3：“2026-13-01”不是日期（如 2026-12-07）" in response.text
    assert "menu.csv:4：“supper”不是餐次（早餐、午餐、晚餐、加餐）" in response.text
    assert rig.rules.menus.dishes("c-a", dt.date.fromisoformat(TOMORROW), "lunch") is None
    past = client.post("/canteens/c-a/menu", data={"csrf_token": csrf, "text": "2026-11-24,lunch,米饭"})
    assert past.status_code == 422
    assert "2026-11-24 早于今天；菜单只能从今天起设置" in past.text
    served = client.post("/canteens/c-a/menu", data={"csrf_token": csrf, "text": f"{TOMORROW},早餐,小米粥"})
    assert served.status_code == 422
    assert "menu.csv:1：本食堂不供应早餐" in served.text  # the canteen serves lunch only
    english = rig.client("school-a")
    english.cookies.set("shian_lang", "en")
    answer = english.post(
        "/canteens/c-a/menu",
        data={"csrf_token": csrf_of(english.get("/canteens/c-a/menu").text), "text": f"{TOMORROW},早餐,小米粥"},
    )
    assert "menu.csv:1: this canteen does not serve Breakfast" in answer.text


def test_only_the_school_changes_its_menu(rig: ConsoleRig) -> None:
    district = rig.client("district-cq")
    page = district.get("/canteens/c-a/menu")
    assert page.status_code == 200
    assert "menu-form" not in page.text
    posted = district.post("/canteens/c-a/menu", data={"csrf_token": csrf_of(page.text), "text": "x"})
    assert posted.status_code == 403
    other = rig.client("school-b")
    assert other.get("/canteens/c-a/menu").status_code == 404
    csrf = csrf_of(other.get("/canteens/c-b/menu").text)
    assert (
        other.post("/canteens/c-a/menu", data={"csrf_token": csrf, "text": f"{TOMORROW},lunch,米饭"}).status_code == 404
    )


def test_a_gbk_file_from_excel_with_chinese_meals_and_full_width_commas_is_taken(rig: ConsoleRig) -> None:
    """What Excel on Chinese Windows saves: GBK, the header in Chinese, the meal as the menu page shows it,
    full-width commas, dates written 2026/11/27."""
    client = rig.client("school-a")
    csrf = csrf_of(client.get("/canteens/c-a/menu").text)
    text = f'日期,餐次,菜品\r\n{TOMORROW},午餐,"米饭，青菜，红烧肉"\r\n2026/11/27，中餐，面条、卤蛋\r\n'
    files = {"file": ("第48周.csv", text.encode("gbk"), "text/csv")}
    response = client.post("/canteens/c-a/menu", data={"csrf_token": csrf}, files=files)
    assert response.status_code == 303, response.text
    tomorrow = dt.date.fromisoformat(TOMORROW)
    assert rig.rules.menus.dishes("c-a", tomorrow, "lunch") == ["米饭", "青菜", "红烧肉"]
    assert rig.rules.menus.dishes("c-a", tomorrow + dt.timedelta(days=1), "lunch") == ["面条", "卤蛋"]
    garbage = {"file": ("x.csv", b"\xff\xfe\x00\xd8\x81", "text/csv")}
    refused = client.post("/canteens/c-a/menu", data={"csrf_token": csrf}, files=garbage)
    assert refused.status_code == 422
    assert "不是 UTF-8 也不是 GBK" in refused.text


def test_the_parser_takes_spreadsheet_exports() -> None:
    rows = parse_menu_csv('\ufeff日期,餐次,菜品\n2026-12-07,Lunch,"番茄炒蛋, 米饭"\n\n2026-12-08,lunch,面条\n')
    assert [(r.day.isoformat(), r.meal, r.dishes) for r in rows] == [
        ("2026-12-07", "lunch", ["番茄炒蛋", "米饭"]),
        ("2026-12-08", "lunch", ["面条"]),
    ]
    with pytest.raises(MenuError, match="menu_empty"):
        parse_menu_csv("date,meal,dishes\n")
