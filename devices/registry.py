"""The canteen registry: which canteens exist, their meals and calendar, and the devices each one owns.

The operator maintains it as a YAML file. :func:`load_registry` reports every problem with the file name and
line, so a typo in a 456-canteen file can be found without reading all of it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, ValidationInfo, model_validator

from devices.ids import CanteenId, DeviceId
from devices.items import BUILTIN, Item, ItemCatalogue
from devices.kitchen_fields import CameraVideo, HoursWindow, ParentsLive
from devices.messages import KitchenArea, Meal
from devices.topics import DeviceKind
from devices.yaml_lines import YamlPath, line_of_path, node_lines, pydantic_path
from runtime.errors import ShianError

Name = Annotated[str, Field(min_length=1, max_length=128)]
Weekday = Annotated[int, Field(ge=1, le=7)]  # ISO weekday: 1 is Monday


class RegistryModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DateRange(RegistryModel):
    start: dt.date
    end: dt.date

    @model_validator(mode="after")
    def _ordered(self) -> DateRange:
        if self.end < self.start:
            raise ValueError(f"the range ends ({self.end}) before it starts ({self.start})")
        return self

    def __contains__(self, day: object) -> bool:
        return isinstance(day, dt.date) and self.start <= day <= self.end


class SchoolCalendar(RegistryModel):
    """Days without school. ``school_days`` are make-up working days (调休) that override the weekday rule."""

    holidays: list[dt.date | DateRange] = Field(default_factory=list)
    school_days: list[dt.date] = Field(default_factory=list)

    def is_holiday(self, day: dt.date) -> bool:
        return any(day == entry if isinstance(entry, dt.date) else day in entry for entry in self.holidays)


class MealSchedule(RegistryModel):
    """One meal: its service window, the weekdays it is served, and the dishes to keep samples of."""

    meal: Meal
    start: dt.time
    end: dt.time
    weekdays: list[Weekday] = Field(default_factory=lambda: [1, 2, 3, 4, 5])
    dishes: list[Name] = Field(min_length=1)

    @model_validator(mode="after")
    def _window(self) -> MealSchedule:
        if self.end <= self.start:
            raise ValueError(f"the service window ends ({self.end}) before it starts ({self.start})")
        return self


PasswordHash = Annotated[str, Field(pattern=r"^\$[67]\$[0-9]+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$")]


class DeviceEntry(RegistryModel):
    """One device of a canteen: its id (also its MQTT username), kind and heartbeat interval."""

    id: DeviceId
    kind: DeviceKind
    heartbeat_s: float = Field(default=60.0, gt=0)
    #: A Mosquitto password hash (``$7$...``) kept by the operator. Unset: provisioning generates a password.
    password_hash: PasswordHash | None = None
    #: A revoked device loses its broker account at the next provisioning and reload; the gateway refuses it.
    revoked: bool = False
    #: Cameras: the kitchen area it watches, and its picture (``push``, ``{pull: rtsp://…}``; docs/video.md).
    area: KitchenArea | None = None
    video: CameraVideo = "none"

    @property
    def streams(self) -> bool:
        """Whether the platform expects a picture from this device."""
        return self.video != "none" and not self.revoked


AccountRole = Literal["gateway", "school", "district", "city"]


class Account(RegistryModel):
    """A person's or service's broker account: gateways, and the supervisors who receive alerts."""

    username: DeviceId
    role: AccountRole
    #: school: the canteen whose alerts it reads and acknowledges.
    canteen: CanteenId | None = None
    #: district: the district whose alerts it reads.
    district: Name | None = None
    #: The office the account acts for, as a bulletin names who handled what (e.g. 城区市场监督管理局); by default
    #: the canteen (school), the district's supervisors (district) or the region's (city).
    office: Name | None = None
    password_hash: PasswordHash | None = None

    @model_validator(mode="after")
    def _scope(self) -> Account:
        if self.role == "school" and self.canteen is None:
            raise ValueError(f"school account {self.username!r} needs 'canteen'")
        if self.role == "district" and self.district is None:
            raise ValueError(f"district account {self.username!r} needs 'district'")
        return self


class ParentChannel(RegistryModel):
    """Where a canteen's daily digest is pushed for parents: a group robot of a parents' group, or a webhook."""

    url: Annotated[str, Field(pattern=r"^https?://")]
    #: wecom / dingtalk: a group robot's text message; json: the digest as JSON (a WeChat official-account bridge).
    format: Literal["wecom", "dingtalk", "json"] = "json"


CanteenType = Literal["primary", "middle", "kindergarten", "supplier"]
TestingTier = Literal["lab", "strips", "none"]


class Canteen(RegistryModel):
    """One canteen (or meal supplier): where it is, how it tests, when it serves, which devices it has."""

    id: CanteenId
    name: Name
    district: Name
    type: CanteenType
    testing_tier: TestingTier = "none"
    meals: list[MealSchedule] = Field(default_factory=list)
    calendar: SchoolCalendar = Field(default_factory=SchoolCalendar)
    devices: list[DeviceEntry] = Field(default_factory=list)
    #: The parents' groups and bridges that receive the daily digest (docs/public.md).
    parent_channels: list[ParentChannel] = Field(default_factory=list)
    #: The kitchen's working hours, when they are not "from before each meal to its end" (devices/kitchen.py).
    kitchen_hours: list[HoursWindow] | None = None
    #: When parents see the cameras: in the kitchen's hours, all day, or windows of the canteen's own.
    live_to_parents: ParentsLive = "kitchen_hours"
    #: The one camera the kiosk at the test-room door shows beside the day's tests (in the parents' hours).
    kiosk_camera: DeviceId | None = None


#: The device id under which a canteen's hand-entered results are stored (see :func:`manual_device_id`).
MANUAL_SUFFIX = "-manual"


def manual_device_id(canteen_id: str) -> str:
    """The detector a canteen's results entered by hand in the console are recorded as. It has no broker
    account and is not in the registry, so no MQTT client can publish as it; ids ending in ``-manual`` are
    refused in the registry."""
    return canteen_id[: 64 - len(MANUAL_SUFFIX)] + MANUAL_SUFFIX


#: Broker accounts that read one canteen's public topic (its daily digest), made by provisioning.
PUBLIC_PREFIX = "public-"


def public_account(canteen_id: str) -> str:
    """The broker account of a canteen's public topic (a parents' bridge reads the digest with it)."""
    return PUBLIC_PREFIX + canteen_id[: 64 - len(PUBLIC_PREFIX)]


#: A platform opens two connections: the gateway's (ingest, receipts, dead letters) under its registry account,
#: and the rules engine's (alerts, acknowledgements, digests) under this companion account, made by provisioning
#: with the same password. A broker that makes the client id the username (``use_username_as_clientid``, as the
#: production configuration does) would otherwise give both one client id, and each would take the other over.
RULES_SUFFIX = "-rules"


def rules_account(gateway_username: str) -> str:
    """The broker account of the rules engine's connection of the platform that logs in as ``gateway_username``."""
    return gateway_username[: 64 - len(RULES_SUFFIX)] + RULES_SUFFIX


@dataclass(frozen=True, slots=True)
class DeviceAssignment:
    canteen: Canteen
    device: DeviceEntry


Path_ = YamlPath


class Registry(RegistryModel):
    """The region's canteens, their devices, calendars and supervisor accounts."""

    version: Literal[1] = 1
    region: Name
    #: The supervising authority that issues the region's bulletins (e.g. 晋城市市场监督管理局).
    authority: Name | None = None
    timezone: str = "Asia/Shanghai"
    calendar: SchoolCalendar = Field(default_factory=SchoolCalendar)
    canteens: list[Canteen] = Field(default_factory=list)
    accounts: list[Account] = Field(default_factory=list)
    #: The region's own test items, beside the built-in catalogue (devices/items.py; docs/contract.md).
    items: list[Item] = Field(default_factory=list)

    _catalogue: ItemCatalogue = PrivateAttr(default=BUILTIN)
    _accounts: dict[str, Account] = PrivateAttr(default_factory=dict)
    _devices: dict[str, DeviceAssignment] = PrivateAttr(default_factory=dict)
    _canteens: dict[str, Canteen] = PrivateAttr(default_factory=dict)
    _zone: ZoneInfo = PrivateAttr(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    #: (canteen, day) -> school day?: the rules and the simulators ask it for every device on every tick.
    _school_days: dict[tuple[str, dt.date], bool] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> Registry:
        # parse_registry runs the same check itself so that it can name the file line of each problem.
        if not (info.context or {}).get("cross_checked_by_caller"):
            problems = [text for _, text in cross_check(self)]
            if problems:
                raise ValueError("; ".join(problems))
        return self

    def model_post_init(self, context: Any, /) -> None:
        self._devices = {
            device.id: DeviceAssignment(canteen, device) for canteen in self.canteens for device in canteen.devices
        }
        self._canteens = {canteen.id: canteen for canteen in self.canteens}
        self._accounts = {account.username: account for account in self.accounts}
        self._zone = ZoneInfo(self.timezone)
        self._school_days = {}
        if self.items and not any(True for _ in _item_problems(self.items)):  # else the cross-check says why
            self._catalogue = BUILTIN.extended(self.items)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy with its own indexes and memo, made from its own fields (pydantic's would keep these)."""
        (copy := super().model_copy(update=update, deep=deep)).model_post_init(None)
        return copy

    def office_of(self, username: str | None) -> str | None:
        """The office an account acts for, as bulletins name handlers: never a login."""
        if username is None:
            return None
        account = self._accounts.get(username)
        if account is None:
            return "平台" if username in ("rules", "storage") else "其他"
        if account.office:
            return account.office
        if account.role == "school" and account.canteen and (canteen := self.canteen(account.canteen)):
            return canteen.name
        if account.role == "district" and account.district:
            return f"{account.district}监管部门"
        return self.authority or "市级监管部门"

    @property
    def zone(self) -> ZoneInfo:
        """The region's time zone: school days, meals and kitchen hours are in its local time."""
        return self.__pydantic_private__["_zone"]  # type: ignore[no-any-return,index]  # as assignment() does

    @property
    def catalogue(self) -> ItemCatalogue:
        """Every item a test in this region may carry: the built-in ones and the registry's own."""
        return self._catalogue

    def assignment(self, device_id: str) -> DeviceAssignment | None:
        """The canteen and entry of ``device_id``, or None when the registry does not know it."""
        # Straight to the private dict: pydantic's private-attribute lookup costs more than the lookup itself,
        # and this runs for every message the gateway receives.
        devices: dict[str, DeviceAssignment] = self.__pydantic_private__["_devices"]  # type: ignore[index]
        return devices.get(device_id)

    def canteen(self, canteen_id: str) -> Canteen | None:
        return self.__pydantic_private__["_canteens"].get(canteen_id)  # type: ignore[no-any-return,index]

    def only(self, canteen_ids: Iterable[str]) -> Registry:
        """The same region with only these canteens, and the accounts that concern them (a partition's)."""
        keep = set(canteen_ids)
        unknown = keep - self._canteens.keys()
        if unknown:
            raise ValueError(f"not in the registry: {', '.join(sorted(unknown))}")
        canteens = [c for c in self.canteens if c.id in keep]
        districts = {c.district for c in canteens}
        accounts = [
            a
            for a in self.accounts
            if (a.canteen is None or a.canteen in keep) and (a.district is None or a.district in districts)
        ]
        return self.model_copy(update={"canteens": canteens, "accounts": accounts})

    def is_school_day(self, canteen: Canteen, day: dt.date) -> bool:
        """Whether ``canteen`` serves school meals on ``day``: weekday rule, make-up days and both calendars."""
        key, memo = (canteen.id, day), self.__pydantic_private__["_school_days"]  # type: ignore[index]
        known: bool | None = memo.get(key)
        if known is None:
            known = memo[key] = self._is_school_day(canteen, day)
        return known

    def _is_school_day(self, canteen: Canteen, day: dt.date) -> bool:
        if day in canteen.calendar.school_days or day in self.calendar.school_days:
            return True
        if canteen.calendar.is_holiday(day) or self.calendar.is_holiday(day):
            return False
        return any(day.isoweekday() in meal.weekdays for meal in canteen.meals) or (
            not canteen.meals and day.isoweekday() <= 5
        )


def _reserved(name: str, what: str) -> Iterator[str]:
    """Names the platform makes itself: the canteens' public accounts, their manual detectors and the rules
    engines' connections."""
    if name.startswith(PUBLIC_PREFIX):
        yield f"{what} {name!r} starts with {PUBLIC_PREFIX!r}, which names canteens' public accounts"
    if name.endswith(RULES_SUFFIX):
        yield f"{what} {name!r} ends in {RULES_SUFFIX!r}, which names the rules engines' broker accounts"
    if name.endswith(MANUAL_SUFFIX):
        yield f"{what} {name!r} ends in {MANUAL_SUFFIX!r}, which names hand-entered results"


def _item_problems(items: list[Item]) -> Iterator[tuple[Path_, str]]:
    for n, item in enumerate(items):
        if item.code in BUILTIN or any(other.code == item.code for other in items[:n]):
            yield ("items", n, "code"), f"item {item.code!r} is already in the catalogue"


def _device_problems(registry: Registry, i: int, devices: dict[str, tuple[int, int]]) -> Iterator[tuple[Path_, str]]:
    """The devices of ``canteens[i]``: reserved or already used ids (``devices`` holds those seen so far), and
    video only for cameras."""
    for j, device in enumerate(registry.canteens[i].devices):
        for problem in _reserved(device.id, "device id"):
            yield ("canteens", i, "devices", j, "id"), problem
        if device.id in devices:
            ci, dj = devices[device.id]
            yield (
                ("canteens", i, "devices", j, "id"),
                f"device id {device.id!r} is already used by canteens[{ci}].devices[{dj}] ({registry.canteens[ci].id})",
            )
        devices.setdefault(device.id, (i, j))
        if device.kind is not DeviceKind.CAMERA and (device.video != "none" or device.area is not None):
            yield ("canteens", i, "devices", j, "video"), f"device {device.id!r}: only cameras have video and area"


def cross_check(registry: Registry) -> Iterator[tuple[Path_, str]]:
    """Rules that span entries: unique canteen ids, and device ids unique across the whole region
    (a device id is also its broker username)."""
    canteens: dict[str, int] = {}
    devices: dict[str, tuple[int, int]] = {}
    for i, canteen in enumerate(registry.canteens):
        if canteen.id in canteens:
            first = canteens[canteen.id]
            yield ("canteens", i, "id"), f"canteen id {canteen.id!r} is already used by canteens[{first}]"
        canteens.setdefault(canteen.id, i)
        yield from _device_problems(registry, i, devices)
        if canteen.kiosk_camera and not any(d.id == canteen.kiosk_camera and d.streams for d in canteen.devices):
            yield (
                ("canteens", i, "kiosk_camera"),
                f"{canteen.kiosk_camera!r} is not a camera of this canteen with video",
            )
    yield from _item_problems(registry.items)
    districts = {canteen.district for canteen in registry.canteens}
    for k, account in enumerate(registry.accounts):
        if account.username in devices:
            yield ("accounts", k, "username"), f"username {account.username!r} is already a device id"
        for problem in _reserved(account.username, "username"):
            yield ("accounts", k, "username"), problem
        if account.role == "school" and account.canteen not in canteens:
            yield ("accounts", k, "canteen"), f"canteen {account.canteen!r} is not in the registry"
        if account.role == "district" and account.district not in districts:
            yield ("accounts", k, "district"), f"no canteen is in district {account.district!r}"
    usernames: dict[str, int] = {}
    for k, account in enumerate(registry.accounts):
        if account.username in usernames:
            yield (
                ("accounts", k, "username"),
                f"username {account.username!r} is already used by accounts[{usernames[account.username]}]",
            )
        usernames.setdefault(account.username, k)


# --- loading with line numbers ---------------------------------------------------------------------------


class RegistryError(ShianError, ValueError):
    """Every problem of one registry file, each as ``file:line: problem``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


#: libyaml's parser when PyYAML was built with it (Debian's and the wheels are): a province's registry (5,000
#: canteens, 5.7 MB) parses in seconds instead of minutes.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_registry(text: str, source: str = "<registry>") -> Registry:
    """Parse registry YAML; raise :class:`RegistryError` naming ``source`` and the line of each problem."""
    try:
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise RegistryError([f"{source}:{line}: not valid YAML: {exc.problem or exc}"]) from None
    if root is None:
        raise RegistryError([f"{source}:1: the file is empty"])
    if not isinstance(data, dict):
        raise RegistryError([f"{source}:1: the registry must be a mapping with 'region' and 'canteens'"])

    lines: dict[Path_, int] = {}

    def line_of(path: Path_) -> int:  # the node tree is walked only when there is something to report
        if not lines:
            lines.update(node_lines(root))
        return line_of_path(lines, path)

    try:
        registry = Registry.model_validate(data, context={"cross_checked_by_caller": True})
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            path = pydantic_path(error["loc"])
            where = ".".join(str(p) for p in path) or "registry"
            problems.append(f"{source}:{line_of(path)}: {where}: {error['msg']}")
        raise RegistryError(problems) from None
    problems = [f"{source}:{line_of(path)}: {text}" for path, text in cross_check(registry)]
    if problems:
        raise RegistryError(problems)
    return registry


def load_registry(path: Path | str) -> Registry:
    """Load a registry file; :class:`RegistryError` names the file and line of every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RegistryError([f"{path}: cannot read the registry: {exc.strerror}"]) from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise RegistryError([f"{path}:{line}: not UTF-8 text (byte {exc.start})"]) from None
    return parse_registry(text, str(path))
