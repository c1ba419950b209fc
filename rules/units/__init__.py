"""The rule units, one module per family, and the table of units the engine runs (in this order).

Adding a rule: write a unit (a :class:`~rules.units.base.RuleUnit` with typed tables for its state, answering
records and ticks with effects), add it to :data:`UNITS`, give its rule a message in ``rules/messages.py`` and
a scenario under ``simulators/scenarios/`` (docs/rules.md walks through it).
"""

from rules.units.base import Observation, RuleContext, RuleUnit
from rules.units.cabinet import CabinetUnit
from rules.units.cameras import CamerasUnit
from rules.units.clock import ClockUnit
from rules.units.coverage import CoverageUnit
from rules.units.devices import DevicesUnit
from rules.units.inspections import InspectionsUnit
from rules.units.rapid_tests import TestsUnit
from rules.units.samples import SamplesUnit
from rules.units.suppliers import SuppliersUnit

#: Every unit, in the order it sees each record and each tick.
UNITS: tuple[type[RuleUnit], ...] = (
    ClockUnit,
    DevicesUnit,
    TestsUnit,
    CoverageUnit,
    SamplesUnit,
    CabinetUnit,
    CamerasUnit,
    SuppliersUnit,
    InspectionsUnit,
)

__all__ = ["UNITS", "Observation", "RuleContext", "RuleUnit"]
