"""Commands: what a plugin declares, and the registry that looks them up.

A command line is ``/name args...``. The name is matched case-insensitively
against every command's name and aliases; the arguments are split like a
POSIX shell (:func:`shlex.split`), so ``/sendfile "my file.txt"`` is one
argument. The registry checks the argument count and answers misuse with the
command's usage line, so handlers only see well-formed calls.
"""

from __future__ import annotations

import difflib
import shlex
import warnings
from dataclasses import dataclass, field, replace
from collections.abc import Sequence
from typing import Any, Callable

from chatroom.model.errors import Refused
from chatroom.plugins.params import Args, Param, ParamError, check_params, params_usage, parse_params
from chatroom.plugins.ratelimit import Rate

#: ``handler(ctx, args)``: *ctx* a :class:`chatroom.plugins.context.Context`, *args* ``list[str]``
#: (or an :class:`~chatroom.plugins.params.Args` when the command declares ``params``).
Handler = Callable[[Any, Any], None]

NOT_UNDERSTOOD = "ERROR - Command not understood"


class CommandError(Refused):
    """Raised by a handler to refuse a call; the caller gets ``ERROR <message>``.

    A subclass of the room model's :class:`~chatroom.model.errors.Refused`,
    which the dispatcher answers the same way.
    """


class UsageError(CommandError):
    """Raised when a call is malformed; the caller gets ``ERROR usage: <message>``.

    Without a message (``raise UsageError()``) the caller gets the command's
    usage line: ``ERROR usage: /poll "QUESTION" OPTION...``.
    """


@dataclass(frozen=True)
class Example:
    """A documented call and what the caller receives, after Sopel's ``@plugin.example``.

    ``line`` is what a member types (``"/hello Bob"``); ``replies`` the lines
    it then receives, in order (``("hello, Bob!",)``; empty: nothing). With
    ``regex=True`` each reply is a regular expression that must match the
    whole line (for replies with times or ids). ``/help NAME`` shows the
    examples; the test kit runs them (:func:`chatroom.testing.example_tests`).
    A ``(line, reply)`` or ``(line, (reply, ...))`` tuple is accepted wherever
    an Example is.
    """

    line: str
    replies: tuple[str, ...] = ()
    regex: bool = False

    @classmethod
    def of(cls, value: Example | tuple[Any, ...]) -> Example:
        """An Example from an Example or a ``(line, reply-or-replies[, regex])`` tuple; TypeError otherwise."""
        if isinstance(value, Example):
            return value
        if isinstance(value, tuple) and 1 <= len(value) <= 3 and isinstance(value[0], str):
            replies = value[1] if len(value) > 1 else ()
            replies = (replies,) if isinstance(replies, str) else tuple(replies)
            return cls(value[0], replies, bool(value[2]) if len(value) > 2 else False)
        raise TypeError(f"an example is (line, reply) or Example(...), not {value!r}")


@dataclass(frozen=True)
class Command:
    """A command a plugin adds, returned from the ``register_commands`` hook.

    ``handler(ctx, args)`` gets a :class:`~chatroom.plugins.context.Context` (whose
    ``ctx.text`` is the raw argument text after the name) and the
    shell-split ``args`` (``list[str]``). ``usage`` is shown on misuse and in
    ``/help`` (e.g. ``"/msg NAME TEXT"``); ``summary`` is one line.
    ``min_args``/``max_args`` bound ``len(args)`` (``max_args=None``: no
    bound). With ``raw=True`` the arguments are not shell-split: ``args`` is
    ``[text]`` (or ``[]`` when empty), for free text with quotes in it.
    ``cost`` is what one call takes from the caller's flood token bucket
    (a chat line costs 1; see :mod:`chatroom.net.budget`): give an expensive
    command a higher cost.
    ``requires`` is who may call it (:data:`chatroom.model.moderation.LEVELS`): ``"anyone"``,
    ``"account"`` (logged in), ``"operator"`` (of the caller's current room, or an admin) or
    ``"admin"``; the core checks it before the handler runs and answers ``ERROR permission
    denied: /kick needs a room operator``, and ``/help`` lists only what the caller may use.
    ``sub_requires`` raises it for some first words: ``(("lock", "operator"),)`` makes
    ``/topic lock`` an operator's while ``/topic`` stays anyone's.

    API 1.0 additions (docs/plugins.md, "Commands"):

    - ``params``: typed arguments (:class:`~chatroom.plugins.params.Param`),
      converted and checked by the core; the handler then gets an
      :class:`~chatroom.plugins.params.Args` instead of a list, and the usage
      line is made from them when ``usage`` is empty.
    - ``subcommands``: commands reached by a first word (``/poll close``),
      each with its own handler, params, usage, requires, rate and examples.
      A call whose first word names none goes to this command's own handler.
    - ``rate``: a :class:`~chatroom.plugins.ratelimit.Rate` (seconds between
      calls per member, room or server).
    - ``examples``: :class:`Example` calls shown by ``/help NAME`` and run as
      tests by the test kit.
    """

    name: str
    handler: Handler
    usage: str = ""
    summary: str = ""
    aliases: tuple[str, ...] = ()
    min_args: int = 0
    max_args: int | None = None
    raw: bool = False
    cost: float = 1.0
    requires: str = "anyone"
    sub_requires: tuple[tuple[str, str], ...] = ()
    params: tuple[Param, ...] = ()
    subcommands: tuple[Command, ...] = ()
    rate: Rate | None = None
    #: As given (:class:`Example` objects or ``(line, reply)`` tuples); kept as a tuple of :class:`Example`.
    examples: Sequence[Example | tuple[Any, ...]] = ()
    plugin: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        params = tuple(self.params)
        check_params(params)
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "examples", tuple(Example.of(e) for e in self.examples))
        subs = []
        for sub in self.subcommands:
            if not isinstance(sub, Command):
                raise TypeError(f"/{self.name}: a subcommand must be a Command, not {sub!r}")
            word = sub.name.rsplit(" ", 1)[-1]
            subs.append(replace(sub, name=f"{self.name} {word}", plugin=self.plugin))
        object.__setattr__(self, "subcommands", tuple(subs))

    def resolve(self, text: str) -> tuple[Command, str]:
        """The (sub)command a call with argument text *text* runs, and the argument text left for it."""
        if self.subcommands and text:
            first, _, rest = text.partition(" ")
            first = first.lower()
            for sub in self.subcommands:
                if first == sub.name.rsplit(" ", 1)[-1].lower() or first in (a.lower() for a in sub.aliases):
                    return sub, rest.strip()
        return self, text

    def required(self, text: str) -> str:
        """What a call with argument text *text* requires: ``sub_requires`` for its first word, else ``requires``."""
        if self.sub_requires:
            first = text.split(None, 1)[0].lower() if text.strip() else ""
            for word, level in self.sub_requires:
                if word == first:
                    return level
        return self.requires

    def names(self) -> tuple[str, ...]:
        """The lower-cased name and aliases."""
        return (self.name.lower(), *(a.lower() for a in self.aliases))

    def usage_line(self) -> str:
        """``usage``; else made from ``params``; else ``/name``."""
        return self.usage or params_usage(self.name, self.params)

    def usage_lines(self) -> list[str]:
        """This command's usage line, then each subcommand's."""
        return [self.usage_line(), *(sub.usage_line() for sub in self.subcommands)]

    def parse_args(self, text: str, members: Callable[[str], Any] | None = None) -> list[str] | Args:
        """Split and check *text*; raises :class:`UsageError` on misuse.

        Returns ``list[str]``, or :class:`~chatroom.plugins.params.Args` when
        the command declares ``params`` (*members* looks up ``"nick"`` values).
        """
        if self.params:
            try:
                return parse_params(self.params, text, members)
            except ParamError as exc:
                raise UsageError(f"{self.usage_line()}: {exc}") from None
        if self.raw:
            args = [text] if text else []
        else:
            try:
                args = shlex.split(text)
            except ValueError:
                raise UsageError(self.usage_line()) from None
        if len(args) < self.min_args or (self.max_args is not None and len(args) > self.max_args):
            raise UsageError(self.usage_line())
        return args


class RunningCommand:
    """What ``ctx.command`` gives: the :class:`Command` being run, seen through a thin proxy.

    Attribute access goes to that command (``ctx.command.name``,
    ``ctx.command.usage_line()``); it is falsy when no command is running (in
    a hook) and equal to the command itself. Calling it, ``ctx.command(name)``,
    is the lookup it was before plugin API 1.0: it still works, with a
    ``DeprecationWarning`` naming :meth:`~chatroom.plugins.context.Context.lookup_command`.
    Any thread (it only reads).
    """

    __slots__ = ("_command", "_lookup")

    def __init__(self, command: Command | None, lookup: Callable[[str], Command | None]) -> None:
        self._command = command
        self._lookup = lookup

    def __getattr__(self, name: str) -> Any:
        if self._command is None:
            raise AttributeError(f"ctx.command.{name}: no command is running (this is a hook)")
        return getattr(self._command, name)

    def __call__(self, name: str) -> Command | None:
        warnings.warn("ctx.command(name) is deprecated since plugin API 1.0: use ctx.lookup_command(name) "
                      "(ctx.command is now the command being run)", DeprecationWarning, stacklevel=2)
        return self._lookup(name)

    def __bool__(self) -> bool:
        return self._command is not None

    def __eq__(self, other: object) -> bool:
        target = other._command if isinstance(other, RunningCommand) else other
        return self._command == target

    def __hash__(self) -> int:
        return hash(self._command)

    def __repr__(self) -> str:
        return f"RunningCommand({self._command!r})"


def split_command(line: str) -> tuple[str, str]:
    """``"/Name  rest of line"`` -> ``("name", "rest of line")``."""
    head, _, rest = line[1:].partition(" ")
    return head.lower(), rest.strip()


class Registry:
    """Command name (and alias) -> :class:`Command`, case-insensitive.

    ``add`` refuses a name that is taken and returns a message naming both
    providers; the first provider keeps the name.
    """

    def __init__(self) -> None:
        self._by_name: dict[str, Command] = {}
        self.commands: list[Command] = []

    def add(self, command: Command) -> str | None:
        """Register *command*; return None, or a clash message if any name is taken."""
        for name in command.names():
            other = self._by_name.get(name)
            if other is not None:
                return (
                    f"command /{name} from plugin {command.plugin!r} clashes with "
                    f"/{other.name} from plugin {other.plugin!r}; keeping {other.plugin!r}"
                )
        for name in command.names():
            self._by_name[name] = command
        self.commands.append(command)
        return None

    def remove_plugin(self, plugin: str) -> None:
        """Drop every command that *plugin* provides."""
        self.commands = [c for c in self.commands if c.plugin != plugin]
        self._by_name = {n: c for n, c in self._by_name.items() if c.plugin != plugin}

    def get(self, name: str) -> Command | None:
        """The command called *name* (or with that alias), any case; None if unknown."""
        return self._by_name.get(name.lower())

    def suggest(self, name: str) -> str | None:
        """The closest known command name to a mistyped *name*, or None."""
        close = difflib.get_close_matches(name.lower(), list(self._by_name), n=1, cutoff=0.7)
        return close[0] if close else None

    def sorted(self) -> list[Command]:
        """Every registered command, by name (for ``/help``)."""
        return sorted(self.commands, key=lambda c: c.name)
