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
# of its source text, while the bytecode it keeps is far smaller; a precompiled (.mpy)
# module only loads. start() runs startup first (used once and unloaded, so its garbage
# leaves no hole among what stays), then loads every module while the heap is still empty,
# those whose compile takes the most (beyond what they keep) first: the MQTT client, the
# receiver, the device (and its link), the trigger, the plugin host and the plugins, then
# ota_push. A late load on a used, fragmented heap may find no room; device.Runtime.start
# then finds the plugins loaded. firmware/README.md has the figures.


def main():
    # Never leaves a board at the REPL (offline until someone comes): an exception, at boot
    # (a module that does not fit the heap) or later, is printed and the board resets after
    # a pause (a fault at every boot must not spin the boot counter on flash). On probation
    # it goes up to probation.py instead, which records it for the rollback.
    import sys

    try:
        start()
    except Exception as e:
        if "probation" in sys.modules:
            raise
        sys.print_exception(e)
        import machine
        import time

        time.sleep(3)
        machine.reset()


def start():
    import gc
    import sys

    import startup

    cfg = startup.load_settings()
    boot = startup.bump_boot()
    files = startup.file_hashes()
    j = startup.journal()
    del sys.modules["startup"], startup
    gc.collect()
    for m in ("mqtt_client", "ota_receiver", "device", "ota_trigger", "plugins"):
        __import__(m)
        gc.collect()
    for m in cfg["plugins"]:
        try:
            __import__(m)
        except Exception:  # plugins.Host says why when it loads them
            pass
        gc.collect()
    for m in ("ota_push", "network"):
        __import__(m)  # network: built in on a board, the simulator's shim is precompiled
        gc.collect()
    features = ["ext", "bundle", "rm"]  # rm: a bundle may delete files
    if cfg.get("key"):  # signatures (ota_auth), only on a device with a key
        import ota_auth

        features += ota_auth.features()
        gc.collect()
    sys.modules["device"].Runtime(cfg, boot, files, j, features).run()
