"""Every InfluxQL query of the boards, built from the storage schema's names (never repeated as strings).

Queries use Grafana's InfluxQL macros: ``$timeFilter`` (the board's time range), ``$__interval`` and the
template variables ``$district`` and ``$canteen`` (regex variables: ``/^$canteen$/`` matches one, several or all).
"""

from __future__ import annotations

from storage.schema import FieldName as F
from storage.schema import Measurement, Tag

M = Measurement
AREA = f'"{Tag.DISTRICT}" =~ /^$district$/'
CANTEEN = f'{AREA} AND "{Tag.CANTEEN}" =~ /^$canteen$/'
TELEMETRY = f"/^({M.CABINET}|{M.CAMERA}|{M.DETECTOR})$/"


def _q(name: str) -> str:
    return f'"{name}"'


# --- template variables ------------------------------------------------------------------------------------

DISTRICTS = f"SHOW TAG VALUES FROM {_q(M.DEVICE_STATUS)} WITH KEY = {_q(Tag.DISTRICT)}"
CANTEENS = f"SHOW TAG VALUES FROM {_q(M.DEVICE_STATUS)} WITH KEY = {_q(Tag.CANTEEN)} WHERE {AREA}"

# --- city overview -----------------------------------------------------------------------------------------

CANTEENS_TESTED = (
    f'SELECT count("n") FROM (SELECT count({_q(F.PASSED)}) AS "n" FROM {_q(M.RAPID_TEST)} '
    f"WHERE $timeFilter AND {AREA} GROUP BY {_q(Tag.CANTEEN)})"
)
CANTEENS_WITH_DETECTORS = (
    f'SELECT count("n") FROM (SELECT last({_q(F.ONLINE)}) AS "n" FROM {_q(M.DEVICE_STATUS)} '
    f"WHERE {AREA} AND {_q(Tag.KIND)} = 'detector' GROUP BY {_q(Tag.CANTEEN)})"
)
TESTS = f"SELECT count({_q(F.PASSED)}) FROM {_q(M.RAPID_TEST)} WHERE $timeFilter AND {AREA}"
PASS_RATE = f"SELECT mean({_q(F.PASSED)}) FROM {_q(M.RAPID_TEST)} WHERE $timeFilter AND {AREA}"
FAILED_TESTS = (
    f"SELECT {_q(F.SAMPLE_NAME)}, {_q(F.SUPPLIER)}, {_q(F.BATCH_NO)}, {_q(F.VALUE)}, {_q(F.UNIT)}, "
    f"{_q(F.OPERATOR)} FROM {_q(M.RAPID_TEST)} WHERE $timeFilter AND {AREA} AND {_q(Tag.RESULT)} = 'fail' "
    f"GROUP BY {_q(Tag.CANTEEN)}, {_q(Tag.ITEM_CODE)}"
)
SAMPLES_PER_MEAL = (
    f"SELECT sum({_q(F.COUNT)}) FROM {_q(M.SAMPLE_RETENTION)} WHERE $timeFilter AND {AREA} "
    f"AND {_q(Tag.ACTION)} = 'retained' GROUP BY {_q(Tag.MEAL)}"
)
UNDERWEIGHT_SAMPLES = (
    f"SELECT count({_q(F.WEIGHT_G)}) FROM {_q(M.SAMPLE_RETENTION)} WHERE $timeFilter AND {AREA} "
    f"AND {_q(Tag.ACTION)} = 'retained' AND {_q(F.WEIGHT_G)} < 125"
)
CAMERA_ONLINE_RATE = (
    f'SELECT mean("online") FROM (SELECT last({_q(F.ONLINE)}) AS "online" FROM {_q(M.DEVICE_STATUS)} '
    f"WHERE {AREA} AND {_q(Tag.KIND)} = 'camera' GROUP BY {_q(Tag.DEVICE)})"
)
ALERTS_OPENED = (
    f"SELECT sum({_q(F.COUNT)}) FROM {_q(M.ALERT)} WHERE $timeFilter AND {AREA} AND {_q(Tag.STATE)} = 'open' "
    f"GROUP BY {_q(Tag.SEVERITY)}, {_q(Tag.DISTRICT)}"
)

# --- canteen detail ----------------------------------------------------------------------------------------

TEST_TIMELINE = (
    f"SELECT {_q(F.VALUE)} FROM {_q(M.RAPID_TEST)} WHERE $timeFilter AND {CANTEEN} GROUP BY {_q(Tag.ITEM_CODE)}"
)
CABINET_TEMPERATURE = (
    f"SELECT mean({_q(F.TEMP_C)}) FROM {_q(M.CABINET)} WHERE $timeFilter AND {CANTEEN} "
    f"GROUP BY time($__interval), {_q(Tag.DEVICE)} fill(none)"
)
SAMPLES_HELD = (
    f"SELECT last({_q(F.SAMPLES_HELD)}) FROM {_q(M.CABINET)} WHERE $timeFilter AND {CANTEEN} GROUP BY {_q(Tag.DEVICE)}"
)
SAMPLES_RETAINED = (
    f"SELECT {_q(F.SAMPLE_ID)}, {_q(F.DISH_NAME)}, {_q(F.WEIGHT_G)}, {_q(F.MEAL_DATE)}, {_q(F.OPERATOR)} "
    f"FROM {_q(M.SAMPLE_RETENTION)} WHERE time > now() - 48h AND {CANTEEN} AND {_q(Tag.ACTION)} = 'retained' "
    f"GROUP BY {_q(Tag.MEAL)}"
)
CAMERA_STATUS = (
    f"SELECT last({_q(F.ONLINE)}) FROM {_q(M.DEVICE_STATUS)} WHERE {CANTEEN} AND {_q(Tag.KIND)} = 'camera' "
    f"GROUP BY {_q(Tag.DEVICE)}"
)
CANTEEN_ALERTS = (
    f"SELECT {_q(F.ALERT_ID)}, {_q(F.MESSAGE)} FROM {_q(M.ALERT)} WHERE $timeFilter AND {CANTEEN} "
    f"GROUP BY {_q(Tag.RULE)}, {_q(Tag.SEVERITY)}, {_q(Tag.STATE)}"
)

# --- device fleet ------------------------------------------------------------------------------------------

DEVICE_STATE = (
    f"SELECT last({_q(F.STATE)}) FROM {_q(M.DEVICE_STATUS)} WHERE {CANTEEN} "
    f"GROUP BY {_q(Tag.CANTEEN)}, {_q(Tag.KIND)}, {_q(Tag.DEVICE)}"
)
OFFLINE_DEVICES = (
    f'SELECT count("online") FROM (SELECT last({_q(F.ONLINE)}) AS "online" FROM {_q(M.DEVICE_STATUS)} '
    f'WHERE {CANTEEN} GROUP BY {_q(Tag.DEVICE)}) WHERE "online" = 0'
)
LAST_SEEN = f"SELECT last({_q(F.MSG_ID)}) FROM {TELEMETRY} WHERE $timeFilter AND {CANTEEN} GROUP BY {_q(Tag.DEVICE)}"
CLOCK_SKEW = (
    f"SELECT max({_q(F.SKEW_S)}), min({_q(F.SKEW_S)}) FROM {TELEMETRY} WHERE $timeFilter AND {CANTEEN} "
    f"GROUP BY {_q(Tag.DEVICE)}"
)

# --- platform health ---------------------------------------------------------------------------------------

GATEWAY_RATES = (
    f'SELECT non_negative_derivative(last({_q(F.RECEIVED)}), 1s) AS "received", '
    f'non_negative_derivative(last({_q(F.STORED)}), 1s) AS "stored", '
    f'non_negative_derivative(last({_q(F.DUPLICATES)}), 1s) AS "duplicates" '
    f"FROM {_q(M.GATEWAY)} WHERE $timeFilter GROUP BY time($__interval), {_q(Tag.INSTANCE)} fill(none)"
)
REJECTS_BY_REASON = f"SELECT last(/^rejected_/) FROM {_q(M.GATEWAY)} WHERE $timeFilter GROUP BY {_q(Tag.INSTANCE)}"
SPOOL_BACKLOG = (
    f"SELECT last({_q(F.SPOOL_BACKLOG)}) FROM {_q(M.GATEWAY)} WHERE $timeFilter "
    f"GROUP BY time($__interval), {_q(Tag.INSTANCE)} fill(none)"
)
WRITE_LAG = (
    f"SELECT max({_q(F.WRITE_LAG_S)}) FROM {_q(M.GATEWAY)} WHERE $timeFilter "
    f"GROUP BY time($__interval), {_q(Tag.INSTANCE)} fill(none)"
)

# --- kiosk (the display at the rapid-test room's door) -----------------------------------------------------

KIOSK_TESTS = (
    f"SELECT {_q(F.SAMPLE_NAME)}, {_q(Tag.ITEM_CODE)}, {_q(Tag.RESULT)}, {_q(F.VALUE)}, {_q(F.UNIT)}, "
    f"{_q(F.OPERATOR)} FROM {_q(M.RAPID_TEST)} WHERE $timeFilter AND {CANTEEN}"
)
KIOSK_PASS_RATE = f"SELECT mean({_q(F.PASSED)}) FROM {_q(M.RAPID_TEST)} WHERE $timeFilter AND {CANTEEN}"
