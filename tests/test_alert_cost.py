"""What raising, reminding and escalating cost does not grow with the alerts already open: counted in SQLite's own steps
(its progress handler), which a busy machine does not change, not in seconds."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rules.alerts import Alert
from rules.store import RulesStore
from tests.helpers import NOW


def _store(path: Path, open_alerts: int) -> RulesStore:
    store = RulesStore(path)
    with store.transaction():
        for i in range(open_alerts):
            store.raise_alert(
                dedup_key=f"open|{i}", rule="test.failed", severity="critical", canteen_id=f"c{i % 50}",
                message="open", evidence={}, at=NOW + dt.timedelta(seconds=i % 600),
            )  # fmt: skip
    return store


@contextmanager
def _steps(store: RulesStore) -> Iterator[Callable[[], int]]:
    """SQLite virtual-machine steps (in hundreds) taken inside the block."""
    counted = [0]

    def tick() -> int:
        counted[0] += 1
        return 0

    store._db.set_progress_handler(tick, 100)
    try:
        yield lambda: counted[0]
    finally:
        store._db.set_progress_handler(None, 100)


def _question_steps(store: RulesStore, question: Callable[[RulesStore], list[Alert]]) -> tuple[int, int]:
    """(steps, alerts answered) of ``question``, asked after one alert two hours old joined the open ones."""
    store.raise_alert(
        dedup_key="late", rule="test.failed", severity="critical", canteen_id="c0", message="late", evidence={},
        at=NOW - dt.timedelta(hours=2),
    )  # fmt: skip
    with _steps(store) as steps:
        answered = question(store)
    return steps(), len(answered)


def _due(store: RulesStore) -> list[Alert]:
    return store.due_reminders(NOW - dt.timedelta(hours=1))


def _may_move(store: RulesStore) -> list[Alert]:
    return store.escalation_candidates(NOW - dt.timedelta(hours=1))


def test_a_reminder_tick_costs_what_is_due_not_what_is_open(tmp_path: Path) -> None:
    few, due_few = _question_steps(_store(tmp_path / "few.sqlite", 100), _due)
    many, due_many = _question_steps(_store(tmp_path / "many.sqlite", 20_000), _due)
    assert due_few == due_many == 1
    assert many <= few + 5, f"{many} hundred steps with 20,000 open against {few} with 100"


def test_raising_an_alert_costs_the_same_with_many_open(tmp_path: Path) -> None:
    def raise_steps(store: RulesStore) -> int:
        with _steps(store) as steps:
            for i in range(20):
                store.raise_alert(
                    dedup_key=f"new|{i}", rule="test.failed", severity="critical", canteen_id="c1", message="new",
                    evidence={"i": i}, at=NOW,
                )  # fmt: skip
        return steps()

    few = raise_steps(_store(tmp_path / "few.sqlite", 100))
    many = raise_steps(_store(tmp_path / "many.sqlite", 20_000))
    assert many <= few * 1.5 + 5, f"{many} hundred steps with 20,000 open against {few} with 100"


def test_an_escalation_step_costs_what_may_move_not_what_is_open(tmp_path: Path) -> None:
    few, moving_few = _question_steps(_store(tmp_path / "few.sqlite", 100), _may_move)
    many, moving_many = _question_steps(_store(tmp_path / "many.sqlite", 20_000), _may_move)
    assert moving_few == moving_many == 1
    assert many <= few + 5, f"{many} hundred steps with 20,000 open against {few} with 100"
