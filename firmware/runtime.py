# DCC-OTA device runtime: settings, Wi-Fi, the MQTT link, heartbeat, OTA and plugins.
# main.py calls runtime.main(); the running part is device.Runtime. The contract with the
# server is docs/protocol.md; nothing here runs at import.
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
#
# Memory: a module compiles on the device, and compiling takes about four times the RAM
# of its source text, while the bytecode it keeps is far smaller. So this module is tiny,
# and main() imports the biggest module (the MQTT client) first, on an empty heap, then
# startup (used once and unloaded), then the others biggest first; plugins.py and the
# plugins come last (device.Runtime.start). firmware/README.md has the figures.


def main():
    import gc
    import sys

    import mqtt_client  # noqa: F401  (the biggest compile, first)

    gc.collect()
    import device  # the next biggest

    gc.collect()
    import startup

    cfg = startup.load_settings()
    boot = startup.bump_boot()
    files = startup.file_hashes()
    j = startup.journal()
    del sys.modules["startup"], startup
    gc.collect()
    try:  # source: compile the OTA code now, on the emptiest heap it will see
        import os

        os.stat("ota_push.py")
        import ota_receiver  # noqa: F401

        gc.collect()
        import ota_trigger  # noqa: F401

        gc.collect()
        import ota_push  # noqa: F401
    except OSError:
        pass  # precompiled (.mpy): loaded at a push and dropped after a failed one
    gc.collect()
    import network  # noqa: F401  (built in on a board; the simulator's shim compiles)

    gc.collect()
    features = ["ext", "bundle"]
    if cfg.get("key"):  # signatures (ota_auth), only on a device with a key
        import ota_auth

        features += ota_auth.features()
        gc.collect()
    device.Runtime(cfg, boot, files, j, features).run()
