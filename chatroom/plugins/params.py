"""Typed command arguments: what a command declares, and the parser the core runs before its handler.

A command may declare its arguments as :class:`Param` objects, in the spirit
of :mod:`argparse` (positional only, as chat commands are)::

    Command("roll", roll, params=[Param("sides", int, default=6, min=2, max=1000)])
    Command("poll", poll, params=[Param("question"), Param("options", many=True, default=())])
    Command("msg", msg, params=[Param("nick", "nick"), Param("text", rest=True)])

The core splits the argument text like a POSIX shell (:mod:`shlex`), converts
and checks each value, and calls the handler with an :class:`Args` (attribute
and item access: ``args.sides``, ``args["sides"]``). Any misuse is answered
with ``ERROR usage: USAGE: WHY`` (``ERROR usage: /roll [SIDES]: SIDES must be
from 2 to 1000``, ``...: SIDES must be a whole number``; docs/protocol.md
lists them) and the handler never runs.

Types: ``str`` (the default), ``int``, ``float``, ``bool`` (``on/off``,
``yes/no``, ``true/false``, ``1/0``), ``"nick"`` (a connected member's nick,
checked to exist and given as that member's nick, properly cased), ``"room"``
(``#name``; ``name`` gets its ``#``), or any callable ``str -> value`` that
raises :class:`ValueError` with a reason. Loop thread only (the parser reads
who is connected).
"""

from __future__ import annotations

import io
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["REQUIRED", "Args", "Param", "ParamError", "parse_params", "params_usage"]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: The default of a :class:`Param` that must be given.
REQUIRED: Any = _Required()

_TRUE = {"on", "yes", "true", "1"}
_FALSE = {"off", "no", "false", "0"}


class ParamError(ValueError):
    """An argument is missing, extra or of the wrong type; the message says which and why (no usage)."""


@dataclass(frozen=True)
class Param:
    """One positional argument of a command.

    ``name`` (shown upper-cased in the usage line), ``type`` (see the module
    docstring), ``default`` (:data:`REQUIRED` when it must be given; an
    optional one is shown ``[NAME]``), ``choices`` (the allowed values after
    conversion, compared case-insensitively for strings), ``min``/``max``
    (bounds for numbers, or the length of a string), ``many`` (takes every
    remaining word as a tuple; at least one unless it has a default),
    ``rest`` (takes the remaining text as it was typed, quotes and spaces
    included: free text such as a message), ``help`` (one line for ``/help``).
    Only the last parameter may have ``many`` or ``rest``.
    """

    name: str
    type: Callable[[str], Any] | str = str
    default: Any = REQUIRED
    choices: tuple[Any, ...] = ()
    min: float | None = None
    max: float | None = None
    many: bool = False
    rest: bool = False
    help: str = ""

    @property
    def required(self) -> bool:
        """True when the caller must give it."""
        return self.default is REQUIRED

    def usage(self) -> str:
        """How the usage line shows it: ``NAME``, ``[NAME]``, ``NAME...``, ``{a|b}``."""
        word = "{" + "|".join(str(c) for c in self.choices) + "}" if self.choices else self.name.upper()
        if self.many:
            word += "..."
        return word if self.required else f"[{word}]"

    def convert(self, raw: str, members: Callable[[str], Any] | None = None) -> Any:
        """*raw* converted and checked; raises :class:`ParamError` saying why not."""
        name = self.name.upper()
        kind = self.type
        try:
            if kind is str:
                value: Any = raw
            elif kind is int:
                value = int(raw, 10) if raw.strip().lstrip("+-").isascii() else int("x")
            elif kind is float:
                value = float(raw)
                if value != value or value in (float("inf"), float("-inf")):
                    raise ValueError
            elif kind is bool:
                low = raw.lower()
                if low not in _TRUE | _FALSE:
                    raise ParamError(f"{name} must be on or off")
                value = low in _TRUE
            elif kind == "nick":
                member = members(raw) if members is not None else None
                if member is None:
                    raise ParamError(f"no such nick: {raw[:64]}")
                value = member.nick
            elif kind == "room":
                value = raw if raw.startswith("#") else "#" + raw
            elif callable(kind):
                value = kind(raw)
            else:  # pragma: no cover - a declaration error, caught by check_params
                raise ParamError(f"{name}: unknown type {kind!r}")
        except ParamError:
            raise
        except (ValueError, TypeError) as exc:
            what = "a whole number" if kind is int else "a number" if kind is float else None
            reason = f"{name} must be {what}" if what else str(exc) or f"{name} is not valid"
            raise ParamError(reason) from None
        self._check(value)
        return value

    def _check(self, value: Any) -> None:
        name = self.name.upper()
        if self.choices:
            folded = value.lower() if isinstance(value, str) else value
            allowed = [c.lower() if isinstance(c, str) else c for c in self.choices]
            if folded not in allowed:
                raise ParamError(f"{name} must be one of {', '.join(str(c) for c in self.choices)}")
        size = len(value) if isinstance(value, str) else value if isinstance(value, (int, float)) else None
        if size is None:
            return
        if (self.min is not None and size < self.min) or (self.max is not None and size > self.max):
            if isinstance(value, str):
                raise ParamError(f"{name} must be {_range(self.min, self.max)} characters long")
            raise ParamError(f"{name} must be {_range(self.min, self.max)}")


def _range(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"from {low:g} to {high:g}"
    return f"at least {low:g}" if low is not None else f"at most {high:g}"


class Args(Mapping[str, Any]):
    """The parsed arguments of one call: ``args.NAME`` or ``args["NAME"]``; read-only. Any thread."""

    __slots__ = ("_values",)

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return "Args(" + ", ".join(f"{k}={v!r}" for k, v in self._values.items()) + ")"


def check_params(params: tuple[Param, ...]) -> None:
    """Raise :class:`TypeError` for a declaration the parser cannot honour (a plugin author's mistake)."""
    seen_optional = False
    for i, param in enumerate(params):
        last = i == len(params) - 1
        if (param.many or param.rest) and not last:
            raise TypeError(f"parameter {param.name!r}: only the last parameter may take many words or the rest")
        if param.required and seen_optional:
            raise TypeError(f"parameter {param.name!r}: a required parameter cannot follow an optional one")
        seen_optional |= not param.required
        kind = param.type
        if not (kind in (str, int, float, bool, "nick", "room") or (callable(kind) and not isinstance(kind, str))):
            raise TypeError(f"parameter {param.name!r}: unknown type {kind!r}")


def _split(text: str, count: int) -> tuple[list[str], str]:
    """The first *count* shell words of *text*, and the text after them as typed.

    Raises ParamError on an unbalanced quote.
    """
    stream = io.StringIO(text)  # what shlex wraps a string in; kept here to ask where the words stopped
    lexer = shlex.shlex(stream, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    words: list[str] = []
    try:
        while len(words) < count:
            word = lexer.get_token()
            if word is None:
                return words, ""
            words.append(word)
        position = stream.tell()
    except ValueError:
        raise ParamError("unbalanced quotes") from None
    return words, text[position:].strip()


def parse_params(params: tuple[Param, ...], text: str, members: Callable[[str], Any] | None = None) -> Args:
    """Parse the argument *text* of one call against *params*; raises :class:`ParamError`.

    *members* looks a nick up (for ``type="nick"``).
    """
    rest_param = params[-1] if params and params[-1].rest else None
    if rest_param is not None:
        words, rest = _split(text, len(params) - 1)
    else:
        try:
            words, rest = shlex.split(text), ""
        except ValueError:
            raise ParamError("unbalanced quotes") from None
    values: dict[str, Any] = {}
    index = 0
    for param in params:
        if param.rest:
            if not rest and param.required:
                raise ParamError(f"{param.name.upper()} is missing")
            values[param.name] = param.convert(rest, members) if rest else param.default
            continue
        if param.many:
            taken = words[index:]
            index = len(words)
            if not taken and param.required:
                raise ParamError(f"{param.name.upper()} is missing")
            values[param.name] = tuple(param.convert(w, members) for w in taken) if taken else param.default
            continue
        if index < len(words):
            values[param.name] = param.convert(words[index], members)
            index += 1
        elif param.required:
            raise ParamError(f"{param.name.upper()} is missing")
        else:
            values[param.name] = param.default
    if index < len(words):
        raise ParamError(f"too many arguments: {' '.join(words[index:])[:64]}")
    return Args(values)


def params_usage(name: str, params: tuple[Param, ...]) -> str:
    """The usage line made from the declaration: ``/roll [SIDES]``."""
    return " ".join(["/" + name, *(p.usage() for p in params)])
