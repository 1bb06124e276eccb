"""firmware/mqtt_client.py under CPython against a fake socket: the exact bytes on the wire."""
import pytest

from tests.support.firmware import load

mq = load("mqtt_client")


class FakeSocket:
    """Reads come from `rx` (what the broker sent), writes pile up in `tx`."""

    def __init__(self, rx=b""):
        self.rx = bytearray(rx)
        self.tx = bytearray()
        self.writes = []  # each write's buffer, as passed
        self.closed = False
        self.largest_readinto = 0

    def write(self, b):
        self.writes.append(b)
        self.tx += bytes(b)
        return len(b)

    def read(self, n):
        out = bytes(self.rx[:n])
        del self.rx[:n]
        return out

    def readinto(self, buf):
        self.largest_readinto = max(self.largest_readinto, len(buf))
        n = min(len(buf), len(self.rx))
        buf[:n] = self.rx[:n]
        del self.rx[:n]
        return n

    def close(self):
        self.closed = True


CONNACK = b"\x20\x02\x00\x00"


def connected(rx=b"", **kw):
    sock = FakeSocket(CONNACK + rx)
    c = mq.MQTTClient(b"dev1", "broker", **kw)
    c.connect(sock=sock)
    sock.tx.clear()
    return c, sock


def test_connect_with_will_and_credentials():
    sock = FakeSocket(CONNACK)
    c = mq.MQTTClient(b"dev1", "broker", user=b"u", password=b"p", keepalive=30)
    c.set_last_will(b"dev1/status", b'{"online":false}', retain=True)
    c.connect(sock=sock)
    assert bytes(sock.tx) == (
        b"\x10\x35"  # CONNECT, remaining length 53
        b"\x00\x04MQTT\x04"  # protocol name, level 4 (3.1.1)
        b"\xe6"  # username, password, will retain, will, clean session
        b"\x00\x1e"  # keepalive 30 s
        b"\x00\x04dev1"
        b"\x00\x0bdev1/status"
        b"\x00\x10{\"online\":false}"
        b"\x00\x01u"
        b"\x00\x01p")


def test_connect_minimal_is_clean_session_only():
    sock = FakeSocket(CONNACK)
    mq.MQTTClient(b"x", "broker", keepalive=60).connect(sock=sock)
    assert bytes(sock.tx) == b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x3c\x00\x01x"


def test_connect_refused_is_an_oserror():
    sock = FakeSocket(b"\x20\x02\x00\x05")
    with pytest.raises(OSError, match="code 5"):
        mq.MQTTClient(b"x", "broker").connect(sock=sock)


def test_publish_retained_and_plain():
    c, sock = connected()
    c.publish(b"a/b", b"hi", retain=True)
    assert bytes(sock.tx) == b"\x31\x07\x00\x03a/bhi"
    sock.tx.clear()
    c.publish(b"a/b", b"x" * 200)
    # remaining length 205 takes two bytes: 0xcd 0x01
    assert bytes(sock.tx) == b"\x30\xcd\x01\x00\x03a/b" + b"x" * 200


def test_a_small_packet_is_one_write():
    c, sock = connected()
    sock.writes.clear()
    c.publish(b"dev1/ota/status", (b'{"state":', b'"verified"}'))
    assert sock.writes == [b"\x30\x25\x00\x0fdev1/ota/status" + b'{"state":"verified"}']


def test_a_big_part_is_written_as_it_is_not_copied():
    # the heartbeat: its file list goes out from the caller's buffer, the head in one write
    c, sock = connected()
    sock.writes.clear()
    files = b'{"' + b"f" * 1200 + b'":"0"}'
    head = memoryview(b'{"online":true,"boot":3}')[:-1]
    c.publish(b"dev1/status", (head, b',"files":', files, b"}"), retain=True)
    n = len(head) + 9 + len(files) + 1 + 13
    assert bytes(sock.tx) == (b"\x31" + bytes((n & 0x7F | 0x80, n >> 7)) + b"\x00\x0bdev1/status"
                              + b'{"online":true,"boot":3,"files":' + files + b"}")
    assert sock.writes[1] is files and len(sock.writes) == 3


def test_subscribe_waits_for_suback():
    c, sock = connected(rx=b"\x90\x03\x00\x01\x00")
    c.subscribe(b"dev1/OTA")
    assert bytes(sock.tx) == b"\x82\x0d\x00\x01\x00\x08dev1/OTA\x00"
    assert not sock.rx  # the SUBACK was consumed


def test_subscribe_refused_raises():
    c, sock = connected(rx=b"\x90\x03\x00\x01\x80")
    with pytest.raises(OSError):
        c.subscribe(b"dev1/OTA")


def test_ping_and_disconnect():
    c, sock = connected()
    c.ping()
    assert bytes(sock.tx) == b"\xc0\x00"
    sock.tx.clear()
    c.disconnect()
    assert bytes(sock.tx) == b"\xe0\x00"
    assert sock.closed and c.sock is None


def test_keep_alive_pings_after_half_the_keepalive():
    c, sock = connected(keepalive=30)
    c.last_tx = mq.ticks_ms() - 16000
    c.keep_alive()
    assert bytes(sock.tx) == b"\xc0\x00"
    c.last_rx = mq.ticks_ms() - 46000
    with pytest.raises(OSError, match="silent"):
        c.keep_alive()


def test_a_device_that_publishes_often_still_pings_when_it_hears_nothing():
    # heartbeats keep last_tx fresh; without a ping the broker never answers, and the
    # link would be called silent (and dropped, its last will published) every 45 s
    c, sock = connected(keepalive=30)
    now = mq.ticks_ms()
    c.last_tx = now - 1000
    c.last_rx = c.pinged = now - 16000  # connected 16 s ago, nothing heard since
    c.keep_alive()
    assert bytes(sock.tx) == b"\xc0\x00"
    c.keep_alive()  # one ping per half keepalive, not one per loop
    assert bytes(sock.tx) == b"\xc0\x00"
    sock.rx += b"\xd0\x00"  # PINGRESP
    assert c.wait_msg() is None
    c.last_tx = mq.ticks_ms() - 1000
    c.keep_alive()  # heard from the broker: nothing to do
    assert bytes(sock.tx) == b"\xc0\x00"


def test_incoming_publish_is_parsed():
    c, sock = connected(rx=b"\x30\x0a\x00\x03a/bhello")
    assert c.wait_msg() == (b"a/b", b"hello")


def test_pingresp_returns_none():
    c, sock = connected(rx=b"\xd0\x00")
    assert c.wait_msg() is None


def test_qos1_publish_is_acked():
    c, sock = connected(rx=b"\x32\x0c\x00\x03a/b\x12\x34hello")
    assert c.wait_msg() == (b"a/b", b"hello")
    assert bytes(sock.tx) == b"\x40\x02\x12\x34"


def test_oversized_publish_is_dropped_with_a_small_buffer():
    big = b"\x30\xd5\x0f\x00\x03a/b" + b"z" * 2000  # remaining length 2005
    c, sock = connected(rx=big + b"\x30\x06\x00\x03a/bk")
    assert c.wait_msg() is None
    assert c.wait_msg() == (b"a/b", b"k")
    assert sock.largest_readinto <= 64


def test_payload_of_exactly_1024_is_kept():
    c, sock = connected(rx=b"\x30\x85\x08\x00\x03a/b" + b"y" * 1024)  # 1029
    assert c.wait_msg() == (b"a/b", b"y" * 1024)


def test_link_closed_mid_packet_is_an_oserror():
    c, sock = connected(rx=b"\x30\x0a\x00\x03a/")
    with pytest.raises(OSError):
        c.wait_msg()
