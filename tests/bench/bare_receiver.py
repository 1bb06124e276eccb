# The device-side ceiling for figure 4 (MicroPython, run by tests/bench/throughput.py):
# the least a receiver can do. Connect, send the token, readinto one buffer, hash, write;
# no MQTT, no reports, no checks but the SHA-1. The loop is the firmware's own
# (firmware/ota_receiver.py) without its bookkeeping.
# micropython bare_receiver.py HOST PORT TOKEN SIZE SHA1 CHUNK
import sys
import socket
import hashlib
from binascii import hexlify

host, port, token, size, want, chunk = sys.argv[1:7]
port, size, chunk = int(port), int(size), int(chunk)
buf = bytearray(chunk)
mv = memoryview(buf)
h = hashlib.sha1()
s = socket.socket()
s.connect(socket.getaddrinfo(host, port)[0][-1])
s.write(token.encode() + b"\n")
f = open("bare.part", "wb")
left = size
c = buf
while left:
    k = s.readinto(buf if left >= chunk else mv[:left])
    if not k:
        break
    if k != len(c):
        c = buf if k == chunk else mv[:k]
    f.write(c)
    h.update(c)
    left -= k
f.close()
s.close()
print("ok" if not left and hexlify(h.digest()).decode() == want else "bad")
