# The seed's failed designs, on the DCC-OTA runtime (benchmark only, never on a board).
#
# The blog (/work/shared/seed/blog-ota-over-mqtt.md) tried twice to send a whole file in one
# MQTT message before the connect-back: as JSON, then as `filename|hash|contents`. Both ran
# out of memory. To compare like with like, each design here runs inside the same runtime
# (MQTT link, heartbeat, night-lamp plugin) and replaces only two things:
#   - the MQTT receive path: a PUBLISH is read whole into RAM, as umqtt.simple does
#     (msg = sock.read(n)); firmware/mqtt_client.py drops payloads over 1 KB by design;
#   - the ID/OTA handler: seed_ota.py (seed_json.py or seed_pipe.py under that name).
# After the file is in place they report and reboot exactly as the runtime does.
import gc

import runtime  # the running part (loader.py holds main())
import link  # its MQTT session
from mqtt_client import MQTTClient


class WholeMessageClient(MQTTClient):
    # umqtt.simple's wait_msg: topic, then the whole payload in one read.

    def _publish_in(self, op, n):
        b = self._read(2)
        tlen = (b[0] << 8) | b[1]
        topic = self._read(tlen)
        n -= 2 + tlen
        if op & 6:
            pid = self._read(2)
            n -= 2
        msg = self._read(n)
        if op & 6 == 2:
            self._write(b"\x40\x02" + pid)
        return topic, msg


def done(rt, name, sha1, size):
    # The file is in place: report and reboot as Runtime._ota does.
    rt.report({"token": "", "state": "verified", "file": name, "sha1": sha1, "bytes": size})
    rt.report({"token": "", "state": "rebooting", "file": name})
    rt.link.disconnect()
    import time
    import machine

    time.sleep_ms(100)
    machine.reset()


def failed(rt, name, reason, detail):
    rt.report({"token": "", "state": "failed", "file": name, "reason": reason,
                "detail": detail})


def main():
    # loader.main(), with the seed's receive path and ID/OTA handler
    import sys
    import startup

    cfg = startup.load_settings()
    boot = startup.bump_boot()
    files = startup.file_hashes()
    del sys.modules["startup"], startup
    gc.collect()
    import seed_ota

    link.MQTTClient = WholeMessageClient
    runtime.Runtime._ota = seed_ota.ota
    gc.collect()
    runtime.Runtime(cfg, boot, files).run()
