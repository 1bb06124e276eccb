# MQTT 3.1.1 client for DCC-OTA devices: QoS 0 only, bytes in and out.
#
# Written for this project (umqtt.simple was the model, not the source). Every link
# failure surfaces as OSError (MQTTError is one), so the runtime has one reconnect path.
# Memory: an outgoing packet is built in one bytearray, except a part over _BIG bytes or
# an open file (the heartbeat's file list), written from where it is (see _send); a file
# goes through a 64-byte scratch buffer, the one an incoming payload over _MAX_PAYLOAD is
# read into and dropped from, so a hostile message costs no allocation.
# TLS (tls=True, ca: a CA certificate file or None) is in mqtt_tls.py, imported at connect
# only when it is on: a device without TLS never compiles it.
# Unit tests drive it under CPython with a fake socket (tests/support/firmware.py).
from micropython import const
from time import ticks_ms, ticks_diff

_MAX_PAYLOAD = const(1024)
_MAX_TOPIC = const(128)
_BIG = const(512)
_TIMEOUT = const(10)  # seconds, for every socket operation


class MQTTError(OSError):
    # The broker refused us or sent something we cannot follow.
    pass


def _str(b):
    # 2-byte length prefix for an MQTT string field
    return bytes((len(b) >> 8, len(b) & 0xFF))


class MQTTClient:
    def __init__(self, client_id, server, port=1883, user=b"", password=b"", keepalive=30,
                 tls=False, ca=None):
        self.client_id = client_id
        self.server = server
        self.port = port
        self.user = user
        self.password = password
        self.keepalive = keepalive
        self.tls = tls
        self.ca = ca
        self.sock = None
        self.will = None
        self.pid = 0
        self._poll = None
        self._scratch = bytearray(64)
        self._suback = None
        self.last_tx = 0
        self.last_rx = 0
        self.pinged = 0

    def set_last_will(self, topic, msg, retain=False):
        self.will = (topic, msg, retain)

    def connect(self, sock=None):
        # Open the TCP link (or use sock) and do the CONNECT/CONNACK exchange.
        if sock is None:
            import socket

            addr = socket.getaddrinfo(self.server, self.port)[0][-1]
            sock = socket.socket()
            sock.settimeout(_TIMEOUT)
            try:
                sock.connect(addr)
                if self.tls:  # mqtt_tls: compiled only on a device that uses TLS
                    from mqtt_tls import wrap

                    sock = wrap(sock, self.server, self.ca)
            except OSError:
                sock.close()
                raise
        self.sock = sock
        flags = 0x02  # clean session
        k = self.keepalive
        parts = [None, _str(self.client_id), self.client_id]
        if self.will:
            t, m, r = self.will
            flags |= 0x04 | (0x20 if r else 0)
            parts += (_str(t), t, _str(m), m)
        if self.user:
            flags |= 0x80
            parts += (_str(self.user), self.user)
        if self.password:
            flags |= 0x40
            parts += (_str(self.password), self.password)
        parts[0] = b"\x00\x04MQTT\x04" + bytes((flags, k >> 8, k & 0xFF))
        self._send(0x10, parts)
        resp = self._read(4)
        if resp[0] != 0x20 or resp[1] != 2:
            raise MQTTError("bad CONNACK")
        if resp[3]:
            raise MQTTError("connection refused, code %d" % resp[3])
        self.last_rx = self.pinged = ticks_ms()

    def disconnect(self):
        # Say goodbye (the broker then drops the last will) and close; never raises.
        if self.sock is None:
            return
        try:
            self.sock.write(b"\xe0\x00")
        except OSError:
            pass
        self.close()

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self._poll = None

    def ping(self):
        self._write(b"\xc0\x00")
        self.pinged = self.last_tx

    def publish(self, topic, msg, retain=False):
        # msg: bytes, or a tuple of parts sent as one payload (never joined): bytes-like, or
        # an open file, sent from its start
        self._send(0x31 if retain else 0x30,
                   (_str(topic), topic) + (msg if type(msg) is tuple else (msg,)))

    def subscribe(self, topic):
        # Subscribe at QoS 0 and wait for the SUBACK (PUBLISHes before it are dropped).
        self.pid = self.pid % 0xFFFF + 1
        pid = self.pid
        self._send(0x82, (bytes((pid >> 8, pid & 0xFF)), _str(topic), topic, b"\x00"))
        self._suback = None
        t = ticks_ms()
        while self._suback != pid:
            self.wait_msg()
            if ticks_diff(ticks_ms(), t) > _TIMEOUT * 1000:
                raise MQTTError("no SUBACK")

    def keep_alive(self):
        # Ping when the broker has not heard from us for half the keepalive, or we from it
        # (a device that publishes often hears nothing back unless it asks: at most one
        # ping per half keepalive); raise when it went silent for one and a half.
        now = ticks_ms()
        ka = self.keepalive * 1000
        if ticks_diff(now, self.last_rx) > ka + ka // 2:
            raise MQTTError("broker silent")
        half = ka // 2
        if ticks_diff(now, self.last_tx) > half or (
                ticks_diff(now, self.last_rx) > half and ticks_diff(now, self.pinged) > half):
            self.ping()

    def check_msg(self, timeout_ms=0):
        # Wait up to timeout_ms for a packet; return (topic, msg) for a PUBLISH, else None.
        if self._poll is None:
            import select

            self._poll = select.poll()
            self._poll.register(self.sock, select.POLLIN)
        ev = self._poll.poll(timeout_ms)
        if not ev:
            return None
        if ev[0][1] & 0x18:  # POLLHUP | POLLERR
            raise MQTTError("link closed")
        return self.wait_msg()

    def wait_msg(self):
        # Read one whole packet; return (topic, msg) for a PUBLISH we keep, else None.
        op = self._read(1)[0]
        n = self._varint()
        self.last_rx = ticks_ms()
        kind = op & 0xF0
        if kind == 0x30:
            return self._publish_in(op, n)
        if kind == 0x90 and n == 3:
            b = self._read(3)
            if b[2] == 0x80:
                raise MQTTError("subscription refused")
            self._suback = (b[0] << 8) | b[1]
            return None
        self._drain(n)  # PINGRESP (n == 0) and anything else
        return None

    # -- internals --

    def _publish_in(self, op, n):
        b = self._read(2)
        tlen = (b[0] << 8) | b[1]
        n -= 2
        if tlen > _MAX_TOPIC or tlen > n:
            self._drain(n)
            return None
        topic = self._read(tlen)
        n -= tlen
        qos = (op >> 1) & 3
        if qos:
            pid = self._read(2)
            n -= 2
        if n > _MAX_PAYLOAD:
            self._drain(n)
            msg = None
        else:
            msg = self._read(n)
        if qos == 1:
            self._write(b"\x40\x02" + pid)
        if msg is None:
            return None
        return topic, msg

    def _varint(self):
        n = 0
        sh = 0
        while True:
            b = self._read(1)[0]
            n |= (b & 0x7F) << sh
            if not b & 0x80:
                return n
            sh += 7
            if sh > 21:
                raise MQTTError("bad length")

    def _drain(self, n):
        mv = memoryview(self._scratch)
        while n:
            k = self.sock.readinto(mv[: min(n, 64)])
            if not k:
                raise MQTTError("link closed")
            n -= k

    def _read(self, n):
        b = self.sock.read(n)
        if b is None or len(b) < n:
            raise MQTTError("link closed")
        return b

    def _write(self, b):
        self.sock.write(b)
        self.last_tx = ticks_ms()

    def _send(self, op, parts):
        # The header and the parts up to the first big one go in one buffer and one write:
        # split writes stall on Nagle + delayed ACK, which the short OTA reports must not.
        # A big part or a file (and what follows it) is written from where it is: the
        # heartbeat can wait out one delayed ACK, a small heap has no room for a second copy.
        n = k = 0
        big = len(parts)
        for j in range(len(parts)):
            p = parts[j]
            f = hasattr(p, "readinto")  # an open file
            m = p.seek(0, 2) if f else len(p)
            if (f or m > _BIG) and big == len(parts):
                big = j
            if big == len(parts):
                k += m
            n += m
        pkt = bytearray(k + (2 if n < 0x80 else 3 if n < 0x4000 else 4))
        pkt[0] = op
        i = 1
        while True:
            pkt[i] = n & 0x7F
            n >>= 7
            i += 1
            if not n:
                break
            pkt[i - 1] |= 0x80
        for j in range(big):
            p = parts[j]
            pkt[i : i + len(p)] = p
            i += len(p)
        self._write(pkt)
        for j in range(big, len(parts)):
            p = parts[j]
            if not hasattr(p, "readinto"):
                self._write(p)
                continue
            p.seek(0)
            b = self._scratch
            while True:
                m = p.readinto(b)
                if not m:
                    break
                self._write(b if m == len(b) else memoryview(b)[:m])
