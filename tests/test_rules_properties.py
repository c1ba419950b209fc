"""For any sequence of events and clock moves: never two open alerts for one key, and every alert ends open,
acknowledged or resolved — also across restarts and operator actions."""

from __future__ import annotations

import datetime as dt
import sqlite3
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.topics import Channel, DeviceKind
from rules.alerts import AlertError
from tests.rules_helpers import MORNING, Harness

steps = st.lists(
    st.one_of(
        st.tuples(st.just("test"), st.floats(0, 100), st.sampled_from(["pass", "fail"]), st.sampled_from(["S1", "S2"])),
        st.tuples(st.just("reading"), st.floats(-5, 15), st.booleans()),
        st.tuples(st.just("status"), st.sampled_from(["online", "offline"])),
        st.tuples(st.just("violation"), st.floats(0, 1)),
        st.tuples(st.just("clock"), st.integers(1, 6 * 3600)),
        st.tuples(
            st.just("ack"),
        ),
        st.tuples(
            st.just("resolve"),
        ),
        st.tuples(
            st.just("restart"),
        ),
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_one_open_alert_per_key_whatever_happens(sequence: list[tuple[object, ...]]) -> None:  # noqa: PLR0912 - one branch per kind of step
    with tempfile.TemporaryDirectory() as tmp:
        h = Harness(Path(tmp), start=MORNING)
        for step in sequence:
            kind = step[0]
            if kind == "test":
                h.test(float(step[1]), result=str(step[2]), sample_no=str(step[3]))  # type: ignore[arg-type]
            elif kind == "reading":
                h.reading(float(step[1]), door_open=bool(step[2]))  # type: ignore[arg-type]
            elif kind == "status":
                h.feed(
                    h.factories["cam1"].status(str(step[1]), h.clock.now()), DeviceKind.CAMERA, Channel.STATUS, "cam1"
                )
            elif kind == "violation":
                event = h.factories["cam1"].ai_violation(h.clock.now())
                h.feed(event.model_copy(update={"confidence": step[1]}), DeviceKind.CAMERA, Channel.EVENT, "cam1")
            elif kind == "clock":
                h.after(dt.timedelta(seconds=int(step[1])))  # type: ignore[call-overload]
            elif kind in ("ack", "resolve"):
                for alert in h.store.alerts(state="open")[:1]:
                    try:
                        if kind == "ack":
                            h.store.acknowledge(alert.alert_id, "school-c1", "seen", h.clock.now())
                        else:
                            h.store.resolve(alert.alert_id, "operator", "fixed", h.clock.now())
                    except AlertError:
                        pass
            else:
                h.restart()
        db = sqlite3.connect(h.path)
        open_per_key = db.execute(
            "SELECT dedup_key, COUNT(*) FROM alerts WHERE state != 'resolved' GROUP BY dedup_key HAVING COUNT(*) > 1"
        ).fetchall()
        assert open_per_key == []
        assert {a.state for a in h.store.alerts()} <= {"open", "acknowledged", "resolved"}
        for alert in h.store.alerts():
            actions = [entry["action"] for entry in h.store.audit_for(alert.alert_id)]
            assert actions[0] == "opened"
            assert (alert.state == "resolved") == ("resolved" in actions)
        db.close()
        h.store.close()
