"""What IRC clients and bot libraries do on connecting and in their channels, against the door in-process (the
server on the kit's fake I/O): defects found by driving irssi, WeeChat, the ``irc`` and ``pydle`` libraries
against ``chatroom-server --irc-port 0`` (docs/irc.md, "Tried with real clients"), pinned here."""

from __future__ import annotations

import base64
from pathlib import Path

from chatroom.model.accounts import hash_password
from chatroom.wire.irc import Message

from test_irc_fuzz import IrcFake, irc_room, registered


def _messages(client: IrcFake) -> list[Message]:
    return [m for m in client.take() if isinstance(m, Message)]


def test_an_autojoin_list_of_a_dozen_channels_is_joined_whole(tmp_path: Path) -> None:
    # irssi and WeeChat send their autojoin list as one JOIN: the door joined the first 10 and dropped the rest
    # without a word
    with irc_room(tmp_path) as room:
        maker = room.join("maker", admin=True)  # admins may make any number of rooms at once
        names = [f"#chan{i}" for i in range(14)]
        for name in names:
            maker.say(f"/join {name}")
        bob = registered(room, "bob")
        bob.line("JOIN " + ",".join(names))
        joined = [m.params[0] for m in _messages(bob) if m.command == "JOIN"]
        assert joined == names


def test_isupport_chanlimit_is_a_number_bot_libraries_can_parse(tmp_path: Path) -> None:
    # CHANLIMIT=#: (empty: no limit) made pydle's int('') fail and drop the rest of that 005 line (CHANNELLEN,
    # CHANTYPES, MODES, NETWORK...); a member can be in at most the rooms the server holds (--max-rooms)
    with irc_room(tmp_path, max_rooms=250) as room:
        bob = IrcFake(room)
        bob.line("NICK bob")
        bob.line("USER b 0 * :B")
        tokens = [t for m in _messages(bob) if m.command == "005" for t in m.params[1:-1]]
        limits = [t.partition("=")[2] for t in tokens if t.startswith("CHANLIMIT=")]
        assert limits == ["#:250"]
        for token in tokens:  # every name=value token has a value a client can read
            name, eq, value = token.partition("=")
            assert not eq or value or name in ("TARGMAX",), token


def test_a_privmsg_to_more_targets_than_targmax_says_which_were_not_sent(tmp_path: Path) -> None:
    # PRIVMSG a,b,c,d,e,f went to the first 4 (ISUPPORT TARGMAX=PRIVMSG:4) and the rest were dropped unsaid
    with irc_room(tmp_path) as room:
        names = [f"peer{i}" for i in range(6)]
        peers = [registered(room, name) for name in names]
        bob = registered(room, "bob")
        bob.line(f"PRIVMSG {','.join(names)} :hello all")
        refused = [m.params[1:] for m in _messages(bob) if m.command == "407"]
        assert len(refused) == 1 and refused[0][0] == "peer4" and "not to the other 2" in refused[0][1], refused
        got = [any(m.command == "PRIVMSG" for m in _messages(peer)) for peer in peers]
        assert got == [True] * 4 + [False] * 2
        bob.line(f"NOTICE {','.join(names)} :hello all")  # a NOTICE is never answered
        assert not [m for m in _messages(bob) if m.command == "407"]


def test_sasl_900_names_the_mask_of_the_nick_asked_for_not_the_guest_nick(tmp_path: Path) -> None:
    # pydle (and every client that logs in before registering) got "900 bot guest1!~bot@127.0.0.1 acct": the mask
    # was made from the guest nick the connection holds until it registers
    with irc_room(tmp_path) as room:
        room.server.port.accounts.create("acct", hash_password("acct-password"))
        bot = IrcFake(room)
        for text in ("CAP LS 302", "NICK bot", "USER botuser 0 * :Bot", "CAP REQ :sasl", "AUTHENTICATE PLAIN"):
            bot.line(text)
        bot.line("AUTHENTICATE " + base64.b64encode(b"\0acct\0acct-password").decode())
        room.settle()
        logged = [m.params for m in _messages(bot) if m.command == "900"]
        assert logged == [["bot", "bot!~botuser@127.0.0.1", "acct", "You are now logged in as acct"]]


def test_a_line_member_messaging_an_away_irc_member_learns_it_is_away(tmp_path: Path) -> None:
    # an IRC sender got 301 with the AWAY message; a line-protocol sender got a bare "OK sent to bob"
    with irc_room(tmp_path) as room:
        bob = registered(room, "bob")
        bob.line("AWAY :at lunch")
        alice = room.join("alice")
        assert alice.say("/msg bob are you there") == ["OK sent to bob (bob is away: at lunch)"]
        bob.line("AWAY")
        assert alice.say("/msg bob back?") == ["OK sent to bob"]


def test_chathistory_targets_keeps_to_the_time_window_and_the_limit(tmp_path: Path) -> None:
    # TARGETS listed every room the client was in, whatever the window and the limit it asked for
    with irc_room(tmp_path) as room:
        bob = registered(room, "bob", "CAP LS 302",
                          "CAP REQ :draft/chathistory batch server-time message-tags echo-message", "CAP END")
        bob.line("JOIN #quiet,#aa,#bb,#cc")  # #quiet: nothing said there
        times = {}
        for name in ("#aa", "#bb", "#cc"):
            room.advance(1.5)
            bob.take()
            bob.line(f"PRIVMSG {name} :hello {name}")
            times[name] = next(m.tags["time"] for m in _messages(bob) if m.command == "PRIVMSG")

        def targets(query: str) -> list[tuple[str, str]]:
            bob.line(f"CHATHISTORY TARGETS {query}")
            return [(m.params[1], m.params[2]) for m in _messages(bob) if m.command == "CHATHISTORY"]

        everything = "timestamp=2020-01-01T00:00:00.000Z timestamp=2262-01-01T00:00:00.000Z"
        assert targets(f"{everything} 100") == [(name, times[name]) for name in ("#aa", "#bb", "#cc")]
        assert [t for t, _ in targets(f"{everything} 2")] == ["#aa", "#bb"]
        assert [t for t, _ in targets(f"timestamp={times['#aa']} timestamp=2262-01-01T00:00:00Z 9")] == ["#bb", "#cc"]
        assert [t for t, _ in targets(f"timestamp={times['#cc']} timestamp={times['#aa']} 9")] == ["#bb"]
        bob.line("CHATHISTORY TARGETS * * 10")
        assert [m.params[:3] for m in _messages(bob) if m.command == "FAIL"] == [
            ["CHATHISTORY", "INVALID_PARAMS", "TARGETS"]]


def test_a_ban_by_bare_nick_is_told_and_listed_as_the_same_mask(tmp_path: Path) -> None:
    # MODE +b lvic was broadcast as "+b lvic" but listed (367) as "*!*@127.0.0.1", what it means for a guest:
    # WeeChat and irssi keep the channel's ban list from both, and their lists disagreed with the server's
    with irc_room(tmp_path) as room:
        room.join("lvic")  # a guest of the line protocol: a ban by its nick bans its address
        bop = registered(room, "bop")
        bop.line("JOIN #bans")
        bop.take()
        bop.line("MODE #bans +b lvic")
        bop.line("MODE #bans b")
        got = _messages(bop)
        assert [m.params[1:] for m in got if m.command == "MODE"] == [["+b", "*!*@127.0.0.1"]]
        assert [m.params[2] for m in got if m.command == "367"] == ["*!*@127.0.0.1"]
        bop.line("MODE #bans -b lvic")  # the nick it was given by still lifts it
        assert [m.params[1:] for m in _messages(bop) if m.command == "MODE"] == [["-b", "*!*@127.0.0.1"]]


def test_dcc_is_refused_aloud_and_ctcp_to_other_doors_is_answered(tmp_path: Path) -> None:
    # /dcc send from irssi reached another IRC client (a direct transfer past the relay, its consent and its
    # quotas, which docs/irc.md says the door does not do) and vanished without a word towards a line member;
    # so did a CTCP VERSION to a line member
    with irc_room(tmp_path) as room:
        alice = room.join("alice")
        bob, carol = registered(room, "bob"), registered(room, "carol")
        dcc = "\x01DCC SEND notes.txt 2130706433 5000 100\x01"
        bob.line(f"PRIVMSG carol :{dcc}")
        bob.line(f"PRIVMSG alice :{dcc}")
        bob.line("PRIVMSG alice :\x01VERSION\x01")
        bob.line("NOTICE alice :\x01VERSION irssi\x01")  # a CTCP reply: dropped, never answered
        told = [m.params[1] for m in _messages(bob) if m.command == "NOTICE"]
        assert len(told) == 3 and all("DCC is not relayed" in t for t in told[:2]), told
        assert "does not answer CTCP VERSION" in told[2], told
        assert not [m for m in _messages(carol) if m.command == "PRIVMSG"]
        assert not [line for line in alice.received if "bob" in line and "(private)" in line], alice.received


def test_a_labeled_chatroom_command_gets_its_replies_under_its_label(tmp_path: Path) -> None:
    # "@label=r1 ROOMS" got its NOTICEs unlabeled and then "ACK" (labeled-response: no reply at all): a bot
    # matching replies to its commands by label saw none
    with irc_room(tmp_path) as room:
        bot = registered(room, "bot", "CAP LS 302", "CAP REQ :batch labeled-response", "CAP END")
        bot.line("@label=r1 ROOMS")
        got = _messages(bot)
        assert [m.command for m in got] == ["BATCH", "NOTICE", "NOTICE", "BATCH"], got
        assert got[0].tags == {"label": "r1"} and got[0].params[1] == "labeled-response"
        assert all(m.tags.get("batch") == got[0].params[0][1:] for m in got[1:3]), got
        assert got[-1].params == ["-" + got[0].params[0][1:]]
        bot.line("@label=r2 NICK bot")  # a command with no reply still gets its ACK
        assert [(m.command, m.tags) for m in _messages(bot)] == [("ACK", {"label": "r2"})]


def test_list_takes_channel_masks(tmp_path: Path) -> None:
    # irssi's "/list #py*" sends LIST #py*: the door looked it up as a room name and listed nothing
    with irc_room(tmp_path) as room:
        bob = registered(room, "bob")
        bob.line("JOIN #pyone,#PyTwo,#other")
        bob.take()

        def listed(query: str) -> list[str]:
            bob.line(f"LIST {query}".rstrip())
            return sorted(m.params[1] for m in _messages(bob) if m.command == "322")

        assert listed("#py*") == ["#pyone", "#pytwo"]
        assert listed("#PY?WO,#other") == ["#other", "#pytwo"]
        assert listed("#nothing*") == []
        assert listed("") == ["#other", "#pyone", "#pytwo"]


def test_terminal_escapes_from_irc_never_reach_the_other_doors(tmp_path: Path) -> None:
    # a room line, a topic and a part reason from IRC reached nc users with their escape sequences (ESC [2J
    # clears a terminal), where the line protocol strips them from its own input; IRC's formatting codes stay
    with irc_room(tmp_path) as room:
        alice = room.join("alice")
        alice.say("/join #colors")
        bob, carol = registered(room, "bob"), registered(room, "carol")
        bob.line("JOIN #colors")
        carol.line("JOIN #colors")
        carol.take()
        bob.line("PRIVMSG #colors :\x02bold\x02 \x0304red\x03 \x1b[2Jgone\x07 \x9b31mx")
        bob.line("TOPIC #colors :\x1b]0;title\x07topic")
        bob.line("PRIVMSG #colors :\x1b[2J")
        bob.line("PART #colors :\x1b[31mbye")
        said = [line for line in alice.received if "bob" in line and "joined" not in line]
        assert said == ["bob: \x02bold\x02 \x0304red\x03 gone x", "* bob set the topic of colors: topic",
                        "* bob left colors (bye)"], said
        got = [(m.command, m.params[-1]) for m in _messages(carol) if m.command in ("PRIVMSG", "TOPIC", "PART")]
        assert got == [("PRIVMSG", "\x02bold\x02 \x0304red\x03 gone x"), ("TOPIC", "topic"), ("PART", "bye")]
        assert [m.command for m in _messages(bob) if m.command == "412"] == ["412"]


def test_ison_answers_for_members_of_every_door(tmp_path: Path) -> None:
    # irssi's and WeeChat's /notify send ISON every minute: it was "421 ISON Unknown command" in the status window
    with irc_room(tmp_path) as room:
        room.join("alice")
        bob = registered(room, "bob")
        bob.line("ISON ALICE nobody bob")
        bob.line("ISON :alice carol")  # the trailing form irssi sends
        assert [m.params[1:] for m in _messages(bob) if m.command in ("303", "421")] == [["alice bob"], ["alice"]]


def test_a_kick_of_more_nicks_than_targmax_says_which_were_not_kicked(tmp_path: Path) -> None:
    # ISUPPORT said KICK:1 while the door kicked up to 4 and dropped the rest of the list without a word
    with irc_room(tmp_path) as room:
        op = registered(room, "op")
        op.line("JOIN #den")
        names = [f"peer{i}" for i in range(6)]
        peers = [registered(room, name) for name in names]
        for peer in peers:
            peer.line("JOIN #den")
        op.take()
        op.line(f"KICK #den {','.join(names)} :out")
        replies = _messages(op)
        refused = [m.params[1:] for m in replies if m.command == "407"]
        assert len(refused) == 1 and refused[0][0] == "peer4" and "not the other 2" in refused[0][1], refused
        assert [m.params[1] for m in replies if m.command == "KICK"] == names[:4]
        welcome = IrcFake(room)
        welcome.line("NICK w")
        welcome.line("USER w 0 * :W")
        tokens = [t for m in _messages(welcome) if m.command == "005" for t in m.params[1:-1]]
        assert any(t.startswith("TARGMAX=") and "KICK:4" in t for t in tokens), tokens
