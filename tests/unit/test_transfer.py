"""The transfer server on real loopback sockets; the 'device' is a plain socket client."""
import hashlib
import os
import socket
import threading
import time

import pytest

from webapp.transfer import TransferCancelled, TransferError, TransferSession, bind_listener

TOKEN = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def payload(tmp_path):
    data = os.urandom(300 * 1024)
    path = tmp_path / "blob"
    path.write_bytes(data)
    return path, data


def serve_in_thread(session):
    result = {}

    def run():
        try:
            session.serve()
            result["ok"] = True
        except TransferError as exc:
            result["error"] = exc
    t = threading.Thread(target=run)
    t.start()
    return t, result


def fetch(port, hello=None):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        if hello is not None:
            s.sendall(hello)
            if not hello:
                s.shutdown(socket.SHUT_WR)  # a client that says nothing and hangs up
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def test_only_the_client_with_the_token_gets_the_file(payload):
    path, data = payload
    events = []
    with TransferSession([(str(path), len(data))], TOKEN, "127.0.0.1", timeout=5,
                         on_event=lambda s, d: events.append((s, d))) as session:
        t, result = serve_in_thread(session)
        assert fetch(session.port, b"f" * 32 + b"\n") == b""     # wrong token: nothing
        assert fetch(session.port, b"") == b""                   # no token at all: nothing
        got = fetch(session.port, TOKEN.encode() + b"\n")
        t.join(5)
    assert result == {"ok": True}
    assert hashlib.sha1(got).digest() == hashlib.sha1(data).digest()
    assert events[0][0] == "connected"
    assert events[-1] == ("progress", len(data))


def test_legacy_form_serves_the_first_client(payload):
    path, data = payload
    with TransferSession([(str(path), len(data))], None, "127.0.0.1", timeout=5) as session:
        t, result = serve_in_thread(session)
        assert fetch(session.port) == data
        t.join(5)
    assert result == {"ok": True}


def test_nobody_connects_then_no_connection_and_the_port_is_free(payload):
    path, data = payload
    with TransferSession([(str(path), len(data))], TOKEN, "127.0.0.1", timeout=0.3) as session:
        port = session.port
        with pytest.raises(TransferError) as err:
            session.serve()
    assert err.value.reason == "no connection"
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # released: binding again works


def test_cancel_wakes_a_waiting_session(payload):
    path, data = payload
    with TransferSession([(str(path), len(data))], TOKEN, "127.0.0.1", timeout=30) as session:
        t, result = serve_in_thread(session)
        session.cancel("rejected", "bad name")
        t.join(5)
    assert isinstance(result["error"], TransferCancelled)
    assert result["error"].reason == "rejected"


def test_port_range_is_respected_and_exhaustion_is_named():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    first = bind_listener("127.0.0.1", (port, port))
    try:
        assert first.getsockname()[1] == port
        with pytest.raises(TransferError) as err:
            bind_listener("127.0.0.1", (port, port))
        assert err.value.reason == "no port"
    finally:
        first.close()


def test_a_client_that_hangs_up_mid_stream_breaks_the_transfer(payload, tmp_path):
    path = tmp_path / "big"
    path.write_bytes(os.urandom(8 * 1024 * 1024))
    with TransferSession([(str(path), 8 * 1024 * 1024)], TOKEN, "127.0.0.1", timeout=5) as session:
        t, result = serve_in_thread(session)
        with socket.create_connection(("127.0.0.1", session.port)) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.sendall(TOKEN.encode() + b"\n")
            s.recv(1000)
        t.join(5)
    assert result["error"].reason == "transfer broken"


def test_a_bundle_stream_is_the_manifest_then_each_file(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"A" * 70000)
    b.write_bytes(b"B" * 10)
    head = b"manifest\n"
    with TransferSession([head, (str(a), 70000), (str(b), 10)], TOKEN, "127.0.0.1",
                         timeout=5) as session:
        assert (session.size, session.payload) == (len(head) + 70010, 70010)
        t, result = serve_in_thread(session)
        got = fetch(session.port, TOKEN.encode() + b"\n")
        t.join(5)
    assert result == {"ok": True}
    assert got == head + b"A" * 70000 + b"B" * 10


def test_progress_is_what_the_device_acknowledged_not_what_the_kernel_took(tmp_path):
    """Issue 11, fault 5: a receiver that reads nothing for a while (a slow link) has only what
    its small window took; the kernel's send buffer holds much more. Progress says the
    former, then reaches the whole file once the receiver reads it."""
    data = os.urandom(4 * 1024 * 1024)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    events, early = [], []  # early: reported while the device read nothing
    paused = threading.Event()

    def progress(state, n):
        if state == "progress":
            events.append(n)
            if not paused.is_set():
                early.append(n)
    session = TransferSession([(str(path), len(data))], None, "127.0.0.1", None, 10,
                              on_event=progress)
    got = bytearray()

    def slow_device():
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)  # a small window
        s.connect(("127.0.0.1", session.port))
        time.sleep(1.0)  # reads nothing: the link is slow
        paused.set()
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got.extend(chunk)
        s.close()

    device = threading.Thread(target=slow_device)
    device.start()
    with session:
        session.serve()
    device.join(10)

    assert bytes(got) == data
    assert events[-1] == len(data)  # all of it, once the device had it
    assert events == sorted(events)  # it only moves forward
    # before the device read a byte, progress said little (its window), though the kernel
    # took megabytes by then (what send() returned, the old figure: 2.5 MB measured)
    assert early and max(early) < len(data) // 10, early
