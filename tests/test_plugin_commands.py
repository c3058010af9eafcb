"""Plugin API 1.0 (issue 11): commands with typed arguments, subcommands, rate limits and examples."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from chatroom import Command, Example, Param, Rate, UsageError, hookimpl
from chatroom.kitexamples import check_example, collect_examples
from chatroom.testing import example_tests


def plugin(*cmds: Command) -> SimpleNamespace:
    return SimpleNamespace(register_commands=hookimpl(lambda: list(cmds)))


def echo_args(ctx, args):
    ctx.reply(repr(dict(args)))


# -- typed arguments --------------------------------------------------------------------------
ROLL = Command("roll", echo_args, params=[Param("sides", int, default=6, min=2, max=1000),
                                          Param("times", int, default=1, min=1, max=10)])
SET = Command("set", echo_args, params=[Param("mode", choices=("mask", "drop")), Param("on", bool, default=True)])
TELL = Command("say2", echo_args, params=[Param("nick", "nick"), Param("text", rest=True)])
GO = Command("go", echo_args, params=[Param("room", "room"), Param("names", many=True, default=())])
NAME = Command("name", echo_args, params=[Param("name", min=2, max=5)])


@pytest.fixture
def room(chatroom_room):
    return chatroom_room(plugins=[("typed", plugin(ROLL, SET, TELL, GO, NAME))])


@pytest.mark.parametrize("line, reply", [
    ("/roll", "{'sides': 6, 'times': 1}"),
    ("/roll 20", "{'sides': 20, 'times': 1}"),
    ("/roll 20 3", "{'sides': 20, 'times': 3}"),
    ("/set DROP off", "{'mode': 'DROP', 'on': False}"),
    ("/set mask", "{'mode': 'mask', 'on': True}"),
    ('/say2 bob  hi "there"  you', "{'nick': 'bob', 'text': 'hi \"there\"  you'}"),
    ("/say2 BOB hi", "{'nick': 'bob', 'text': 'hi'}"),
    ("/go design alice bob", "{'room': '#design', 'names': ('alice', 'bob')}"),
    ("/go #x", "{'room': '#x', 'names': ()}"),
    ('/name "ab c"', "{'name': 'ab c'}"),
])
def test_typed_arguments_are_converted_before_the_handler_runs(room, line, reply):
    alice = room.join("alice")
    room.join("bob")
    assert alice.say(line) == [reply]


@pytest.mark.parametrize("line, reply", [
    ("/roll x", "ERROR usage: /roll [SIDES] [TIMES]: SIDES must be a whole number"),
    ("/roll 1", "ERROR usage: /roll [SIDES] [TIMES]: SIDES must be from 2 to 1000"),
    ("/roll 6 11", "ERROR usage: /roll [SIDES] [TIMES]: TIMES must be from 1 to 10"),
    ("/roll 6 1 1", "ERROR usage: /roll [SIDES] [TIMES]: too many arguments: 1"),
    ("/roll 1e9", "ERROR usage: /roll [SIDES] [TIMES]: SIDES must be a whole number"),
    ("/roll ６", "ERROR usage: /roll [SIDES] [TIMES]: SIDES must be a whole number"),
    ("/set", "ERROR usage: /set {mask|drop} [ON]: MODE is missing"),
    ("/set shout", "ERROR usage: /set {mask|drop} [ON]: MODE must be one of mask, drop"),
    ("/set mask maybe", "ERROR usage: /set {mask|drop} [ON]: ON must be on or off"),
    ("/say2 carol hi", "ERROR usage: /say2 NICK TEXT: no such nick: carol"),
    ("/say2 bob", "ERROR usage: /say2 NICK TEXT: TEXT is missing"),
    ("/go", "ERROR usage: /go ROOM [NAMES...]: ROOM is missing"),
    ("/name a", "ERROR usage: /name NAME: NAME must be from 2 to 5 characters long"),
    ('/name "abc', "ERROR usage: /name NAME: unbalanced quotes"),
])
def test_bad_arguments_are_answered_with_the_usage_and_why(room, line, reply):
    alice = room.join("alice")
    room.join("bob")
    assert alice.say(line) == [reply]
    assert room.faults == []


def test_a_declaration_the_parser_cannot_honour_is_a_load_error(chatroom_room):
    with pytest.raises(TypeError, match="required parameter cannot follow an optional one"):
        Command("bad", echo_args, params=[Param("a", default=1), Param("b")])
    with pytest.raises(TypeError, match="only the last parameter"):
        Command("bad", echo_args, params=[Param("a", many=True), Param("b")])
    with pytest.raises(TypeError, match="unknown type"):
        Command("bad", echo_args, params=[Param("a", "colour")])


def test_usage_error_without_text_gives_the_commands_usage(chatroom_room):
    def strict(ctx, args):
        raise UsageError()

    room = chatroom_room(plugins=[("u", plugin(Command("strict", strict, usage="/strict WORD"),
                                               Command("auto", strict, params=[Param("word")])))])
    alice = room.join("alice")
    assert alice.say("/strict") == ["ERROR usage: /strict WORD"]
    assert alice.say("/auto x") == ["ERROR usage: /auto WORD"]


# -- subcommands -------------------------------------------------------------------------------
def make_poll():
    def show(ctx, args):
        ctx.reply(f"show {ctx.command.name} {ctx.args!r}")

    def create(ctx, args):
        ctx.reply(f"create {ctx.command.name} {args.question} {args.options}")

    def close(ctx, args):
        ctx.reply(f"closed by {ctx.nick} via /{ctx.command.name}")

    return Command("poll", show, summary="Polls", subcommands=[
        Command("new", create, params=[Param("question"), Param("options", many=True)], summary="Start a poll",
                examples=[('/poll new "Lunch?" pizza soup', "create poll new Lunch? ('pizza', 'soup')")]),
        Command("close", close, aliases=("end",), requires="operator", summary="Close the poll"),
    ])


def test_subcommands_are_reached_by_their_first_word_with_their_own_handler_and_usage(chatroom_room):
    room = chatroom_room(plugins=[("poll", plugin(make_poll()))])
    alice, bob = room.join("alice"), room.join("bob")
    assert alice.say("/register hunter2hunter2")[0].startswith("OK registered")
    alice.say("/join #polls")  # she opens it, logged in: its owner and operator
    bob.say("/join #polls")
    assert alice.say("/poll") == ["show poll []"]
    assert alice.say("/poll what") == ["show poll ['what']"]  # no subcommand of that name: the command's own
    assert alice.say('/poll NEW "Lunch?" pizza soup') == ["create poll new Lunch? ('pizza', 'soup')"]
    assert alice.say('/poll new "Lunch?"') == ["ERROR usage: /poll new QUESTION OPTIONS...: OPTIONS is missing"]
    assert bob.say("/poll close") == ["ERROR permission denied: /poll close needs a room operator"]
    assert alice.say("/poll end") == ["closed by alice via /poll close"]


def test_help_shows_subcommands_parameters_and_examples(chatroom_room):
    room = chatroom_room(plugins=[("poll", plugin(make_poll(), ROLL))])
    alice, bob = room.join("alice"), room.join("bob")
    alice.say("/register hunter2hunter2")
    alice.say("/join #polls")
    bob.say("/join #polls")
    assert bob.say("/help poll") == [
        "/poll - Polls",
        "  /poll new QUESTION OPTIONS... - Start a poll",
        "  e.g. /poll new \"Lunch?\" pizza soup  ->  create poll new Lunch? ('pizza', 'soup')",
    ]  # bob is no operator: /poll close is not listed
    assert "  /poll close, /end - Close the poll" not in alice.say("/help poll")
    assert "  /poll close - Close the poll" in alice.say("/help poll")


# -- rate limits -------------------------------------------------------------------------------
def test_rate_per_user_room_and_server(chatroom_room):
    cmds = [Command("u", echo_args, rate=Rate(user=10)), Command("r", echo_args, rate=Rate(room=5)),
            Command("s", echo_args, rate=Rate(server=3, message="slow down, {seconds} s to go"))]
    room = chatroom_room(plugins=[("rated", plugin(*cmds))])
    alice, bob = room.join("alice"), room.join("bob")
    assert alice.say("/u") == ["{}"]
    assert alice.say("/u") == ["ERROR /u: too soon, try again in 10 s"]
    assert bob.say("/u") == ["{}"]  # per member
    room.advance(9.5)
    assert alice.say("/u") == ["ERROR /u: too soon, try again in 1 s"]
    room.advance(0.5)
    assert alice.say("/u") == ["{}"]
    assert alice.say("/r") == ["{}"]
    assert bob.say("/r") == ["ERROR /r: too soon, try again in 5 s"]  # same room
    bob.say("/join #other")
    assert bob.say("/r") == ["{}"]  # another room
    assert alice.say("/s") == ["{}"]
    assert bob.say("/s") == ["ERROR slow down, 3 s to go"]


def test_a_guest_rate_follows_its_connection_and_address_not_its_nick(chatroom_room):
    """Issue 17 row 12: /nick gives no fresh Rate(user=...) bucket, nor does reconnecting from the same address;
    another guest connected from that address keeps its own; an account's bucket follows the account."""
    room = chatroom_room(plugins=[("rated", plugin(Command("u", echo_args, rate=Rate(user=60))))])
    guest, other = room.join("guest"), room.join("other")  # both from 127.0.0.1 in the kit
    assert guest.say("/u") == ["{}"]
    guest.say("/nick renamed")
    assert guest.say("/u") == ["ERROR /u: too soon, try again in 60 s"]
    assert other.say("/u") == ["{}"]  # its own bucket, although from the same address
    room.advance(10)
    guest.leave()
    again = room.join("again")
    assert again.say("/u") == ["ERROR /u: too soon, try again in 50 s"]  # what the guest who left still owed
    room.advance(50)
    assert again.say("/u") == ["{}"]
    alice = room.join("alice")
    assert alice.say("/register hunter2hunter2")[-1].startswith("OK registered")
    assert alice.say("/u") == ["{}"]
    alice.leave()
    assert room.join().say("/login alice hunter2hunter2") == ["OK logged in as alice"]
    assert room.find("alice").say("/u") == ["ERROR /u: too soon, try again in 60 s"]  # keyed by the account


def test_only_calls_that_reach_the_handler_count_and_admins_are_not_limited(chatroom_room, tmp_path):
    room = chatroom_room(plugins=[("rated", plugin(Command("roll", echo_args, rate=Rate(user=60),
                                                           params=[Param("n", int)])))])
    alice = room.join("alice")
    assert alice.say("/roll x")[0].startswith("ERROR usage")
    assert alice.say("/roll 1") == ["{'n': 1}"]
    admin_room = chatroom_room(plugins=[("rated", plugin(Command("u", echo_args, rate=Rate(user=60))))])
    admin_room.server.admins = frozenset({"root"})
    root = admin_room.join("root")
    assert root.say("/register hunter2hunter2")[-1].startswith("OK")
    assert [root.say("/u")[-1] for _ in range(3)] == ["{}", "{}", "{}"]


# -- examples ----------------------------------------------------------------------------------
HELLO = Command("hello", lambda ctx, args: ctx.reply(f"hello, {args.name}!"), params=[Param("name")],
                examples=[("/hello Bob", "hello, Bob!"), Example("/hello", (r"ERROR usage: .*",), regex=True)])
LIAR = Command("liar", lambda ctx, args: ctx.reply("no"), examples=[("/liar", "yes")])

test_examples_of_a_plugin = example_tests(("greet", plugin(HELLO)))
test_examples_of_the_builtins = example_tests(builtins=True)


def test_collect_examples_lists_each_example_with_its_command():
    found = collect_examples([("greet", plugin(HELLO))])
    assert [(c.name, e.line) for c, e in found] == [("hello", "/hello Bob"), ("hello", "/hello")]
    assert collect_examples([("poll", plugin(make_poll()))])[0][0].name == "poll new"


def test_an_example_that_is_no_longer_true_fails(chatroom_room):
    room = chatroom_room(plugins=[("liar", plugin(LIAR))])
    with pytest.raises(AssertionError, match=r"example '/liar': expected \['yes'\], got \['no'\]"):
        check_example(room, LIAR.examples[0])


def test_example_tuples_are_normalised():
    assert Example.of(("/x", "a")) == Example("/x", ("a",))
    assert Example.of(("/x", ("a", "b"), True)) == Example("/x", ("a", "b"), True)
    with pytest.raises(TypeError):
        Example.of(["/x", "a"])  # type: ignore[arg-type]
