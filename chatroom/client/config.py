"""``chatroom-client``'s config file: ``~/.config/chatroom/client.toml`` (``$XDG_CONFIG_HOME`` respected).

Every long option of the command line can be set there, under its name
with ``_`` or ``-`` (``send_dir`` or ``send-dir``), as a TOML value of its
kind; flags given on the command line win. Tables only group keys:
``[tls]``, ``[display]`` and ``[files]`` may hold any key. For example::

    host = "chat.example.org"
    port = 5000
    name = "alice"
    reconnect = true

    [tls]
    tls = true
    fingerprint = "SHA256:AB:CD:..."

    [display]
    timestamps = "%H:%M:%S"   # false: none
    color = "never"

* Switches (``--auto-send``, ``--tls``, ``--reconnect``...) take ``true`` or
  ``false``; an option with a ``--no-X`` form (``--no-timestamps``) also takes
  ``false`` for it. Numbers and text are checked as the flag checks them
  (``port = 70000`` is refused). Paths: ``~`` is expanded; a relative path
  is relative to the directory the client runs in, as on the command line.
* Passwords are not read from it (``$CHATROOM_PASSWORD``,
  ``$CHATROOM_SERVER_PASSWORD`` are the way to keep them off the command line).
* A missing default file is no error; a missing ``--config PATH`` is. Any
  problem raises :class:`ConfigError` with one line to print (the client
  exits with status 2): ``client.toml: unknown key 'hots' (did you mean 'host'?)``,
  TOML syntax errors with their line and column.

Pure functions of their arguments; any thread.
"""

from __future__ import annotations

import argparse
import difflib
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["GROUPS", "NOT_IN_FILE", "ConfigError", "config_values", "default_config_path", "load_config"]

#: Table names that only group keys.
GROUPS = ("tls", "display", "files")
#: Options the file may not set (secrets, and the file itself).
NOT_IN_FILE = {"config": "the config file cannot name another",
               "password": "passwords are not read from the config file: use $CHATROOM_PASSWORD",
               "server_password": "passwords are not read from the config file: use $CHATROOM_SERVER_PASSWORD",
               "help": "not an option", "version": "not an option"}


class ConfigError(Exception):
    """The config file cannot be used; the message is the one line to print."""


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/chatroom/client.toml``, else ``~/.config/chatroom/client.toml``."""
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "chatroom" / "client.toml"


def load_config(path: Path, parser: argparse.ArgumentParser, *, required: bool) -> dict[str, Any]:
    """The option values (``{dest: value}``) set in the file at *path*, checked against *parser*'s options.

    *required*: a missing file is an error (``--config PATH``); otherwise it gives ``{}``.
    Raises :class:`ConfigError`.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if required:
            raise ConfigError(f"{path}: no such file") from None
        return {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return config_values(data, parser, str(path))


def _options(parser: argparse.ArgumentParser) -> tuple[dict[str, argparse.Action], dict[str, argparse.Action]]:
    """(dest -> main action, dest -> its ``--no-X`` store_const sibling) for every long option."""
    main: dict[str, argparse.Action] = {}
    negative: dict[str, argparse.Action] = {}
    for action in parser._actions:  # noqa: SLF001 - argparse has no public list of its actions
        if not any(o.startswith("--") for o in action.option_strings) or action.dest in NOT_IN_FILE:
            continue
        if isinstance(action, argparse._StoreConstAction) and action.dest in main:  # noqa: SLF001
            negative[action.dest] = action
        elif action.dest not in main:
            main[action.dest] = action
    return main, negative


def config_values(data: Mapping[str, Any], parser: argparse.ArgumentParser, where: str) -> dict[str, Any]:
    """Check parsed TOML *data* against *parser*'s long options; ``{dest: value}``. *where* names the file
    in messages. Raises :class:`ConfigError`."""
    main, negative = _options(parser)
    flat: list[tuple[str, Any]] = []
    for key, value in data.items():
        if key in GROUPS and isinstance(value, dict):
            flat.extend((f"{key}.{k}", v) for k, v in value.items())
        else:
            flat.append((key, value))
    out: dict[str, Any] = {}
    for shown, value in flat:
        dest = shown.rpartition(".")[2].replace("-", "_")
        if dest in NOT_IN_FILE:
            raise ConfigError(f"{where}: {shown}: {NOT_IN_FILE[dest]}")
        action = main.get(dest)
        if action is None:
            known = sorted(main) + list(GROUPS)
            guess = difflib.get_close_matches(dest, known, n=1, cutoff=0.6)
            hint = f" (did you mean '{guess[0]}'?)" if guess else f" (known: {', '.join(sorted(main))})"
            raise ConfigError(f"{where}: unknown key '{shown}'{hint}")
        out[dest] = _value(action, negative.get(dest), value, f"{where}: {shown}")
    return out


def _value(action: argparse.Action, negative: argparse.Action | None, value: Any, where: str) -> Any:
    if action.nargs == 0:  # a switch: store_true, BooleanOptionalAction...
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: true or false, not {value!r}")
        return value if action.const in (True, None) else (action.const if value else action.default)
    if isinstance(value, bool):
        if value is False and negative is not None:
            return negative.const
        raise ConfigError(f"{where}: a value, not {str(value).lower()}")
    if isinstance(value, (dict, list)):
        raise ConfigError(f"{where}: a single value, not a {'table' if isinstance(value, dict) else 'list'}")
    text = str(value)
    if action.type is not None:
        try:
            if action.type is Path:
                converted: Any = Path(text).expanduser()
            elif not callable(action.type):  # a type registered by name: none of the client's options
                raise TypeError(f"{action.dest}: cannot convert to {action.type!r}")
            else:
                converted = action.type(text)
        except (argparse.ArgumentTypeError, ValueError, TypeError) as exc:
            raise ConfigError(f"{where}: {exc}") from None
    elif not isinstance(value, str):
        raise ConfigError(f"{where}: text in quotes, not {value!r}")
    else:
        converted = text
    if action.choices is not None and converted not in action.choices:
        raise ConfigError(f"{where}: {text!r} is not one of {', '.join(map(str, action.choices))}")
    return converted
