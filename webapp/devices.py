"""The device registry: what each device's heartbeats said, and whether it is online now."""
import json
import logging
import re
import time
from collections import Counter
from dataclasses import dataclass, field, replace

from .board_tools import MpyFormat
from .db import transaction
from .payloads import load_object
from .schemas import HeartbeatDoc, parse

log = logging.getLogger(__name__)

MAX_HEARTBEAT = 16 * 1024
DEFAULT_INTERVAL = 10


MAX_TAGS = 16
_TAG = re.compile(r"[A-Za-z0-9_.:-]{1,32}")


class NotForgettable(ValueError):
    """A device that is online, or unknown, cannot be forgotten."""


class UnknownDevice(LookupError):
    """No device of that name has sent a heartbeat."""


def check_tags(tags):
    """The tags in lower case, sorted and each once; ValueError says which one breaks the
    rules (1 to 32 letters, digits, '_', '.', ':' or '-'; at most MAX_TAGS)."""
    if not isinstance(tags, (list, tuple)):
        raise ValueError("tags are a list of names")
    for tag in tags:
        if not isinstance(tag, str) or _TAG.fullmatch(tag) is None:
            raise ValueError("a tag is 1 to 32 letters, digits, '_', '.', ':' or '-': %r"
                             % (tag,))
    tags = sorted({t.lower() for t in tags})  # "Kitchen" is "kitchen": one tag, any case
    if len(tags) > MAX_TAGS:
        raise ValueError("a device has at most %d tags" % MAX_TAGS)
    return tags


@dataclass(frozen=True)
class Heartbeat:
    online: bool
    fw: str = None
    uptime: int = None
    boot: int = None
    mem_free: int = None
    interval: int = DEFAULT_INTERVAL
    features: tuple = ()
    files: dict = field(default_factory=dict)
    plugins: dict = field(default_factory=dict)
    reason: str = None
    probation: bool = False
    micropython: str = None  # its MicroPython release, e.g. "1.24.1"
    mpy: int = None  # sys.implementation._mpy: the .mpy format it loads


def _short_str(doc, key, limit=64):
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise ValueError("%s is not a string of at most %d characters" % (key, limit))
    return value


def parse_heartbeat(payload):
    """A Heartbeat from a `ID/status` payload (schemas.HeartbeatDoc); ValueError says what is
    wrong with it, the field first."""
    doc = load_object(payload, MAX_HEARTBEAT, "heartbeat")
    if not isinstance(doc.get("online"), bool):
        raise ValueError("heartbeat is not an object with a boolean 'online'")
    if not doc["online"]:  # a last will, or "rebooting": only the reason counts
        return Heartbeat(online=False, reason=_short_str(doc, "reason"))
    hb = parse(HeartbeatDoc, doc)
    return Heartbeat(
        online=True, fw=hb.fw, uptime=_whole(hb.uptime), boot=_whole(hb.boot),
        mem_free=_whole(hb.mem_free), interval=_whole(hb.interval) or DEFAULT_INTERVAL,
        features=tuple(hb.features), files=hb.files, plugins=hb.plugins,
        probation=hb.probation, micropython=_release(hb.micropython),
        mpy=hb.mpy or None)  # 0: a port that loads no .mpy


def _release(version):
    # (1, 24, 1, '') -> "1.24.1"; (1, 29, 0, 'preview') -> "1.29.0-preview"
    if not version:
        return None
    numbers = ".".join(str(v) for v in version if isinstance(v, int))
    extra = [v for v in version if isinstance(v, str) and v]
    return "-".join([numbers] + extra)


def _whole(value):
    return None if value is None else int(value)


@dataclass(frozen=True)
class Device:
    name: str
    online: bool
    last_seen: float
    first_seen: float
    uptime: int
    boot: int
    mem_free: int
    fw: str
    interval: int
    features: tuple
    files: dict
    plugins: dict
    note: str
    probation: bool = False  # running an update on probation: it refuses another
    micropython: str = None  # as the heartbeat said (Heartbeat)
    mpy: int = None
    tags: tuple = ()  # set by a person (Registry.set_tags), sorted

    @property
    def mpy_format(self):
        """The .mpy format it loads (board_tools.MpyFormat), None if it never said."""
        return None if self.mpy is None else MpyFormat.of_device(self.mpy)

    @property
    def runs(self):
        """What the devices page shows: "1.24.1, .mpy v6.3 (xtensa)"; None if it never said."""
        fmt = self.mpy_format
        parts = [self.micropython] if self.micropython else []
        if fmt is not None:
            parts.append(".mpy %s%s" % (fmt, " (%s)" % fmt.arch if fmt.arch else ""))
        return ", ".join(parts) or None

    @property
    def extended(self):
        """Whether it takes the extended trigger (size and one-time token)."""
        return "ext" in self.features

    @property
    def secure(self):
        """Whether it takes only signed triggers (it has a key); others obey anyone on the broker."""
        return "sig" in self.features

    def to_dict(self):
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["features"] = list(self.features)
        d["tags"] = list(self.tags)
        d["secure"] = self.secure
        fmt = self.mpy_format
        d["mpy_format"] = None if fmt is None else str(fmt)
        d["mpy_arch"] = None if fmt is None else fmt.arch
        d["runs"] = self.runs
        return d


def _stored(row, tags=()):
    """The Device as its row says, before the clock is read (see _as_of)."""
    return Device(
        name=row["name"], online=bool(row["online"]), last_seen=row["last_seen"],
        first_seen=row["first_seen"], uptime=row["uptime"], boot=row["boot"],
        mem_free=row["mem_free"], fw=row["fw"], interval=row["interval"] or DEFAULT_INTERVAL,
        features=tuple(json.loads(row["features"])), files=json.loads(row["files"]),
        plugins=json.loads(row["plugins"]), probation=bool(row["probation"]),
        micropython=row["micropython"], mpy=row["mpy"], tags=tuple(tags), note=row["note"])


def _fresh(d, misses, now):
    return now - d.last_seen <= d.interval * misses + 1


def _as_of(d, misses, now):
    # Brokers do not always deliver a last will (amqtt never does for a silent client), so a
    # device that missed `misses` heartbeats is offline whatever its last message said.
    if not d.online or _fresh(d, misses, now):
        return d
    return replace(d, online=False, note="missed %d heartbeats" % misses)


def _went_stale(d, misses, since, now):
    """Whether `d` (as stored) crossed its last missed heartbeat in (since, now]."""
    return d.online and since < d.last_seen + d.interval * misses + 1 <= now


class _Entry:
    """A device's row parsed once, with its JSON made once (Registry's cache): valid while
    the row's updated_at stays the same, which every write to a row changes (the live
    list's cursor rests on that too)."""

    __slots__ = ("updated_at", "device", "_head", "files", "files_at")

    def __init__(self, row, tags, before):
        self.updated_at = row["updated_at"]
        self.device = _stored(row, tags)
        self._head = None
        self.files = row["files"]  # JSON already
        # when this process first saw these files: a poll whose cursor is later was sent
        # them before (Listing.to_json); from an older entry when they did not change
        self.files_at = before.files_at if before is not None and before.files == self.files \
            else self.updated_at

    @property
    def head(self):
        """Device.to_dict() as JSON, but for online, note and files (the clock's and the bulky
        part, added by Listing.to_json); made when first sent: a poll sends few of the rows
        that changed since the last."""
        if self._head is None:
            doc = self.device.to_dict()
            for key in ("online", "note", "files"):
                del doc[key]
            self._head = json.dumps(doc, separators=(",", ":"))
        return self._head


class Listing:
    """Every device as of one moment (Registry.listing), sorted by name."""

    def __init__(self, entries, misses, now):
        self._entries = entries
        self.misses, self.now = misses, now
        self.devices = [_as_of(e.device, misses, now) for e in entries]

    def changed(self, since):
        """The devices whose row changed after `since`, or that went stale in (since, now]."""
        return [d for d, e in zip(self.devices, self._entries)
                if e.updated_at > since or _went_stale(e.device, self.misses, since, self.now)]

    def to_json(self, devices, files_since=None, release=None):
        """A JSON array of `devices` (Device.to_dict's form) from text made once per change;
        with files_since, a device's `files` are left out unless they changed after it; with
        `release` (Releases.matcher), each says the release it runs."""
        entries = {e.device.name: e for e in self._entries}
        parts = []
        for d in devices:
            e = entries[d.name]
            text = '%s,"online":%s,"note":%s' % (e.head[:-1], "true" if d.online else "false",
                                                  json.dumps(d.note))
            if files_since is None or e.files_at > files_since:
                text += ',"files":' + e.files
            if release is not None:
                text += ',"release":' + json.dumps(release(d.files))
            parts.append(text + "}")
        return "[" + ",".join(parts) + "]"


STATES = ("online", "offline", "probation")
SORTS = ("name", "state", "newest")
PER_PAGE = 24


def _state_rank(d):
    return 0 if not d.online else 1 if d.probation else 2


def select(devices, q=None, tag=None, state=None, sort=None):
    """The devices whose name holds `q` (any case), carrying `tag`, in `state` (STATES:
    "probation" is online on probation), sorted by SORTS[sort]: by name (as given), problems
    first (offline, then on probation), or the newest first."""
    q = q.casefold() if q else None
    tag = tag.lower() if tag else None  # tags are kept in lower case (check_tags)
    found = [d for d in devices
             if (q is None or q in d.name.casefold()) and (tag is None or tag in d.tags)
             and (state is None or (d.online if state == "online" else not d.online
                                    if state == "offline" else d.online and d.probation))]
    if sort == "state":
        found.sort(key=_state_rank)  # stable: by name within each state
    elif sort == "newest":
        found.sort(key=lambda d: -d.first_seen)
    return found


def page_of(found, page=1, per_page=PER_PAGE):
    """(the devices on `page`, the page number shown, the number of pages): a page past the
    last shows the last."""
    pages = max(1, -(-len(found) // per_page))
    page = min(max(1, page), pages)
    return found[(page - 1) * per_page:page * per_page], page, pages


def summary(devices):
    """How many devices there are, online, offline and on probation, and the tags in use."""
    online = sum(d.online for d in devices)
    return ({"devices": len(devices), "online": online, "offline": len(devices) - online,
             "probation": sum(d.online and d.probation for d in devices)},
            dict(sorted(Counter(t for d in devices for t in d.tags).items())))


class Registry:
    def __init__(self, misses=3):
        self.misses = misses
        self._cache = {}  # name -> _Entry: at 500 devices, parsing every row each poll was
        # most of a poll's time

    def record(self, db, name, hb, now=None):
        now = time.time() if now is None else now
        if not hb.online:
            # A last will or a reboot notice: keep what the device last told us.
            db.execute(
                "INSERT INTO devices (name, online, first_seen, last_seen, note, updated_at)"
                " VALUES (?,0,?,?,?,?) ON CONFLICT (name) DO UPDATE SET online = 0,"
                " note = excluded.note, updated_at = excluded.updated_at",
                (name, now, now, hb.reason, now))
            return
        db.execute(
            "INSERT INTO devices (name, online, first_seen, last_seen, uptime, boot, mem_free, fw,"
            " interval, features, files, plugins, probation, micropython, mpy, note, updated_at)"
            " VALUES (?,1,?,?,?,?,?,?,?,?,?,?,?,?,?,NULL,?)"
            " ON CONFLICT (name) DO UPDATE SET online = 1, last_seen = excluded.last_seen,"
            " uptime = excluded.uptime, boot = excluded.boot, mem_free = excluded.mem_free,"
            " fw = excluded.fw, interval = excluded.interval, features = excluded.features,"
            " files = excluded.files, plugins = excluded.plugins, probation = excluded.probation,"
            " micropython = excluded.micropython, mpy = excluded.mpy,"
            " note = NULL,"
            " updated_at = excluded.updated_at",
            (name, now, now, hb.uptime, hb.boot, hb.mem_free, hb.fw, hb.interval,
             json.dumps(list(hb.features)), json.dumps(hb.files), json.dumps(hb.plugins),
             int(hb.probation), hb.micropython, hb.mpy, now))

    def record_plugin_state(self, db, name, plugin, state):
        row = db.execute("SELECT plugins FROM devices WHERE name = ?", (name,)).fetchone()
        if row is None:
            return
        plugins = json.loads(row["plugins"])
        plugins[plugin] = state
        db.execute("UPDATE devices SET plugins = ?, updated_at = ? WHERE name = ?",
                   (json.dumps(plugins), time.time(), name))

    def set_tags(self, db, name, tags, now=None):
        """Give device `name` exactly `tags` (check_tags); returns them. UnknownDevice when
        no device of that name was heard from; ValueError when a tag breaks the rules."""
        tags = check_tags(tags)
        now = time.time() if now is None else now
        with transaction(db):
            # updated_at: open pages get the change through the live list's cursor
            if db.execute("UPDATE devices SET updated_at = ? WHERE name = ?",
                          (now, name)).rowcount == 0:
                raise UnknownDevice("no device named %r has sent a heartbeat" % name)
            db.execute("DELETE FROM device_tags WHERE device = ?", (name,))
            db.executemany("INSERT INTO device_tags (device, tag) VALUES (?, ?)",
                           [(name, t) for t in tags])
        return tags

    def touch_all(self, db, now=None):
        """Every device changed now, for the live list's cursor: what a device shows that
        is not its own (the release it runs) changed."""
        db.execute("UPDATE devices SET updated_at = ?", (time.time() if now is None else now,))

    def all_tags(self, db):
        """{tag: number of devices}, for pickers and filters."""
        return dict(db.execute("SELECT tag, COUNT(*) FROM device_tags WHERE device IN"
                               " (SELECT name FROM devices) GROUP BY tag ORDER BY tag"))

    def tagged(self, db, tags):
        """The names of the devices carrying any of `tags`, sorted."""
        tags = [t.lower() for t in tags]
        if not tags:
            return []
        return [r[0] for r in db.execute(
            "SELECT DISTINCT t.device FROM device_tags t JOIN devices d ON d.name = t.device"
            " WHERE t.tag IN (%s) ORDER BY t.device" % ",".join("?" * len(tags)), tags)]

    def _tags(self, db, names):
        """{device: [tags]} of `names`."""
        names = list(names)
        rows = [r for i in range(0, len(names), 500) for r in db.execute(
            "SELECT device, tag FROM device_tags WHERE device IN (%s) ORDER BY device, tag"
            % ",".join("?" * len(names[i:i + 500])), names[i:i + 500])]
        found = {}
        for device, tag in rows:
            found.setdefault(device, []).append(tag)
        return found

    def _entries(self, db, rows):
        """The _Entry of each row (rows of `SELECT *`), parsed where its updated_at moved.
        (Request threads share the cache: each reads an entry once, and may replace it.)"""
        found, stale = {}, []
        for r in rows:
            e = self._cache.get(r["name"])
            if e is not None and e.updated_at == r["updated_at"]:
                found[r["name"]] = e
            else:
                stale.append((r, e))
        tags = self._tags(db, [r["name"] for r, _ in stale]) if stale else {}
        for r, before in stale:
            found[r["name"]] = self._cache[r["name"]] = _Entry(r, tags.get(r["name"], ()),
                                                                before)
        return [found[r["name"]] for r in rows]

    def listing(self, db, now=None):
        """Every device as of `now` (a Listing): only the rows written since the last call
        are read whole and parsed."""
        now = time.time() if now is None else now
        cache = self._cache
        stamps = db.execute("SELECT name, updated_at FROM devices ORDER BY name").fetchall()
        stale = [n for n, at in stamps if getattr(cache.get(n), "updated_at", None) != at]
        fresh = {}
        for i in range(0, len(stale), 500):
            chunk = stale[i:i + 500]
            for e in self._entries(db, db.execute("SELECT * FROM devices WHERE name IN (%s)"
                                                  % ",".join("?" * len(chunk)),
                                                  chunk).fetchall()):
                fresh[e.device.name] = e
        entries = [fresh.get(n) or cache.get(n) for n, _ in stamps]
        if len(cache) > len(stamps):  # forgotten devices
            for gone in set(cache) - {n for n, _ in stamps}:
                cache.pop(gone, None)
        # a row written between the two reads is taken as it is now: newer, never older
        return Listing([e for e in entries if e is not None], self.misses, now)

    def forget(self, db, name, now=None):
        """Drop an offline device's record and its key (a person's choice: never done by
        the server). Its push history stays; a heartbeat brings it back as new. Returns
        the Device forgotten; NotForgettable when it is online or unknown."""
        now = time.time() if now is None else now
        device = self.get(db, name, now)
        if device is None:
            raise NotForgettable("no device %s" % name)
        if device.online:
            raise NotForgettable("%s is online: it would be back with its next heartbeat; "
                                 "forget a device that is gone" % name)
        db.execute("DELETE FROM devices WHERE name = ?", (name,))
        db.execute("DELETE FROM device_keys WHERE name = ?", (name,))
        db.execute("DELETE FROM device_tags WHERE device = ?", (name,))
        db.execute("INSERT OR REPLACE INTO forgotten_devices (name, at) VALUES (?, ?)",
                   (name, now))
        return device

    def forgotten_since(self, db, since):
        """Names forgotten after `since` (the live list's cursor) and not heard from since."""
        return [r[0] for r in db.execute(
            "SELECT name FROM forgotten_devices WHERE at > ? AND name NOT IN"
            " (SELECT name FROM devices) ORDER BY name", (since,))]

    def record_ota_status(self, db, name, status):
        """Keep the last ID/ota/status of a device heard from (a dict: push/trigger.py)."""
        db.execute("UPDATE devices SET ota_status = ? WHERE name = ?", (json.dumps(status), name))

    def last_ota_status(self, db, name):
        """The last ID/ota/status the device sent (a dict), or None."""
        row = db.execute("SELECT ota_status FROM devices WHERE name = ?", (name,)).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    def get(self, db, name, now=None):
        row = db.execute("SELECT * FROM devices WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        return _as_of(self._entries(db, [row])[0].device, self.misses,
                      time.time() if now is None else now)

    def all(self, db, now=None):
        return self.listing(db, now).devices

    def carriers(self, db):
        """sha1 -> names of the devices reporting a file with that hash."""
        found = {}
        for d in self.all(db):
            for digest in set(d.files.values()):
                found.setdefault(digest, []).append(d.name)
        return found

    def changed(self, db, since, now):
        """Devices whose row changed after `since`, or that went stale in (since, now]."""
        return self.listing(db, now).changed(since)
