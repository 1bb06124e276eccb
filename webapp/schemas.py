"""The declared shape of every JSON request body and query string of the API, and of the JSON
that devices publish over MQTT (pydantic, strict).

Nothing in a route uses a request's input before it has passed one of these: a string where a
boolean belongs, a number beyond what SQLite stores, a lone surrogate, a field nobody reads is
a 400 that names the field (`BadInput`). Query strings are text by nature, so numbers there
are converted, but bounded just the same. Names are checked by webapp/names.py afterwards:
these models fix types and bounds, the naming rules stay in one place.
"""
from typing import Annotated, Any, Dict, List, Literal, Optional, Union

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictFloat,
                      StrictInt, StrictStr, StringConstraints, ValidationError,
                      field_validator, model_validator)

from .push.states import LIST_FILTERS

SQLITE_MAX = 2 ** 63 - 1  # SQLite's INTEGER: an id beyond it cannot exist (and cannot be asked)
MAX_IDS = 500


class BadInput(ValueError):
    """A request's input does not have its declared shape; the message names the field."""


def _unicode(text):
    # a lone surrogate ("\ud800" in JSON) is not text: SQLite and UTF-8 cannot hold it
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("not valid Unicode (a lone surrogate)") from None
    return text


Text = Annotated[StrictStr, AfterValidator(_unicode)]


def _text(max_length, min_length=0, pattern=None):
    # the bounds on the string itself (on Text they would count the validator's "items")
    return Annotated[StrictStr, StringConstraints(min_length=min_length, max_length=max_length,
                                                  pattern=pattern), AfterValidator(_unicode)]


Name = _text(128, 1)


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", populate_by_name=True)


class NewDevice(_Body):
    """POST /api/devices"""
    name: Name
    rotate: StrictBool = False


class NewPush(_Body):
    """POST /api/pushes: `file` or `files` (stored files), `delete` (names on the device);
    `devices`, or `device` for one."""
    file: Optional[Name] = None
    files: Optional[List[Name]] = Field(None, max_length=64)
    as_: Optional[Name] = Field(None, alias="as")
    devices: Optional[List[Name]] = Field(None, max_length=MAX_IDS)
    device: Optional[Name] = None
    delete: List[Name] = Field(default_factory=list, max_length=64)
    force: StrictBool = False
    mpy: StrictBool = False  # each .py as NAME.mpy, precompiled for the device
    tags: List[_text(32, 1)] = Field(default_factory=list, max_length=16)
    all_online: StrictBool = False
    only_needing: StrictBool = False  # skip the devices that list these files already

    @model_validator(mode="after")
    def _one_way_each(self):
        # two ways to say one thing, both used: which one was meant? refuse, do not guess
        if self.file is not None and self.files is not None:
            raise ValueError("give 'file' or 'files', not both")
        if self.device is not None and self.devices is not None:
            raise ValueError("give 'device' or 'devices', not both")
        for name in set(self.devices or ()):
            if self.devices.count(name) > 1:
                raise ValueError("%s is named twice in 'devices'" % name)
        return self


class NewRelease(_Body):
    """POST /api/releases as JSON: stored files under their names on the device."""
    name: Name
    files: Dict[_text(64, 1), Name] = Field(max_length=8)
    delete_extra: StrictBool = False


class NewRollout(_Body):
    """POST /api/rollouts: a release, the devices (names, tags, every online one), and how it
    goes (rollout/store.Settings; threshold in percent here)."""
    release: Name
    devices: List[Name] = Field(default_factory=list, max_length=5000)
    tags: List[_text(32, 1)] = Field(default_factory=list, max_length=16)
    all_online: StrictBool = False
    canary: Annotated[StrictInt, Field(ge=0, le=100)] = 1
    wave_size: Annotated[StrictInt, Field(ge=1, le=5000)] = 10
    concurrency: Annotated[StrictInt, Field(ge=1, le=64)] = 4
    threshold: Annotated[Union[StrictInt, StrictFloat], Field(ge=0, le=100)] = 20
    auto_continue: StrictBool = False
    offline_wait: Optional[Annotated[Union[StrictInt, StrictFloat],
                                     Field(ge=0, le=30 * 24 * 3600)]] = None


class DeviceTags(_Body):
    """PUT /api/devices/NAME/tags (the naming rules: devices.check_tags)"""
    tags: List[_text(32, 1)] = Field(max_length=16)


class _Query(BaseModel):
    # numbers come as text: converted (not strict), but finite and bounded; a parameter
    # nobody reads (a cache buster) is let be
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)


class DevicesQuery(_Query):
    """GET /api/devices, and the devices page (/): a view is asked for with any of q, tag,
    state, sort, page and per_page (devices.select, devices.page_of)."""
    since: Optional[float] = None
    q: Optional[_text(64)] = None  # a part of the name, any case
    tag: Optional[_text(32)] = None
    state: Optional[Literal["online", "offline", "probation"]] = None
    sort: Optional[Literal["name", "state", "newest"]] = None
    page: Optional[Annotated[int, Field(ge=1, le=100000)]] = None
    per_page: Optional[Annotated[int, Field(ge=1, le=200)]] = None
    # "changed": a device's files only when they changed after `since` (a live list keeps
    # what it was sent: most of a heartbeat is its file list, which seldom changes)
    files: Literal["all", "changed"] = "all"

    @field_validator("q", "tag", "state", "sort", "page", "per_page", mode="before")
    @classmethod
    def _blank_is_none(cls, value):
        return None if value == "" else value  # a form's blank field: no filter

    def wants_view(self):
        return any(v is not None for v in (self.q, self.tag, self.state, self.sort, self.page,
                                           self.per_page))


class PushesQuery(_Query):
    """GET /api/pushes"""
    device: Optional[Annotated[str, StringConstraints(max_length=64),
                               AfterValidator(_unicode)]] = None
    state: Optional[Literal[LIST_FILTERS]] = None
    ids: Optional[Annotated[str, Field(max_length=MAX_IDS * 20)]] = None
    since: Optional[float] = None
    limit: Annotated[int, Field(ge=1, le=500)] = 50

    def id_list(self):
        return parse_ids(self.ids or "", "ids")


def parse_ids(text, field="ids"):
    """'1,2,3' -> [1, 2, 3]: each a whole number 1..2**63-1, at most MAX_IDS; BadInput."""
    ids = []
    for part in text.split(","):
        if not part:
            continue
        if not part.isascii() or not part.isdigit() or len(part) > 19 or \
                not 0 < int(part) <= SQLITE_MAX:
            raise BadInput("%s: %r is not a push id (a whole number 1 to %d)"
                           % (field, part[:24], SQLITE_MAX))
        ids.append(int(part))
    if len(ids) > MAX_IDS:
        raise BadInput("%s: at most %d ids" % (field, MAX_IDS))
    return ids


def parse(model, data):
    """`model` made from `data` (a dict); BadInput names the first field that is wrong."""
    if not isinstance(data, dict):
        raise BadInput("send a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        msg = first["msg"].replace("Value error, ", "", 1)
        raise BadInput("%s: %s" % (where, msg[:1].lower() + msg[1:])) from None



# -- MQTT: what devices publish (anyone on the broker may write it) ---------------------------

class _FromDevice(BaseModel):
    # a newer firmware may add fields: they are let be, the declared ones are strict
    model_config = ConfigDict(strict=True, extra="ignore")


# A port without an RTC sends ints; the unix port's time.time() is a float: both, bounded.
Count = Annotated[Union[StrictInt, StrictFloat], Field(ge=0, le=2 ** 53)]
Short = _text(32)
Sha1 = _text(40, 40, r"^[0-9a-f]{40}$")
PluginName = _text(32, 1, r"^[A-Za-z0-9_-]{1,32}$")


class HeartbeatDoc(_FromDevice):
    """ID/status while online (docs/protocol.md, "Heartbeat")."""
    online: Literal[True]
    fw: Optional[Short] = None
    uptime: Optional[Count] = None
    boot: Optional[Count] = None
    mem_free: Optional[Count] = None
    interval: Optional[Annotated[Union[StrictInt, StrictFloat], Field(ge=1, le=86400)]] = None
    features: Annotated[List[Short], Field(max_length=32)] = []
    files: Annotated[Dict[_text(64), Sha1], Field(max_length=256)] = {}
    plugins: Dict[PluginName, Dict[str, Any]] = {}
    probation: StrictBool = False  # an update runs on probation: not confirmed yet
    # sys.implementation.version and ._mpy (the .mpy format it loads)
    micropython: Optional[Annotated[List[Union[StrictInt, Short]], Field(max_length=4)]] = None
    mpy: Optional[Annotated[StrictInt, Field(ge=0, le=0xFFFF)]] = Field(None, alias="_mpy")


DEVICE_STATES = ("connecting", "connected", "verified", "rebooting", "failed", "confirmed",
                 "rolled_back")


class OtaStatusDoc(_FromDevice):
    """ID/ota/status (docs/protocol.md, "Status")."""
    state: Literal[DEVICE_STATES]
    token: Text = ""
    reason: Text = ""
    detail: Text = ""
    file: Text = ""
    sha1: Text = ""
