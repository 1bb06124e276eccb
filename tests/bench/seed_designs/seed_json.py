# Seed attempt 1: the whole file as JSON in one MQTT message on ID/OTA,
#     {"name": "blob.txt", "sha1": "<40 hex>", "content": "<the file's text>"}
# Written as frugally as the design allows: one json.loads (the decoded string is the one
# copy JSON forces), then hash and write straight from it. The blog: "This failed
# miserably to allocate memory to decode even 1.2KB files."
import os
import hashlib
from binascii import hexlify

import seed_common


def ota(rt, msg):
    import json

    d = json.loads(msg)
    name = d["name"]
    want = d["sha1"]
    c = d["content"]
    d = None
    digest = hexlify(hashlib.sha1(c).digest()).decode()
    if digest != want:
        seed_common.failed(rt, name, "hash mismatch", "got " + digest)
        return
    with open(".ota.part", "w") as f:
        f.write(c)
    os.rename(".ota.part", name)
    seed_common.done(rt, name, digest, len(c))
