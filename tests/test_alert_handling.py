"""The rule of what a person's resolution must say lives in the domain (``rules.handling``): a failed test is
resolved with its food's disposition, a camera violation with its review, whether in the console's page, through
the API or with ``shian alerts resolve``; each way in refuses the same thing with the same reason."""

from __future__ import annotations

import html
from pathlib import Path

import pytest

from rules.handling import NEEDS_DISPOSITION, NEEDS_REVIEW
from rules.store import RulesStore
from shian.cli import main
from tests.console_helpers import ConsoleRig, csrf_of, tenants_registry
from tests.rules_helpers import MORNING


@pytest.fixture
def rig(tmp_path: Path) -> ConsoleRig:
    return ConsoleRig(tmp_path)


@pytest.mark.parametrize(("rule", "reason"), [("test.failed", NEEDS_DISPOSITION), ("camera.violation", NEEDS_REVIEW)])
def test_the_console_page_refuses_a_resolution_without_what_the_rule_asks(
    rig: ConsoleRig, rule: str, reason: str
) -> None:
    alert = rig.raise_alert("c-a", rule)
    client = rig.client("school-a")
    page = client.get(f"/alerts/{alert.alert_id}")
    client.post(f"/alerts/{alert.alert_id}/resolve", data={"csrf_token": csrf_of(page.text), "note": "处理完毕"})
    assert reason in html.unescape(client.get(f"/alerts/{alert.alert_id}").text)  # the flash says why
    assert rig.rules.get(alert.alert_id).state == "open"  # type: ignore[union-attr]


@pytest.mark.parametrize(("rule", "reason"), [("test.failed", NEEDS_DISPOSITION), ("camera.violation", NEEDS_REVIEW)])
def test_the_api_refuses_it_with_the_same_reason(rig: ConsoleRig, rule: str, reason: str) -> None:
    alert = rig.raise_alert("c-a", rule)
    _, token = rig.console.store.issue_token("school-a", "ops", rig.clock.now())
    answer = rig.client().post(
        f"/api/v1/alerts/{alert.alert_id}/resolve", json={"note": "x"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 409
    assert answer.json()["detail"] == reason
    done = rig.client().post(
        f"/api/v1/alerts/{alert.alert_id}/resolve",
        json={"note": "x", "disposition": "destroyed", "review": "confirmed"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert done.status_code == 200


def test_the_cli_refuses_it_with_the_same_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = RulesStore(tmp_path / "rules-shian-gateway.sqlite")  # where `shian alerts` finds it in --data-dir
    failed, _ = store.raise_alert(
        dedup_key="k", rule="test.failed", severity="critical", canteen_id="c-a", message="快检不合格", evidence={},
        at=MORNING,
    )  # fmt: skip
    store.close()
    registry = tmp_path / "registry.yaml"
    registry.write_text(tenants_registry().model_dump_json(), encoding="utf-8")
    args = ["--data-dir", str(tmp_path), "--registry", str(registry)]
    resolve = ["alerts", "resolve", failed.alert_id, "--operator", "王工", "--why", "处理完毕"]
    assert main([*resolve, *args]) == 1
    assert NEEDS_DISPOSITION in capsys.readouterr().err
    assert main([*resolve, "--disposition", "returned_to_supplier", *args]) == 0
    assert capsys.readouterr().out.strip() == "resolved"
