"""The connect-back transfer: one listening socket serves one file to one device, then closes."""
import errno
import hmac
import logging
import os
import random
import socket
import struct
import time

log = logging.getLogger(__name__)

TOKEN_WAIT = 5.0          # seconds a connected client has to present its token
_SEND_CHUNK = 64 * 1024   # progress is reported after each chunk
_LINGER_POLL = 0.25        # seconds between progress reports while the last bytes go out
# struct tcp_info (linux/tcp.h): tcpi_bytes_acked, a u64, since Linux 4.1
_TCPI_BYTES_ACKED = 120


def acked_bytes(sock):
    """How many bytes of ours the peer's TCP has acknowledged (Linux TCP_INFO), or None where
    the kernel does not say. What send() returned is only what the kernel took: on a slow
    link its buffers hold a large part of a file that the device has not received yet."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 192)
    except (OSError, AttributeError):
        return None
    if len(info) < _TCPI_BYTES_ACKED + 8:
        return None
    return struct.unpack_from("Q", info, _TCPI_BYTES_ACKED)[0]


class TransferError(Exception):
    """The file did not reach the device; `reason` is the named failure shown to the user."""

    def __init__(self, reason, detail=""):
        super().__init__("%s: %s" % (reason, detail) if detail else reason)
        self.reason, self.detail = reason, detail


class TransferCancelled(TransferError):
    """The push was stopped from outside (the device reported a failure, or shutdown)."""


def bind_listener(bind, ports):
    """A listening socket on `bind`, on a free port of the range `ports` (None: ephemeral)."""
    if bind == "::":
        bind = "0.0.0.0"  # every address: the devices have IPv4 only (config refuses other IPv6)
    candidates = [0] if ports is None else random.sample(range(ports[0], ports[1] + 1),
                                                         ports[1] - ports[0] + 1)
    for port in candidates:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((bind, port))
            sock.listen(4)
            return sock
        except OSError as exc:
            sock.close()
            if exc.errno != errno.EADDRINUSE:
                raise TransferError("no port", "cannot listen on %s:%d (%s)" % (bind, port, exc))
    raise TransferError("no port", "every port in %d-%d is in use" % ports)


class TransferSession:
    """Serves one stream once. With a token (extended form) only a client presenting it gets it.

    The stream is `parts`: a list of bytes objects (a bundle's manifest) and (path, size) pairs
    (files, sent from disk). `on_event(state, detail)` is told 'connected' and, after each
    chunk, 'progress' with the bytes sent so far. Use as a context manager: the port is
    released on every path.
    """

    def __init__(self, parts, token=None, bind="0.0.0.0", ports=None, timeout=30.0,
                 on_event=None):
        self.parts, self.token = parts, token
        # Progress counts the files' bytes (the payload), not a bundle's manifest.
        self.payload = sum(p[1] for p in parts if not isinstance(p, bytes))
        self.size = self.payload + sum(len(p) for p in parts if isinstance(p, bytes))
        self.timeout = timeout
        self.on_event = on_event or (lambda state, detail: None)
        self._listener = bind_listener(bind, ports)
        self.port = self._listener.getsockname()[1]
        self._cancelled = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def cancel(self, reason, detail=""):
        """Stop waiting (from another thread): serve() raises TransferCancelled."""
        self._cancelled = (reason, detail)
        listener = self._listener
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            except OSError:
                pass

    def serve(self):
        """Block until the file is sent; raise TransferError with the named reason otherwise."""
        deadline = time.monotonic() + self.timeout
        while True:
            client = self._accept(deadline)
            with client:
                if self.token is None or self._token_ok(client, deadline):
                    self.on_event("connected", "%s:%d" % client.getpeername()[:2])
                    self._send(client)
                    return

    def _accept(self, deadline):
        while True:
            remaining = deadline - time.monotonic()
            if self._cancelled:
                raise TransferCancelled(*self._cancelled)
            if remaining <= 0:
                raise TransferError("no connection", "the device did not connect within %gs"
                                    % self.timeout)
            self._listener.settimeout(remaining)
            try:
                client, _addr = self._listener.accept()
                return client
            except socket.timeout:
                continue
            except OSError:
                if self._cancelled:
                    raise TransferCancelled(*self._cancelled) from None
                raise

    def _token_ok(self, client, deadline):
        """Read `token\\n`; a client that sends anything else is closed without a byte."""
        client.settimeout(max(0.1, min(TOKEN_WAIT, deadline - time.monotonic())))
        want = self.token.encode() + b"\n"
        got = b""
        try:
            while len(got) < len(want) and b"\n" not in got:
                chunk = client.recv(len(want) - len(got))
                if not chunk:
                    break
                got += chunk
        except OSError:
            pass
        if hmac.compare_digest(got, want):
            return True
        log.warning("transfer: dropped a client with a wrong or missing token (%d bytes)", len(got))
        return False

    def _send(self, client):
        # Small writes must not wait for a delayed ACK from the device's TCP stack.
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.settimeout(self.timeout)
        sent = 0  # payload bytes
        wire = 0  # every byte handed to the kernel, the manifest too
        try:
            for part in self.parts:
                if isinstance(part, bytes):
                    client.sendall(part)
                    wire += len(part)
                    continue
                path, size = part
                with open(path, "rb") as f:
                    # sendfile moves the bytes kernel-side: the file is never in our memory.
                    done = 0
                    while done < size:
                        n = client.sendfile(f, offset=done, count=min(_SEND_CHUNK, size - done))
                        if n == 0:
                            raise TransferError("transfer broken", "%s on the server shrank to "
                                                "%d bytes" % (os.path.basename(path), done))
                        done += n
                        sent += n
                        wire += n
                        self.on_event("progress", self._received(client, sent, wire))
            client.shutdown(socket.SHUT_WR)
        except OSError as exc:
            raise TransferError("transfer broken", "after %d of %d bytes: %s"
                                % (self._received(client, sent, wire), self.payload, exc)
                                ) from None
        # Linger until the device closes its end, so that closing ours cannot reset a
        # connection whose last bytes it has not read yet, telling what it has got meanwhile.
        # The verdict comes over MQTT.
        end = time.monotonic() + min(self.timeout, 10.0)
        client.settimeout(_LINGER_POLL)
        while time.monotonic() < end:
            try:
                if not client.recv(256):
                    break
            except socket.timeout:
                self.on_event("progress", self._received(client, sent, wire))
            except OSError:
                break
        self.on_event("progress", self._received(client, sent, wire))

    def _received(self, client, sent, wire):
        # payload bytes the device has: what is not acknowledged yet is still on its way
        acked = acked_bytes(client)
        if acked is None:
            return sent
        return max(0, sent - max(0, wire - acked))
