# Seed attempt 2: `filename|hash|contents` in one MQTT message on ID/OTA.
# Written as frugally as the design allows: the contents are a memoryview into the
# received message (no copy), hashed and written from there. What remains is the design's
# own cost: the whole message in RAM at once. The blog: "the MQTT client is not streaming
# the downloads, so we could fit at most a 4KB file."
import os
import hashlib
from binascii import hexlify

import seed_common


def ota(rt, msg):
    i = msg.find(b"|")
    j = msg.find(b"|", i + 1)
    name = msg[:i].decode()
    want = msg[i + 1:j].decode()
    c = memoryview(msg)[j + 1:]
    digest = hexlify(hashlib.sha1(c).digest()).decode()
    if digest != want:
        seed_common.failed(rt, name, "hash mismatch", "got " + digest)
        return
    with open(".ota.part", "wb") as f:
        f.write(c)
    os.rename(".ota.part", name)
    seed_common.done(rt, name, digest, len(c))
