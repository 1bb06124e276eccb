# The link of runtime.Runtime rt: Wi-Fi up, the MQTT session (last will, subscriptions, the
# state published at connect) and the heartbeat. Apart from runtime.py so that each compiles
# on the device in less heap (loader.main loads both at boot).
import gc
import json
import time
from time import ticks_ms, ticks_diff

import mqtt_client

FW = "0.1.0"
FILES = ".files.json"  # the heartbeat's "files", written at boot (startup.file_hashes)
MQTTClient = mqtt_client.MQTTClient  # a module global: the benchmarks swap it


def dumps(d):
    try:
        return json.dumps(d, separators=(",", ":"))
    except TypeError:  # older MicroPython without separators
        return json.dumps(d)


def wifi(rt):
    import network

    if rt.wlan is None:
        rt.wlan = network.WLAN(network.STA_IF)
        rt.wlan.active(True)
    w = rt.wlan
    if w.isconnected():
        return
    c = rt.cfg
    if c["wifi_ssid"]:
        w.connect(c["wifi_ssid"], c["wifi_password"])
    t = ticks_ms()
    while not w.isconnected():
        if ticks_diff(ticks_ms(), t) > 20000:
            raise OSError("no Wi-Fi")
        rt._idle(100)
    print("wifi up", w.ifconfig()[0])


def connect(rt):
    c = rt.cfg
    mq = MQTTClient(rt.prefix, c["broker"], c["port"], c["user"].encode(),
                    c["password"].encode(), c["keepalive"], c.get("tls", False),
                    c.get("ca") or None)
    mq.set_last_will(rt.t_status, b'{"online":false}', True)
    rt.mq = mq
    mq.connect()
    mq.subscribe(rt.t_ota)
    mq.subscribe(rt.prefix + b"/+/set")
    rt.link_error = None
    print("connected to %s:%d" % (c["broker"], c["port"]))
    heartbeat(rt)
    rt.plugins.publish_all()


def heartbeat(rt):
    gc.collect()
    d = {"online": True, "fw": FW, "uptime": int(time.time() - rt.t0), "boot": rt.boot,
         "mem_free": gc.mem_free(), "interval": rt.cfg["heartbeat"],
         "features": rt.features, "plugins": rt.plugins.states()}
    if rt.probation:
        d["probation"] = True
    msg = dumps(d).encode()
    d = None
    # in parts: the file list (a kilobyte on a full flash) is sent from the flash, or from
    # RAM where the flash had no room for it, never copied
    f = None if rt.files else open(FILES, "rb")
    try:
        rt.mq.publish(rt.t_status, (memoryview(msg)[:-1], b',"files":', f or rt.files, b"}"),
                      True)
    finally:
        if f:
            f.close()
    if rt.debug:
        print("heartbeat", gc.mem_free())
