# Night lamp plugin: a relay, a push button that toggles it, and the built-in LED.
#
# Commands on ID/lamp/set: {"relay": bool, "led": bool} (either key), or ON / OFF / TOGGLE
# for the relay. State on ID/lamp/state: {"relay": false, "led": false}.
# The built-in LED is OFF at boot: the whole reason this project exists. On an ESP8266 it
# sits on GPIO2 and lights when the pin is LOW (led_active_low). The button pulls its pin
# to ground when pressed (GPIO0 is the FLASH button on most boards).
import json
from time import ticks_ms, ticks_diff

from machine import Pin

_DEBOUNCE_MS = 30


class Lamp:
    name = "lamp"

    def __init__(self, ctx, cfg):
        self.ctx = ctx
        self.low = cfg.get("led_active_low", True)
        self.relay = False
        self.led = False
        self.relay_pin = Pin(cfg.get("relay_pin", 5), Pin.OUT)
        self.led_pin = Pin(cfg.get("led_pin", 2), Pin.OUT)
        self._apply()
        self.button = Pin(cfg.get("button_pin", 0), Pin.IN, Pin.PULL_UP)
        self.raw = self.stable = self.button.value()
        self.since = ticks_ms()

    def _apply(self):
        self.relay_pin.value(1 if self.relay else 0)
        self.led_pin.value((0 if self.led else 1) if self.low else (1 if self.led else 0))

    def state(self):
        return {"relay": self.relay, "led": self.led}

    def _set(self, relay, led):
        if (relay, led) != (self.relay, self.led):
            self.relay = relay
            self.led = led
            self._apply()
        self.ctx.publish_state()

    def on_set(self, payload):
        cmd = payload.strip().upper()
        if cmd == b"ON":
            self._set(True, self.led)
        elif cmd == b"OFF":
            self._set(False, self.led)
        elif cmd == b"TOGGLE":
            self._set(not self.relay, self.led)
        else:
            try:
                d = json.loads(payload)
            except ValueError:
                d = None
            if not isinstance(d, dict) or not d or any(
                    k not in ("relay", "led") or not isinstance(d[k], bool) for k in d):
                self.ctx.log("bad command", payload)
                return
            self._set(d.get("relay", self.relay), d.get("led", self.led))

    def poll(self):
        v = self.button.value()
        now = ticks_ms()
        if v != self.raw:
            self.raw = v
            self.since = now
        elif v != self.stable and ticks_diff(now, self.since) >= _DEBOUNCE_MS:
            self.stable = v
            if v == 0:  # pressed (pulled to ground)
                self._set(not self.relay, self.led)
                if self.ctx.debug:
                    self.ctx.log("button: relay", self.relay)


def create(ctx, cfg):
    return Lamp(ctx, cfg)
