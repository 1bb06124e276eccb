# The plugin host of the runtime (the plugin API is documented at the top of runtime.py):
# loads the plugins named in the settings, routes ID/<name>/set to them, polls them,
# publishes their state. A plugin's exception, or one that fails to load, is logged and
# survived, except on probation, where it fails the update (docs/safety.md, "Healthy"):
# recorded for safeboot (probation.crash), then a reset.
import gc
from link import dumps


class _Ctx:
    # What a plugin sees of the runtime.

    def __init__(self, host, name):
        self._host = host
        self.name = name
        self.debug = host.rt.debug
        self.plugin = None
        self.topic = None

    def publish_state(self):
        if self not in self._host.dirty:
            self._host.dirty.append(self)

    def log(self, *args):
        print(self.name + ":", *args)


class Host:
    def __init__(self, rt):
        self.rt = rt
        self.ctxs = []  # their _Ctx, with .plugin and .topic (the state topic)
        self.set_topics = {}  # b"ID/<name>/set" -> _Ctx
        self.dirty = []
        cfg = rt.cfg
        for name in cfg["plugins"]:
            ctx = _Ctx(self, name)
            try:
                ctx.plugin = __import__(name).create(ctx, cfg.get(name) or {})
            except Exception as e:
                self._error("plugin " + name, e)
                continue
            t = rt.prefix + b"/" + ctx.plugin.name.encode()
            ctx.topic = t + b"/state"
            self.set_topics[t + b"/set"] = ctx
            self.ctxs.append(ctx)
            gc.collect()

    def on_set(self, topic, msg):
        ctx = self.set_topics.get(topic)
        if ctx is None:
            if self.rt.debug:
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

    def _publish(self, ctx):
        self.rt.mq.publish(ctx.topic, dumps(self._state(ctx)).encode(), True)

    def publish_all(self):
        for ctx in self.ctxs:
            self._publish(ctx)

    def publish_dirty(self):
        while self.dirty:
            self._publish(self.dirty.pop())

    def _error(self, where, e):
        # where: "lamp.poll", "plugin lamp" (its load)
        rt = self.rt
        print(where, "failed:", repr(e))
        if rt.probation and rt.guard:
            rt.guard.crash("%s: %s: %s" % (where, type(e).__name__, e))
            import machine

            machine.reset()
