# DCC-OTA loader: main.py calls loader.main(), which reads the settings, loads every module
# in a memory-friendly order and runs runtime.Runtime (the running part). The plugin API is
# documented at the top of plugins.py; the contract with the server is docs/protocol.md.
# Nothing here runs at import.
#
# Memory: a module compiles on the device, and compiling takes about four times the RAM
# of its source text, while the bytecode it keeps is far smaller; a precompiled (.mpy)
# module only loads. start() reads the journal and runs startup first (used once and
# unloaded, so their garbage leaves no hole among what stays; the journal's small compile
# first, where it leaves no island in startup's garbage), then loads every module while the
# heap is still empty, those whose compile takes the most (beyond what they keep) first: the
# MQTT client, the receiver, the runtime (and its link), the trigger, the plugin host and
# the plugins, then ota_push. A late load on a used, fragmented heap may find no room;
# runtime.Runtime.run then finds the plugins loaded. firmware/README.md has the figures.


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

    import journal

    j = journal.load()  # an update's, or None (docs/safety.md)
    del sys.modules["journal"], journal
    import startup

    cfg = startup.load_settings()
    boot = startup.bump_boot()
    files = startup.file_hashes()
    del sys.modules["startup"], startup
    gc.collect()
    for m in ("mqtt_client", "ota_receiver", "runtime", "ota_trigger", "plugins"):
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
    sys.modules["runtime"].Runtime(cfg, boot, files, j, features).run()
