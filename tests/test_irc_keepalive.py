"""The IRC door's keep-alive, end to end: the real ``chatroom-server --irc-ping-after S`` PINGs a registered
client silent for S seconds and closes one that stays silent as long again with ``ERROR``; a client that
answers with PONG stays."""

from __future__ import annotations

import time
from typing import Any

from irc_kit import IrcClient, start_irc


def _closed(client: IrcClient, timeout: float = 10.0) -> bool:
    """Does the server close *client*'s connection within *timeout* s (everything it sent before is read)?"""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        client.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            if not client.sock.recv(65536):
                return True
        except TimeoutError:
            return False
    return False


def test_silent_client_is_pinged_then_closed_and_a_ponging_one_stays(server_factory: Any) -> None:
    server = start_irc(server_factory, "--irc-ping-after", "0.4")
    mute = IrcClient(server.irc_port)
    alive: IrcClient | None = None
    try:
        mute.register("mute")
        started = time.monotonic()
        ping = mute.expect("PING", timeout=5.0)
        assert ping.params == ["irc.test"], ping
        assert time.monotonic() - started >= 0.3  # not before the client was silent for --irc-ping-after
        error = mute.expect("ERROR", timeout=5.0)
        assert "Ping timeout" in error.params[-1], error
        assert _closed(mute)
        alive = IrcClient(server.irc_port)
        alive.register("alive")
        for _ in range(3):  # three rounds: each answered PING keeps the connection
            token = alive.expect("PING", timeout=5.0).params[-1]
            alive.send(f"PONG :{token}")
        alive.sync("still-here")
        assert not any(m.command == "ERROR" for m in alive.seen), alive.seen
    finally:
        mute.close()
        if alive is not None:
            alive.close()


def test_ping_after_is_refused_when_not_positive(server_factory: Any) -> None:
    from chatroom.server.options import OptionError, ServerOptions
    import pytest

    with pytest.raises(OptionError, match="irc_ping_after"):
        ServerOptions(irc_ping_after=0)
