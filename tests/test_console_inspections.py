"""Inspections in the console: a district's inspector records a visit in its district (photos as links, a
deadline), sees the week's plan and confirms the rectification; a school sees its own canteen's visits but never
the plan, and records nothing; a visit outside the inspector's district or with a bad photo link is refused."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from fastapi.testclient import TestClient

from rules.inspections import InspectionBook
from tests.console_helpers import ConsoleRig, csrf_of
from tests.rules_helpers import MORNING


def _form(client: TestClient, **values: str) -> dict[str, str]:
    page = client.get("/inspections")
    base = {
        "canteen": "c-a",
        "inspector": "市场监管局 赵敏",
        "visited_at": "2026-11-25T10:30",
        "findings": "冷藏柜内生熟混放",
        "photos": "https://photos.example.invalid/1.jpg\nhttps://photos.example.invalid/2.jpg",
        "rectify_by": "2026-11-30",
        "week": "2026-W48",
    }
    return {**base, **values, "csrf_token": csrf_of(page.text)}


def test_a_district_records_and_confirms_a_visit_that_its_school_can_see(tmp_path: Path) -> None:
    rig = ConsoleRig(tmp_path)
    district = rig.client("district-cq")
    page = district.get("/inspections")
    assert page.status_code == 200
    assert 'id="plan"' in page.text  # the week's draw, for the regulators
    assert 'id="inspection-form"' in page.text

    answer = district.post("/inspections", data=_form(district))
    assert answer.status_code == 303
    book = InspectionBook(tmp_path / "rules.sqlite")
    (visit,) = book.between(rig.clock.now().replace(year=2025), rig.clock.now().replace(year=2027))
    assert (visit.canteen_id, visit.recorded_by, len(visit.photos)) == ("c-a", "district-cq", 2)
    assert visit.visited_at.isoformat() == "2026-11-25T10:30:00+08:00"

    school = rig.client("school-a")
    seen = school.get("/inspections")
    assert "冷藏柜内生熟混放" in seen.text
    assert 'id="plan"' not in seen.text  # a school never learns when the next surprise visit comes
    assert 'id="inspection-form"' not in seen.text
    assert school.post("/inspections", data=_form(school)).status_code == 403
    assert "冷藏柜内生熟混放" not in rig.client("school-b").get("/inspections").text

    confirm = district.post(
        f"/inspections/{visit.inspection_id}/rectified", data={"csrf_token": csrf_of(district.get("/inspections").text)}
    )
    assert confirm.status_code == 303
    done = book.get(visit.inspection_id)
    assert done is not None
    assert done.rectified_by == "district-cq"
    book.close()


def test_a_visit_outside_the_district_or_with_a_bad_link_is_refused(tmp_path: Path) -> None:
    rig = ConsoleRig(tmp_path)
    district = rig.client("district-cq")
    assert district.post("/inspections", data=_form(district, canteen="c-c")).status_code == 404
    bad = district.post("/inspections", data=_form(district, photos="not a link"))
    assert bad.status_code == 422
    assert "photos" in bad.text
    early = district.post("/inspections", data=_form(district, rectify_by="2026-11-01"))
    assert early.status_code == 422
    assert "before the visit" in early.text
    book = InspectionBook(tmp_path / "rules.sqlite")
    assert book.between(rig.clock.now().replace(year=2025), rig.clock.now().replace(year=2027)) == []
    book.close()


def test_the_plan_gives_each_canteens_reasons_in_words_and_a_printable_visit_sheet(tmp_path: Path) -> None:
    rig = ConsoleRig(tmp_path, start=MORNING - dt.timedelta(days=3))  # Sunday before 2026-W48
    rig.raise_alert("c-a", rule="test.failed")  # known on Monday
    rig.clock.set(MORNING)  # Wednesday
    rig.raise_alert("c-a", rule="test.failed")  # Wednesday's: the week's plan does not move for it
    page = rig.client("district-cq").get("/inspections").text
    assert "已 12 周未检查" in page  # never visited: the reasons, not a JSON of counts
    assert '{"' not in page
    sheet = rig.client("district-cq").get("/inspections/sheet", params={"week": "2026-W48", "canteen": "c-a"})
    assert sheet.status_code == 200
    assert "留样：每道菜 ≥ 125 g，0–8 °C 冷藏，≥ 48 小时" in sheet.text
    assert "2026-11-29" in sheet.text  # the week's Sunday: the deadline
    assert "周一时未处置的严重告警 1 条" in sheet.text
    assert (
        rig.client("school-a").get("/inspections/sheet", params={"week": "2026-W48", "canteen": "c-a"}).status_code
        == 403
    )
    assert (
        rig.client("district-cq").get("/inspections/sheet", params={"week": "W48", "canteen": "c-a"}).status_code == 400
    )
