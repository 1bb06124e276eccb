"""The night-lamp plugin on a simulated device: LED off at boot, commands, the button."""
import json
import time

import pytest

from tests.integration.conftest import running_device
from tests.support.devices import heartbeat_pred, set_input_pins

pytestmark = pytest.mark.integration

DEV = "lamp-dev"
RELAY, BUTTON, LED = "5", "0", "2"  # the default pins; the LED is active-low


@pytest.fixture(scope="module")
def lamp(mosquitto, watcher, tmp_path_factory):
    with running_device(DEV, mosquitto, watcher, tmp_path_factory) as dev:
        yield dev


def pins(dev):
    return json.loads((dev.flash_dir / ".sim_out.json").read_text())


def wait_pin(dev, pin, value, timeout=5):
    end = time.monotonic() + timeout
    while True:
        try:
            if pins(dev).get(pin) == value:
                return
        except (OSError, ValueError):
            pass  # being rewritten
        if time.monotonic() > end:
            raise TimeoutError("pin %s never became %s: %r" % (pin, value, pins(dev)))
        time.sleep(0.02)


def command(watcher, payload):
    mark = watcher.mark()
    watcher.publish(DEV + "/lamp/set", payload)
    return mark


def test_led_is_off_at_boot(lamp, watcher):
    st = watcher.wait_json(DEV + "/lamp/state")
    assert st == {"relay": False, "led": False}
    hb = watcher.latest_json(DEV + "/status", heartbeat_pred())
    assert hb["plugins"]["lamp"] == {"relay": False, "led": False}
    p = pins(lamp)
    assert p[LED] == 1  # active-low: a high pin is a dark LED
    assert p[RELAY] == 0


def test_led_command_turns_it_on_and_off(lamp, watcher):
    mark = command(watcher, '{"led": true}')
    st = watcher.wait_json(DEV + "/lamp/state", lambda d: d["led"] is True, since=mark)
    assert st == {"relay": False, "led": True}
    wait_pin(lamp, LED, 0)
    mark = command(watcher, '{"led": false}')
    watcher.wait_json(DEV + "/lamp/state", lambda d: d["led"] is False, since=mark)
    wait_pin(lamp, LED, 1)


def test_plain_commands_drive_the_relay(lamp, watcher):
    for payload, want in (("ON", True), ("TOGGLE", False), ("TOGGLE", True), ("OFF", False)):
        mark = command(watcher, payload)
        st = watcher.wait_json(DEV + "/lamp/state", since=mark)
        assert st["relay"] is want, (payload, st)
        wait_pin(lamp, RELAY, 1 if want else 0)


def test_bad_commands_are_ignored(lamp, watcher):
    mark = watcher.mark()
    for payload in ("BLINK", '{"relay": "yes"}', '{"colour": 1}', "[1]", "{"):
        watcher.publish(DEV + "/lamp/set", payload)
    mark2 = command(watcher, '{"relay": false}')  # a good one after them
    st = watcher.wait_json(DEV + "/lamp/state", since=mark2)
    assert st == {"relay": False, "led": False}
    states = watcher.all_json(DEV + "/lamp/state", since=mark)
    assert states == [st]
    assert "bad command" in lamp.log_text()


def test_button_press_toggles_the_relay(lamp, watcher):
    mark = watcher.mark()
    set_input_pins(lamp.flash_dir, {BUTTON: 0})
    st = watcher.wait_json(DEV + "/lamp/state", since=mark)
    assert st == {"relay": True, "led": False}
    wait_pin(lamp, RELAY, 1)
    mark = watcher.mark()
    set_input_pins(lamp.flash_dir, {BUTTON: 1})  # release: no change
    # two heartbeats: the first may go out in the very loop pass that sees the release,
    # before the debounce takes it; by the second the device has surely taken it
    watcher.wait_json(DEV + "/status", heartbeat_pred(), since=mark, timeout=10)
    watcher.wait_json(DEV + "/status", heartbeat_pred(), since=watcher.mark(), timeout=10)
    assert watcher.all_json(DEV + "/lamp/state", since=mark) == []
    set_input_pins(lamp.flash_dir, {BUTTON: 0})  # second press
    st = watcher.wait_json(DEV + "/lamp/state", since=mark)
    assert st == {"relay": False, "led": False}
    set_input_pins(lamp.flash_dir, {BUTTON: 1})
