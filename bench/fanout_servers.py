"""Start and stop the servers bench/fanout.py measures.

Targets (:data:`TARGETS`): ``chatroom``, ``chatroom-noflood`` and
``chatroom-nohistory`` (flood control with a generous budget, flood control
off, history recording off; all without the per-address connection limit;
each flag only if ``chatroom-server --help`` lists it, see
:func:`chatroom_args`), ``ngircd`` (Debian's ngIRCd with :data:`NGIRCD_CONF`),
``baseline-line`` and ``baseline-pass`` (the two loops in
``bench/fanout_baselines.py``), and over TLS: ``chatroom-tls`` (``chatroom``
plus ``--tls``: TLS on the main port, a self-signed certificate made in the
fresh data dir) and ``ngircd-tls`` (the same ngIRCd config plus an ``[SSL]``
section, clients on its TLS port; see ``fanout_tls.py``); and ``chatroom-irc``
(``chatroom`` with its IRC door on the port the bench picked, ``--irc-port``,
clients speaking IRC exactly as they do to ngIRCd).
"""


from __future__ import annotations

import functools
import os
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from fanout_load import HOST, free_port
from fanout_tls import ngircd_tls_section


# --------------------------------------------------------------------------- servers
@dataclass
class Server:
    """A running target: its process and where it listens."""

    name: str
    proc: subprocess.Popen
    port: int
    irc: bool
    tls: bool = False


def _read_listen_line(proc: subprocess.Popen, deadline: float) -> int:
    """Port from the child's first stdout line ``... listening on HOST:PORT``."""
    assert proc.stdout is not None
    box: list[bytes] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(max(0.0, deadline - time.monotonic()))
    if not box or b"listening on" not in box[0]:
        raise RuntimeError(f"server did not announce its port: {box!r}")
    # Keep draining stdout so a chatty server never blocks on a full pipe.
    threading.Thread(target=lambda: proc.stdout.read(), daemon=True).start()
    return int(box[0].strip().rsplit(b":", 1)[1])


#: ngIRCd's settings for this load, as its sample config documents them: no
#: connection limit (``MaxConnections = 0``, the default: with a number ngIRCd
#: preallocates that many connection slots and scans all of them three times
#: per loop pass, ``Conn_Handler`` in src/ngircd/conn.c), no per-IP limit (every
#: client comes from 127.0.0.1), no join limit, penalties off
#: (``MaxPenaltyTime = 0``), user mode ``F`` for everyone (10 instead of 3
#: commands per connection per loop pass; checked: ``MODE nick`` answers
#: ``221 +F``), ping timeouts longer than a run, and no DNS, ident or PAM
#: lookups at connect. Log lines go to the target's log file (stderr); there
#: is no per-message logging.
NGIRCD_CONF = """[Global]
  Name = bench.local
  Info = fanout benchmark
  Listen = {host}
  Ports = {port}
  MotdPhrase = bench
  AdminInfo1 = fanout benchmark
  AdminInfo2 = loopback
  AdminEMail = bench@bench.local
[Limits]
  MaxConnections = 0
  MaxConnectionsIP = 0
  MaxJoins = 0
  MaxNickLength = 30
  MaxPenaltyTime = 0
  PingTimeout = 600
  PongTimeout = 600
[Options]
  DNS = no
  Ident = no
  PAM = no
  DefaultUserModes = F
"""


def _wait_port(proc: subprocess.Popen, port: int, deadline: float) -> int:
    """Return *port* once it accepts a connection; raise if *proc* dies or time runs out."""
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return port
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port}")


TARGETS = ("chatroom", "chatroom-noflood", "chatroom-nohistory", "ngircd", "baseline-line",
           "baseline-pass", "chatroom-tls", "ngircd-tls", "chatroom-irc")
CHATROOMS = ("chatroom", "chatroom-noflood", "chatroom-nohistory", "chatroom-tls", "chatroom-irc")
#: Targets whose clients speak IRC (NICK/USER, JOIN #bench, PRIVMSG #bench) on the port the bench chose.
IRC_TARGETS = ("ngircd", "ngircd-tls", "chatroom-irc")
BASELINES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fanout_baselines.py")


@functools.lru_cache(maxsize=None)
def _chatroom_help() -> tuple[str, ...]:
    exe = shutil.which("chatroom-server")
    if exe is None:
        return ()
    try:
        out = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=20,
                             check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    return tuple(out.split())


def chatroom_has_flag(flag: str) -> bool:
    """True if ``chatroom-server --help`` lists *flag* (e.g. ``--flood-rate``)."""
    return flag in _chatroom_help()


#: Budget for the ``chatroom`` target when the server has flood control: on, but
#: generous (tokens per second and bucket size 40x the fastest sender's rate in
#: this load, ~2,500 lines/s), so the run measures its cost, not its limit.
GENEROUS_FLOOD = ("--flood-rate", "100000", "--flood-burst", "100000")


def chatroom_args(target: str) -> list[str]:
    """Arguments the bench adds for *target* (chatroom or chatroom-noflood), per ``--help``.

    ``--max-per-address 0``: every client comes from 127.0.0.1 (ngIRCd gets
    ``MaxConnectionsIP = 0`` alike). Flood control: :data:`GENEROUS_FLOOD` for
    ``chatroom`` and ``chatroom-nohistory``, ``--flood-rate 0`` (off) for
    ``chatroom-noflood``. ``chatroom-nohistory`` adds ``--no-history`` (rooms
    kept, nothing said recorded): beside ``chatroom`` it shows what recording
    the history costs.
    """
    out: list[str] = []
    if chatroom_has_flag("--max-per-address"):
        out += ["--max-per-address", "0"]
    if chatroom_has_flag("--flood-rate"):
        out += ["--flood-rate", "0"] if target == "chatroom-noflood" else list(GENEROUS_FLOOD)
    if target == "chatroom-nohistory" and chatroom_has_flag("--no-history"):
        out += ["--no-history"]
    if target == "chatroom-tls":
        out += ["--tls"]
    if target == "chatroom-irc":  # only the IRC door matters; the web listener is not needed
        out += ["--web-port", "off"]
    return out


def target_command(target: str, tmp: str, port: int, extra: str = "") -> list[str]:
    """The argv that starts *target* (files it needs are written under *tmp*).

    *extra* (shell-quoted) is appended to the chatroom targets' arguments.
    Raises ValueError for an unknown target, RuntimeError if a program is missing.
    """
    if target in ("ngircd", "ngircd-tls"):
        exe = shutil.which("ngircd") or "/usr/sbin/ngircd"
        if not os.path.exists(exe):
            raise RuntimeError("ngircd is not installed (apt-get install -y ngircd)")
        conf = os.path.join(tmp, "ngircd.conf")
        with open(conf, "w") as f:
            if target == "ngircd":
                f.write(NGIRCD_CONF.format(host=HOST, port=port))
            else:  # clients use *port*, TLS; the clear port is another, unused
                f.write(NGIRCD_CONF.format(host=HOST, port=free_port()) + ngircd_tls_section(tmp, port))
        return [exe, "-n", "-f", conf]
    if target in CHATROOMS:
        exe = shutil.which("chatroom-server")
        if exe is None:
            raise RuntimeError("chatroom-server is not installed (pip install -e .)")
        data = os.path.join(tmp, "chatroom-data")
        os.makedirs(data, exist_ok=True)
        extra_args = shlex.split(extra)
        if target == "chatroom-irc":  # the clients speak IRC on *port*, like ngIRCd's
            return [exe, "--port", "0", "--irc-port", str(port), "--data-dir", data] + chatroom_args(target) + extra_args
        if target not in ("chatroom", "chatroom-tls"):  # its flood / history setting wins over *extra*
            return [exe, "--port", "0", "--data-dir", data] + extra_args + chatroom_args(target)
        return [exe, "--port", "0", "--data-dir", data] + chatroom_args(target) + extra_args
    if target in ("baseline-line", "baseline-pass"):
        return [sys.executable, BASELINES, target.split("-", 1)[1]]
    raise ValueError(f"unknown target {target!r} (known: {', '.join(TARGETS)})")


def start_server(target: str, tmp: str, extra: str = "") -> Server:
    """Start *target* (one of :data:`TARGETS`) as a child process.

    Raises RuntimeError (with the tail of the server's log) if it does not come up in 15 s.
    """
    deadline = time.monotonic() + 15
    log_path = os.path.join(tmp, f"{target}.log")
    port = free_port()
    cmd = target_command(target, tmp, port, extra)
    irc = target in IRC_TARGETS
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log if irc else subprocess.PIPE, stderr=log)
    try:
        port = _wait_port(proc, port, deadline) if irc else _read_listen_line(proc, deadline)
    except RuntimeError as exc:
        proc.kill()
        proc.wait()
        with open(log_path, "rb") as log:
            tail = log.read()[-300:].decode(errors="replace")
        raise RuntimeError(f"{target} did not start ({exc}); log ends: {tail}") from None
    return Server(target, proc, port, irc, target.endswith("-tls"))


def stop_server(server: Server) -> None:
    """SIGTERM the server, SIGKILL after 3 s."""
    if server.proc.poll() is None:
        server.proc.terminate()
        try:
            server.proc.wait(3)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait(3)
