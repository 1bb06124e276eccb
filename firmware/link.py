# The device's link: Wi-Fi up and one MQTT session at a time (last will, subscriptions) and
# its publishes. It owns the interface, the client and the error of a publish that could not
# go out; the runtime (runtime.py) and the plugin host call its methods and never touch the
# client. Apart from runtime.py so that each compiles on the device in less
# heap (loader.main loads both at boot).
import json
from time import ticks_ms, ticks_diff

import mqtt_client

FW = "0.1.0"
MQTTClient = mqtt_client.MQTTClient  # a module global: the benchmarks swap it


def dumps(d):
    # compact, as journal.write writes the journal (which needs separators too)
    return json.dumps(d, separators=(",", ":"))


class Link:
    def __init__(self, cfg, idle):
        self.cfg = cfg
        self.idle = idle  # idle(ms): wait, keeping the plugins (buttons) alive
        p = cfg["id"].encode()
        self.prefix = p
        self.t_status = p + b"/status"
        self.t_ota = p + b"/OTA"
        self.mq = None
        self.wlan = None
        self.failed = None  # an OSError of publish(): poll() ends the session with it

    def connect(self):
        # Wi-Fi (waiting up to 20 s), then a new MQTT session; an OSError when either fails
        import network

        if self.wlan is None:
            self.wlan = network.WLAN(network.STA_IF)
            self.wlan.active(True)
        w = self.wlan
        c = self.cfg
        if not w.isconnected():
            if c["wifi_ssid"]:
                w.connect(c["wifi_ssid"], c["wifi_password"])
            t = ticks_ms()
            while not w.isconnected():
                if ticks_diff(ticks_ms(), t) > 20000:
                    raise OSError("no Wi-Fi")
                self.idle(100)
            print("wifi up", w.ifconfig()[0])
        mq = MQTTClient(self.prefix, c["broker"], c["port"], c["user"].encode(),
                        c["password"].encode(), c["keepalive"], c.get("tls", False),
                        c.get("ca") or None)
        mq.set_last_will(self.t_status, b'{"online":false}', True)
        self.mq = mq
        mq.connect()
        mq.subscribe(self.t_ota)
        mq.subscribe(self.prefix + b"/+/set")
        self.failed = None
        print("connected to %s:%d" % (c["broker"], c["port"]))

    def poll(self):
        # (topic, payload) of one message, or None after about 50 ms. An OSError, also one
        # that publish() kept, ends the session: the caller closes it and comes up again.
        if self.failed:
            raise self.failed
        self.mq.keep_alive()
        return self.mq.check_msg(50)

    def publish(self, topic, msg, retain=False):
        # True when sent. An OSError is kept for poll(): a push, a report or a plugin's
        # state goes on to its end, and the session ends at the next poll.
        try:
            self.mq.publish(topic, msg, retain)
            return True
        except OSError as e:
            self.failed = e
            return False

    def close(self):
        # end the session after an OSError: the broker sends the last will
        if self.mq:
            self.mq.close()
            self.mq = None

    def disconnect(self):
        # before a reset into an update: the retained status says so, and a clean
        # disconnect keeps the broker from sending the last will over it
        self.publish(self.t_status, b'{"online":false,"reason":"rebooting"}', True)
        self.mq.disconnect()
        self.mq = None
