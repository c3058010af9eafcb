"""The server's options object: one frozen ServerOptions, every range checked in one place, built alike from
the command line and the test kit (issue 18, "One options object for the server")."""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path

import pytest

from chatroom.server.flags import build_parser
from chatroom.server.options import Bounds, OptionError, ServerOptions, flag, parse_size

NUMERIC = {f.name: f.metadata["bounds"] for f in dataclasses.fields(ServerOptions) if "bounds" in f.metadata}
#: Fields set otherwise than by a flag of their own name.
NOT_FLAGS = {"admins": "the config file", "server_password": "--password-file", "web": "--web-port off"}


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def out_of_range(bounds: Bounds) -> list[str]:
    """Texts each flag with *bounds* must refuse."""
    texts = [str(bounds.low - 1) if bounds.kind is int else repr(bounds.low - 0.5), "x"]
    if bounds.above:
        texts.append(str(bounds.low))
    if math.isfinite(bounds.high):
        texts.append(str(int(bounds.high) + 1))
    if bounds.kind is float:
        texts += ["nan", "inf"]
    elif bounds.parse is not parse_size:  # a size may be 1.5G
        texts.append("1.5")
    return texts


def test_every_numeric_field_has_bounds_and_every_field_a_flag_of_its_name() -> None:
    for item in dataclasses.fields(ServerOptions):
        if str(item.type) in ("int", "float", "int | None", "float | None"):
            assert item.name in NUMERIC, f"{item.name} is a number without a range"
    assert ServerOptions.__dataclass_fields__["history_keep"].type.startswith("tuple[int"), "checked on its own"
    dests = {action.dest for action in build_parser()._actions}
    assert {f.name for f in dataclasses.fields(ServerOptions)} - dests == set(NOT_FLAGS)


def test_absent_flags_leave_the_options_defaults() -> None:
    assert ServerOptions.from_args(parse()) == ServerOptions()
    assert ServerOptions().port is None and ServerOptions().web_port is None, "absent: last time's port"


@pytest.mark.parametrize("name", sorted(NUMERIC))
def test_each_numeric_flag_and_field_refuses_what_is_out_of_range(name: str, capsys: pytest.CaptureFixture[str]) \
        -> None:
    bounds = NUMERIC[name]
    for text in out_of_range(bounds) if name not in NOT_FLAGS else []:
        with pytest.raises(SystemExit) as exited:
            parse(f"{flag(name)}={text}")
        assert exited.value.code == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and f"argument {flag(name)}: " in err[0] and repr(text) in err[0], err
    for value in (bounds.low - 1, math.nan, True, "3"):
        with pytest.raises(OptionError, match=rf"option {name} \({flag(name)}\) must be .*: {value!r}"):
            ServerOptions(**{name: value})
    if bounds.above:
        with pytest.raises(OptionError):
            ServerOptions(**{name: bounds.low})


def test_the_issues_examples_are_refused_in_words() -> None:
    with pytest.raises(OptionError, match=r"slow_hook_ms \(--slow-hook-ms\) must be a number more than 0.*: nan"):
        ServerOptions(slow_hook_ms=math.nan)
    with pytest.raises(OptionError, match=r"ready_grace \(--ready-grace\) must be a number from 0 to 86400: -1"):
        ServerOptions(ready_grace=-1)
    with pytest.raises(OptionError, match=r"plugin_fault_limit \(--plugin-fault-limit\) must be an integer, 1 or more"):
        ServerOptions(plugin_fault_limit=0)


def test_the_other_fields_are_checked_and_normalised() -> None:
    options = ServerOptions(default_room="Class", admins=["root"], web_origins=["https://a.example"],
                            data_dir="d", server_password="s3cret")  # type: ignore[arg-type]
    assert (options.default_room, options.admins, options.web_origins) == ("#class", ("root",), ("https://a.example",))
    assert options.data_dir == Path("d") and "s3cret" not in repr(options)
    for bad in (dict(default_room="no spaces"), dict(history_keep=(0, None)), dict(history_keep=(None, math.inf)),
                dict(tls_cert=Path("c.pem")), dict(server_password=""), dict(admins="root")):
        with pytest.raises(OptionError):
            ServerOptions(**bad)  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.port = 5  # type: ignore[misc]
    assert options.replace(port=5).port == 5 and options.port is None
    assert ServerOptions(tls_port=0).tls_enabled and not ServerOptions().tls_enabled


def test_the_kit_builds_the_server_from_the_same_options(chatroom_room) -> None:  # type: ignore[no-untyped-def]
    room = chatroom_room(max_file_size=10, default_room="#class", fault_limit=2, admins=["root"])
    options = room.server.options
    assert (options.max_file_size, options.default_room, options.plugin_fault_limit) == (10, "#class", 2)
    assert (options.flood_rate, options.web) == (0.0, False), "the kit's own defaults"
    assert room.server.max_file_size == 10 and room.server.admins == frozenset({"root"})
    assert room.join("alice").received[0].startswith("* Welcome to chatroom, room class.")
    with pytest.raises(ValueError, match="slow_hook_ms"):
        chatroom_room(slow_hook_ms=math.nan)
    with pytest.raises(ValueError, match="plugin_fault_limit"):
        chatroom_room(fault_limit=0)
    with pytest.raises(TypeError, match="no_such_option"):
        chatroom_room(no_such_option=1)
