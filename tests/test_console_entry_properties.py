"""Hand entry and the API driven with arbitrary values: never a 500, and never a silent change. A form the
console takes is stored exactly as typed (nothing cut, its time today and not ahead); one it refuses stores
nothing and names the field; an API call it refuses changes nothing."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.feed import AlertFeed
from console.manual_entry import ROW_FIELDS, SHARED_FIELDS
from console.web.app import create_app
from console.words import Words
from gateway.service import Gateway
from runtime.clock import FakeClock
from tests.console_helpers import csrf_of, login, tenants_registry, write_passwords
from tests.rules_helpers import MORNING
from tests.test_console_manual import STRIP
from wiring.build import build_gateway
from wiring.console import build_console, web_passwords_path
from wiring.settings import Settings

#: The labels the form's errors name their fields by (Chinese, the console's default).
LABELS = [Words("zh").t(key) for key in (*SHARED_FIELDS.values(), *ROW_FIELDS.values(), "read_at")]
#: The fields a form posts: the shared ones and the first sample row's.
POSTED = [*SHARED_FIELDS, *(f"{field}-0" for field in ROW_FIELDS)]
NOW = MORNING + dt.timedelta(hours=3)  # 11:00 local

odd_text = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=250, max_size=1200),
    st.sampled_from(["", " ", "\x00", "1e400", "nan", "-1", "100.5", "９", "<script>", "pesticide.chlorpyrifos"]),
    st.sampled_from(
        ["vetdrug.clenbuterol|KJ 201706|colloidal_gold", "additive.nitrite|GB 5009.33-2016|spectrophotometry"]
    ),
)
read_times = st.one_of(
    st.times().map(lambda t: t.strftime("%H:%M")),
    st.sampled_from(["", "25:00", "10:59", "11:00", "11:01", "11:02", "23:59", "00:00", "2026-11-23T09:00"]),
    st.text(max_size=20),
)


class Entry:
    def __init__(self, tmp: Path) -> None:
        settings_ = Settings(data_dir=tmp)
        registry, self.clock = tenants_registry(), FakeClock(NOW)
        self.gateway: Gateway = build_gateway(settings_, registry, self.clock)
        write_passwords(web_passwords_path(settings_), registry)
        console = build_console(settings_, registry, self.clock, AlertFeed(), manual_intake=self.gateway.submit_manual)
        self.console = console
        self.client = TestClient(create_app(console), follow_redirects=False)
        login(self.client, "school-a")

    def form(self) -> dict[str, str]:
        page = self.client.get("/canteens/c-a/tests/new").text
        return dict(re.findall(r'type="hidden" name="(\w+)" value="([^"]*)"', page)) | {"csrf_token": csrf_of(page)}


@pytest.fixture(scope="module")
def entry(tmp_path_factory: pytest.TempPathFactory) -> Entry:
    return Entry(tmp_path_factory.mktemp("entry"))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    changes=st.dictionaries(st.sampled_from(POSTED), odd_text, max_size=4),
    read_at=read_times,
)
def test_the_form_stores_what_was_typed_or_refuses_it_by_field(
    entry: Entry, changes: dict[str, str], read_at: str
) -> None:
    before = entry.gateway.spool.count_records()
    posted = {**STRIP, **changes, "read_at": read_at, **entry.form()}
    answer = entry.client.post("/canteens/c-a/tests/new", data=posted)
    assert answer.status_code in (303, 422), answer.text[:500]
    records = list(entry.gateway.spool.all_records())
    if answer.status_code == 422:
        assert len(records) == before
        errors = re.findall(r"<li>(.*?)</li>", answer.text.split('role="alert"', 1)[1].split("</ul>", 1)[0])
        assert errors
        assert all(any(label in error for label in LABELS) for error in errors), errors
        return
    filled = any(posted.get(f"{f}-0", "").strip() for f in ("sample_no", "sample_name", "value"))
    assert filled  # a form without a sample is refused
    assert len(records) == before + 1
    stored = json.loads(records[-1].payload)
    for field in SHARED_FIELDS:
        assert stored[field] == posted[field].strip()  # exactly as typed: nothing cut, nothing changed
    for field in ("sample_no", "sample_name", "food_category", "result"):
        typed = posted[f"{field}-0"].strip()
        if typed:
            assert stored[field] == typed
    item_code, standard, method = posted["test-0"].split("|")
    assert (stored["item_code"], stored["method_std"], stored["method"]) == (item_code, standard, method)
    typed_value = posted["value-0"].strip()
    assert stored["value"] == (float(typed_value) if typed_value else None)
    at = dt.datetime.fromisoformat(stored["ts"])
    assert at.date() == NOW.date()
    assert at <= NOW + dt.timedelta(minutes=1)
    assert at.strftime("%H:%M") == read_at.strip()
    assert stored["entered_by"] == "school-a"


api_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=2000),
    st.lists(st.integers(), max_size=3),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    query=st.dictionaries(
        st.sampled_from(["from", "to", "state", "severity", "rule", "district", "canteen", "limit", "offset"]),
        st.text(max_size=40),
        max_size=4,
    ),
    body=st.dictionaries(st.sampled_from(["note", "disposition", "review", "extra"]), api_values, max_size=3),
)
def test_the_api_answers_arbitrary_values_with_a_4xx_and_changes_nothing_it_refuses(
    entry: Entry, query: dict[str, str], body: dict[str, Any]
) -> None:
    listing = entry.client.get("/api/v1/alerts", params=query)
    assert listing.status_code in (200, 400, 422), listing.text[:300]
    alert, _ = entry.console.alerts.raise_alert(
        dedup_key=f"prop-{entry.clock.now().timestamp()}",
        rule="test.failed",
        severity="critical",
        canteen_id="c-a",
        message="快检不合格",
        evidence={},
        at=entry.clock.now(),
    )
    entry.clock.advance(dt.timedelta(seconds=1))
    csrf = csrf_of(entry.client.get("/alerts").text)
    answer = entry.client.post(f"/api/v1/alerts/{alert.alert_id}/resolve", json=body, headers={"X-CSRF-Token": csrf})
    assert answer.status_code in (200, 409, 422), answer.text[:300]
    after = entry.console.alerts.get(alert.alert_id)
    assert after is not None
    assert (after.state == "resolved") == (answer.status_code == 200)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"read_at": "11:30"}, "检测时间：不能晚于现在（"),  # half an hour ahead
        ({"read_at": "2026-11-27T09:00+08:00"}, "检测时间：请按 时:分 填写"),  # two days ahead, as a timestamp
        ({"read_at": "2026-11-22T09:00"}, "检测时间：请按 时:分 填写"),  # three days back
        (
            {"form_ts": "2026-11-22T09:00:00+08:00", "read_at": ""},
            "检测时间",
        ),  # the old hidden field counts for nothing
        ({"sample_name-0": "菜" * 300}, "第 1 行 样品：最多 256 个字，现为 300 个字"),
        ({"supplier": "商" * 300}, "供应商：最多 256 个字，现为 300 个字"),
        ({"test-0": "pesticide.chlorpyrifos|GB/T 5009.199-2003|enzyme_inhibition"}, "第 1 行 检测项目与标准："),
        ({"value-0": "1e400"}, "第 1 行 结果值：请填写数字"),
        ({"value-0": "130"}, "第 1 行 结果值：读数超出范围（%）"),
        ({"test-0": "vetdrug.clenbuterol|KJ 201706|colloidal_gold"}, "第 1 行 结果值：定性检测不填数值"),
        ({"sample_name-0": "", "sample_no-0": "", "value-0": ""}, "请至少填写一个样品"),
    ],
    ids=[
        "future",
        "days-ahead",
        "backdated",
        "old-hidden-time",
        "too-long",
        "too-long-shared",
        "unknown-item",
        "huge-number",
        "over-100-percent",
        "number-on-a-strip",
        "no-sample",
    ],
)
def test_a_tampered_or_impossible_entry_is_refused_naming_its_field(
    entry: Entry, change: dict[str, str], named: str
) -> None:
    before = entry.gateway.spool.count_records()
    answer = entry.client.post("/canteens/c-a/tests/new", data={**STRIP, "read_at": "10:30", **change, **entry.form()})
    assert answer.status_code == 422
    assert named in answer.text
    assert entry.gateway.spool.count_records() == before
