"""The declared shape of every JSON request body and query string of the API (pydantic, strict).

Nothing in a route uses a request's input before it has passed one of these: a string where a
boolean belongs, a number beyond what SQLite stores, a lone surrogate, a field nobody reads is
a 400 that names the field (`BadInput`). Query strings are text by nature, so numbers there
are converted, but bounded just the same. Names are checked by webapp/names.py afterwards:
these models fix types and bounds, the naming rules stay in one place.
"""
from typing import Annotated, List, Literal, Optional

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictStr,
                      ValidationError)

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
Name = Annotated[Text, Field(min_length=1, max_length=128)]


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", populate_by_name=True)


class NewDevice(_Body):
    """POST /api/devices"""
    name: Name
    rotate: StrictBool = False


class NewPush(_Body):
    """POST /api/pushes: `file` or `files` (stored files), `delete` (names on the device)."""
    file: Optional[Name] = None
    files: Optional[List[Name]] = Field(None, max_length=64)
    as_: Optional[Name] = Field(None, alias="as")
    devices: Optional[List[Name]] = Field(None, max_length=MAX_IDS)
    device: Optional[Name] = None
    delete: List[Name] = Field(default_factory=list, max_length=64)
    force: StrictBool = False


class _Query(BaseModel):
    # numbers come as text: converted (not strict), but finite and bounded; a parameter
    # nobody reads (a cache buster) is let be
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)


class DevicesQuery(_Query):
    """GET /api/devices"""
    since: Optional[float] = None


class PushesQuery(_Query):
    """GET /api/pushes"""
    device: Optional[Annotated[str, AfterValidator(_unicode), Field(max_length=64)]] = None
    state: Optional[Literal["done", "failed", "unconfirmed", "active"]] = None
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
        raise BadInput("%s: %s" % (where, first["msg"].lower())) from None

