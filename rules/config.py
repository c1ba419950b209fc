"""The rules' numbers (docs/rules.md): defaults here, a YAML rules file over them, per-region overrides.

Every threshold is configuration. The file is checked once at start-up; an error names the file, the key and
the problem.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from devices.items import BUILTIN
from runtime.errors import ShianError


class RulesConfigError(ShianError, ValueError):
    """A rules file that cannot be used; the message names the file, the region and the key."""

    pass


class RulesConfig(BaseModel):
    """Every threshold of every rule, with its default (docs/rules.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The limit a reading fails at is the item catalogue's, per item and standard (devices/items.py).
    #: Inhibition from this value up to the item's limit is suspect and needs a retest.
    suspect_from_pct: float = Field(default=40.0, ge=0, le=100)
    #: A control ΔA0 below this means the enzyme is inactive: the run is void.
    control_delta_a_min: float = Field(default=0.3, ge=0)
    followup_within: dt.timedelta = dt.timedelta(hours=4)
    coverage_deadline: dt.time = dt.time(10, 30)
    sample_grace: dt.timedelta = dt.timedelta(minutes=60)
    sample_min_weight_g: float = Field(default=125.0, gt=0)
    sample_min_hold: dt.timedelta = dt.timedelta(hours=48)
    cabinet_min_c: float = 0.0
    cabinet_max_c: float = 8.0
    temperature_warning_after: dt.timedelta = dt.timedelta(minutes=10)
    temperature_critical_after: dt.timedelta = dt.timedelta(minutes=30)
    temperature_clear_after: dt.timedelta = dt.timedelta(minutes=5)
    door_open_after: dt.timedelta = dt.timedelta(minutes=5)
    offline_missed_heartbeats: int = Field(default=3, ge=1)
    #: platform.mass_offline: this share of the fleet (and at least this many devices) falling silent within
    #: the window is an outage, not so many broken devices.
    mass_offline_share: float = Field(default=0.2, gt=0, le=1)
    mass_offline_min_devices: int = Field(default=20, ge=2)
    mass_offline_window: dt.timedelta = dt.timedelta(minutes=1)
    #: platform.rules_lag: the engine's oldest unapplied record has waited this long.
    rules_lag_alert_after: dt.timedelta = dt.timedelta(minutes=1)
    #: Cameras count as silent only during kitchen hours: this long before a meal's service starts until it ends.
    kitchen_opens_before_meal: dt.timedelta = dt.timedelta(hours=2)
    camera_confidence_min: float = Field(default=0.8, ge=0, le=1)
    camera_window: dt.timedelta = dt.timedelta(minutes=10)
    #: camera.video_lost: a camera heard on MQTT whose picture stopped this long ago, in kitchen hours.
    video_lost_after: dt.timedelta = dt.timedelta(seconds=60)
    #: Unacknowledged critical alerts escalate school -> district -> city after these delays.
    escalate_after: list[dt.timedelta] = Field(
        default_factory=lambda: [dt.timedelta(minutes=30), dt.timedelta(minutes=60)]
    )
    #: An unacknowledged critical alert is sent again this often (null: never).
    remind_every: dt.timedelta | None = dt.timedelta(minutes=30)
    language: Literal["zh", "en"] = "zh"

    @model_validator(mode="after")
    def _consistent(self) -> RulesConfig:
        if self.cabinet_min_c >= self.cabinet_max_c:
            raise ValueError("cabinet_min_c must be below cabinet_max_c")
        if self.temperature_critical_after < self.temperature_warning_after:
            raise ValueError("temperature_critical_after must not be shorter than temperature_warning_after")
        lowest = min(s.limit for item in BUILTIN for s in item.standards if s.unit == "%" and s.limit is not None)
        if self.suspect_from_pct >= lowest:
            raise ValueError(
                f"suspect_from_pct ({self.suspect_from_pct}) must be below every threshold ({lowest} %, the item"
                " catalogue's lowest inhibition limit)"
            )
        return self


class RulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    defaults: dict[str, Any] = Field(default_factory=dict)
    #: Overrides by region (the registry's ``region``), e.g. a 150 g minimum sample weight.
    regions: dict[str, dict[str, Any]] = Field(default_factory=dict)


def load_rules(path: Path | None, region: str) -> RulesConfig:
    """The defaults, the file's ``defaults``, then its ``regions[region]``; errors name the file and key. A file
    whose ``regions`` name a region other than the registry's is refused: its overrides would silently apply
    nowhere (a misspelt region is the usual cause)."""
    source = str(path) if path else "the built-in defaults"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) if path else {}
        rules_file = RulesFile.model_validate(raw or {})
        unknown = sorted(set(rules_file.regions) - {region})
        if unknown:
            raise RulesConfigError(
                f"{source}: regions {', '.join(map(repr, unknown))} match no region of the registry "
                f"(the registry's region is {region!r})"
            )
        return RulesConfig.model_validate({**rules_file.defaults, **rules_file.regions.get(region, {})})
    except OSError as exc:
        raise RulesConfigError(f"{source}: cannot read the rules file: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise RulesConfigError(f"{source}: not valid YAML: {exc}") from None
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or 'rules'}: {e['msg']}" for e in exc.errors(include_url=False)
        ]
        raise RulesConfigError(f"{source} (region {region!r}): " + "; ".join(problems)) from None
