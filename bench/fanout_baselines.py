"""The two bare-Python reference servers bench/fanout.py measures chatroom against.

Both speak the subset of the chatroom wire protocol the fan-out load uses:
greeting ``* Welcome to ...``, ``/nick NAME`` -> ``OK nick NAME``, any other
``/command`` -> ``ERROR - Command not understood``, and a plain line goes to
every *other* client as ``NICK: text\\n``; joins, nick changes and leaves are
announced as ``* ...`` lines. Both use one ``selectors`` loop, ``recv(65536)``
and non-blocking sockets with ``TCP_NODELAY``; neither has any limit or
safety check (no line length, no output budget): they are floors, not servers.

* ``line`` (target ``baseline-line``): broadcasts **per line**, as chatroom
  does at the time of writing: every received line is formatted once and
  appended to every recipient's ``bytearray`` (N-1 appends per line), then,
  at the end of the loop pass, every connection with pending output gets one
  ``send``.
* ``pass`` (target ``baseline-pass``): batches **per loop pass**, the fastest
  reference: the formatted lines of everything received from all clients
  during one pass are joined into one batch, which is appended once to each
  member's output (one append per member per pass, however many lines); a
  client that sent lines in this pass gets the batch without its own lines
  (appended as memoryview slices of the batch, no copy of the batch per
  sender). Then one ``send`` per dirty connection (only connections with
  pending output are visited).

Run as ``python bench/fanout_baselines.py line|pass``: prints
``baseline-KIND listening on 127.0.0.1:PORT`` (port picked by the kernel) and
serves until SIGTERM.
"""

from __future__ import annotations

import selectors
import signal
import socket
import sys

HOST = "127.0.0.1"
RECV_SIZE = 65536


class _Peer:
    __slots__ = ("inbuf", "nick", "out", "sock", "writing")

    def __init__(self, sock: socket.socket, nick: bytes) -> None:
        self.sock, self.nick, self.inbuf, self.out, self.writing = sock, nick, b"", bytearray(), False


def _listen() -> tuple[socket.socket, selectors.BaseSelector]:
    lsock = socket.create_server((HOST, 0), backlog=4096)
    lsock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(lsock, selectors.EVENT_READ, None)
    return lsock, sel


def _accept_all(lsock: socket.socket, sel: selectors.BaseSelector, serial: int) -> list[_Peer]:
    """Accept every pending connection; returns the new peers (registered for reading)."""
    new = []
    while True:
        try:
            sock, _ = lsock.accept()
        except (BlockingIOError, InterruptedError):
            return new
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        p = _Peer(sock, b"guest%d" % (serial + len(new) + 1))
        sel.register(sock, selectors.EVENT_READ, p)
        new.append(p)


def _recv_lines(p: _Peer) -> list[bytes] | None:
    """Complete lines (without line ends) read from *p*; None when it closed."""
    try:
        data = p.sock.recv(RECV_SIZE)
    except (BlockingIOError, InterruptedError):
        return []
    except OSError:
        data = b""
    if not data:
        return None
    lines = (p.inbuf + data).split(b"\n")
    p.inbuf = lines.pop()
    return lines


def _flush(p: _Peer, sel: selectors.BaseSelector) -> None:
    """One ``send`` of *p*'s pending output; EVENT_WRITE only while some is left."""
    if p.out:
        try:
            del p.out[: p.sock.send(p.out)]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            p.out.clear()
    if bool(p.out) != p.writing:
        p.writing = not p.writing
        sel.modify(p.sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if p.writing else 0), p)


def serve_line() -> None:
    """The per-line broadcast loop (target ``baseline-line``); runs until killed."""
    lsock, sel = _listen()
    peers: list[_Peer] = []
    serial = 0
    print(f"baseline-line listening on {HOST}:{lsock.getsockname()[1]}", flush=True)

    def broadcast(msg: bytes, skip: _Peer | None) -> None:
        for q in peers:
            if q is not skip:
                q.out += msg

    while True:
        for key, mask in sel.select():
            p = key.data
            if p is None:
                for q in _accept_all(lsock, sel, serial):
                    serial += 1
                    broadcast(b"* %s joined lobby\n" % q.nick, None)
                    peers.append(q)
                    q.out += b"* Welcome to baseline, room lobby. You are %s.\n" % q.nick
                continue
            if not mask & selectors.EVENT_READ:
                continue
            lines = _recv_lines(p)
            if lines is None:
                sel.unregister(p.sock)
                p.sock.close()
                peers.remove(p)
                broadcast(b"* %s left lobby (quit)\n" % p.nick, None)
                continue
            for line in lines:
                line = line.rstrip(b"\r")
                if line.startswith(b"/nick "):
                    old, p.nick = p.nick, line[6:].strip()
                    p.out += b"OK nick %s\n" % p.nick
                    broadcast(b"* %s is now known as %s\n" % (old, p.nick), p)
                elif line.startswith(b"/") and not line.startswith(b"//"):
                    p.out += b"ERROR - Command not understood\n"
                else:
                    broadcast(b"%s: %s\n" % (p.nick, line.removeprefix(b"/")), p)
        for p in peers:
            _flush(p, sel)


def serve_pass() -> None:
    """The per-pass batching loop (target ``baseline-pass``); runs until killed.

    Per pass: ``parts`` collects ``(author, formatted line)`` for every line
    read in the pass (its author skips it). At the end of
    the pass the parts are joined once into ``batch``; each author's own
    parts are recorded as ``(start, end)`` offsets into it. Every member that
    authored nothing gets ``out += batch``; an author gets the slices of
    ``batch`` between its own parts. Then each dirty peer gets one ``send``.
    """
    lsock, sel = _listen()
    peers: dict[_Peer, None] = {}  # insertion-ordered set
    dirty: dict[_Peer, None] = {}
    serial = 0
    print(f"baseline-pass listening on {HOST}:{lsock.getsockname()[1]}", flush=True)
    while True:
        parts: list[tuple[_Peer | None, bytes]] = []
        for key, mask in sel.select():
            p = key.data
            if p is None:
                for q in _accept_all(lsock, sel, serial):
                    serial += 1
                    parts.append((q, b"* %s joined lobby\n" % q.nick))
                    peers[q] = None
                    q.out += b"* Welcome to baseline, room lobby. You are %s.\n" % q.nick
                    dirty[q] = None
                continue
            if not mask & selectors.EVENT_READ:
                dirty[p] = None
                continue
            lines = _recv_lines(p)
            if lines is None:
                sel.unregister(p.sock)
                p.sock.close()
                del peers[p]
                dirty.pop(p, None)  # its lines of this pass still go out (p is no member now)
                parts.append((None, b"* %s left lobby (quit)\n" % p.nick))
                continue
            for line in lines:
                line = line.rstrip(b"\r")
                if line.startswith(b"/nick "):
                    old, p.nick = p.nick, line[6:].strip()
                    p.out += b"OK nick %s\n" % p.nick
                    dirty[p] = None
                    parts.append((p, b"* %s is now known as %s\n" % (old, p.nick)))
                elif line.startswith(b"/") and not line.startswith(b"//"):
                    p.out += b"ERROR - Command not understood\n"
                    dirty[p] = None
                else:
                    parts.append((p, b"%s: %s\n" % (p.nick, line.removeprefix(b"/"))))
        if parts:
            batch = b"".join(m for _, m in parts)
            own: dict[_Peer, list[tuple[int, int]]] = {}
            pos = 0
            for author, m in parts:
                if author is not None:
                    own.setdefault(author, []).append((pos, pos + len(m)))
                pos += len(m)
            view = memoryview(batch)
            for q in peers:
                spans = own.get(q)
                if spans is None:
                    q.out += batch
                else:
                    start = 0
                    for s, e in spans:
                        if s > start:
                            q.out += view[start:s]
                        start = e
                    if start < len(batch):
                        q.out += view[start:]
            dirty = dict.fromkeys(peers)  # every member got the batch (or part of it)
        for p in dirty:  # a peer left with output is registered for EVENT_WRITE
            _flush(p, sel)
        dirty = {}


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    kinds = {"line": serve_line, "pass": serve_pass}
    if len(sys.argv) != 2 or sys.argv[1] not in kinds:
        sys.exit("usage: python bench/fanout_baselines.py line|pass")
    kinds[sys.argv[1]]()
