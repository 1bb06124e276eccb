# The plugin host of the runtime: loads the plugins named in the settings, routes
# ID/<name>/set to them, polls them, publishes their state. A plugin's exception, or one
# that fails to load, is logged and survived, except on probation, where it fails the update
# (docs/safety.md, "Healthy"): recorded for safeboot (probation.crash), then a reset.
#
# Plugin API. A plugin is a module on flash named in the settings' "plugins" list with
#     create(ctx, cfg) -> plugin object        cfg = settings[<module name>] or {}
# The object has
#     name             str, the topic level: commands arrive on ID/<name>/set
#     state()          a JSON-able dict, published retained on ID/<name>/state and
#                      listed under "plugins" in the heartbeat
#     on_set(payload)  one command (bytes, at most 1024) from ID/<name>/set
#     poll()           called about every 50 ms, online or not; must return quickly
# and ctx offers
#     ctx.publish_state()  queue a publish of state() (done from the main loop)
#     ctx.log(*args)       print one line prefixed with the plugin name
#     ctx.debug            the settings' "debug" flag
# Exceptions from plugin code are logged and never stop the runtime. A plugin knows
# nothing about OTA, Wi-Fi or MQTT reconnects: its state is published again at connect.
import gc
from link import dumps


class _Ctx:
    # What a plugin sees of the runtime.

    def __init__(self, host, name):
        self._host = host
        self.name = name
        self.debug = host.debug
        self.plugin = None
        self.topic = None

    def publish_state(self):
        if self not in self._host.dirty:
            self._host.dirty.append(self)

    def log(self, *args):
        print(self.name + ":", *args)


class Host:
    def __init__(self, cfg, link, crash):
        # link: the runtime's link.Link (topics, publish); crash(reason): the runtime's, which
        # fails an update on probation
        self.link = link
        self.crash = crash
        self.debug = cfg["debug"]
        self.ctxs = []  # their _Ctx, with .plugin and .topic (the state topic)
        self.set_topics = {}  # b"ID/<name>/set" -> _Ctx
        self.dirty = []
        for name in cfg["plugins"]:
            ctx = _Ctx(self, name)
            try:
                ctx.plugin = __import__(name).create(ctx, cfg.get(name) or {})
            except Exception as e:
                self._error("plugin " + name, e)
                continue
            t = link.prefix + b"/" + ctx.plugin.name.encode()
            ctx.topic = t + b"/state"
            self.set_topics[t + b"/set"] = ctx
            self.ctxs.append(ctx)
            gc.collect()

    def on_set(self, topic, msg):
        ctx = self.set_topics.get(topic)
        if ctx is None:
            if self.debug:
                print("no plugin for", topic)
            return
        try:
            ctx.plugin.on_set(msg)
        except Exception as e:
            self._error(ctx.name + ".on_set", e)

    def poll(self):
        for ctx in self.ctxs:
            try:
                ctx.plugin.poll()
            except Exception as e:
                self._error(ctx.name + ".poll", e)

    def _state(self, ctx):
        try:
            return ctx.plugin.state()
        except Exception as e:
            self._error(ctx.name + ".state", e)
            return {}

    def states(self):
        # {name: state} for the heartbeat
        d = {}
        for ctx in self.ctxs:
            d[ctx.plugin.name] = self._state(ctx)
        return d

    def publish_all(self):
        # at connect: every plugin's state
        self.dirty = self.ctxs[:]
        self.publish_dirty()

    def publish_dirty(self):
        while self.dirty:
            ctx = self.dirty.pop()
            self.link.publish(ctx.topic, dumps(self._state(ctx)).encode(), True)

    def _error(self, where, e):
        # where: "lamp.poll", "plugin lamp" (its load)
        print(where, "failed:", repr(e))
        self.crash("%s: %s: %s" % (where, type(e).__name__, e))
