"""Plugin settings: the schema a plugin declares, and the checks the host runs at start-up.

A plugin declares its settings with the ``config_schema`` hook (see
:mod:`chatroom.plugins.hookspecs`)::

    @hookimpl
    def config_schema():
        return {"timeout": Setting(int, default=300, min=10, max=86400, help="seconds a poll stays open"),
                "words": Setting(list, default=(), items=str)}

The host (:class:`chatroom.plugins.manager.PluginHost`) checks the
``[plugins.NAME]`` tables of the server's ``--config`` file against every
schema when loading ends: wrong types, values out of bounds or not among the
choices are **errors** (the server does not start, the test kit raises);
keys a schema does not declare and tables naming no plugin are **warnings**
with a did-you-mean (a misspelled setting is never silently ignored).
Missing keys take their defaults; the result is deep-frozen (tables become
read-only mappings, arrays read-only lists) and is what ``ctx.config`` returns.
Values are TOML types (https://toml.io/en/v1.0.0): ``str``, ``int``, ``float``
(an ``int`` is accepted), ``bool``, ``list``, ``dict`` (a table). Any thread may
read the frozen values.
"""

from __future__ import annotations

import builtins
import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from chatroom.plugins.params import REQUIRED

__all__ = ["REQUIRED", "ConfigReport", "Setting", "apply_schemas", "check_tables", "freeze", "validate"]

_TYPES = (str, int, float, bool, list, dict)
_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "an array",
          dict: "a table"}


@dataclass(frozen=True)
class Setting:
    """One setting of a plugin's ``[plugins.NAME]`` table.

    ``type``: ``str``, ``int``, ``float``, ``bool``, ``list`` or ``dict``;
    ``default`` (:data:`REQUIRED`: the table must give it); ``min``/``max``
    (bounds of a number, or of the length of a string or array);
    ``choices`` (allowed values); ``items`` (the type of an array's items);
    ``help`` (one line, shown by ``chatroom-server --check-config``).
    """

    type: type = str
    default: Any = None
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] = ()
    items: builtins.type | None = None  # builtins: in this class body, "type" is the field above
    help: str = ""


@dataclass
class ConfigReport:
    """What the checks found: ``errors`` (the settings cannot be used) and ``warnings`` (unknown names)."""

    errors: list[str]
    warnings: list[str]


def _is(value: Any, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is list:
        return isinstance(value, (list, tuple))  # a default may be a tuple
    return isinstance(value, kind)


def _check(plugin: str, key: str, setting: Setting, value: Any) -> str | None:
    where = f"[plugins.{plugin}] {key}"
    if not _is(value, setting.type):
        return f"{where} must be {_NAMES.get(setting.type, setting.type.__name__)}, not {value!r}"
    if setting.items is not None and isinstance(value, list):
        bad = [v for v in value if not _is(v, setting.items)]
        if bad:
            return f"{where}: every item must be {_NAMES.get(setting.items, setting.items.__name__)}, not {bad[0]!r}"
    if setting.choices and value not in setting.choices:
        return f"{where} must be one of {', '.join(repr(c) for c in setting.choices)}, not {value!r}"
    size = len(value) if isinstance(value, (str, list, dict)) else value if _is(value, float) else None
    if size is not None:
        if setting.min is not None and size < setting.min:
            return f"{where} is {value!r}; the least allowed is {setting.min:g}" + (" long" if size != value else "")
        if setting.max is not None and size > setting.max:
            return f"{where} is {value!r}; the most allowed is {setting.max:g}" + (" long" if size != value else "")
    return None


def validate(plugin: str, schema: Mapping[str, Setting], table: Mapping[str, Any]) -> tuple[dict[str, Any], ConfigReport]:
    """Check *table* against *schema*; returns the settings with defaults filled in, and what was found."""
    report = ConfigReport([], [])
    values: dict[str, Any] = {}
    for key, setting in schema.items():
        if key in table:
            problem = _check(plugin, key, setting, table[key])
            if problem:  # reported; where the host goes on (the kit, not strict) the default is used
                report.errors.append(problem)
            values[key] = table[key] if not problem or setting.default is REQUIRED else setting.default
        elif setting.default is REQUIRED:
            report.errors.append(f"[plugins.{plugin}] {key} is required ({setting.help or setting.type.__name__})")
        else:
            values[key] = setting.default
    for key in table:
        if key not in schema:
            close = difflib.get_close_matches(key, list(schema), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(schema) or 'none'})"
            report.warnings.append(f"[plugins.{plugin}] has unknown setting {key!r}{hint}; it is ignored")
            values[key] = table[key]
    return values, report


def check_schema(plugin: str, schema: Any) -> str | None:
    """Why *schema* (what a ``config_schema`` hookimpl returned) is not a valid schema, or None."""
    if not isinstance(schema, Mapping):
        return f"plugin {plugin}: config_schema returned {schema!r}, not a dict of Setting"
    for key, setting in schema.items():
        if not isinstance(key, str) or not isinstance(setting, Setting):
            return f"plugin {plugin}: config_schema entry {key!r} is not a Setting"
        if setting.type not in _TYPES:
            return f"plugin {plugin}: setting {key!r} has type {setting.type!r}; use str, int, float, bool, list or dict"
    return None


def check_tables(tables: Iterable[str], plugins: Iterable[str]) -> list[str]:
    """Warnings for ``[plugins.NAME]`` tables whose NAME is no plugin (loaded or disabled)."""
    known = sorted(set(plugins))
    warnings = []
    for name in tables:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean [plugins.{close[0]}]?)" if close else ""
            warnings.append(f"config table [plugins.{name}] names no plugin{hint}; it is ignored")
    return warnings


class FrozenList(list[Any]):
    """A list that refuses every change (``TypeError``): still a ``list`` for ``isinstance`` and ``==``,
    so plugins written before settings were frozen keep working."""

    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("plugin settings are read-only (ctx.config)")

    append = extend = insert = remove = pop = clear = sort = reverse = _refuse
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse

    def __hash__(self) -> int:  # type: ignore[override]  # list sets __hash__ = None; a frozen one can be hashed
        return hash(tuple(self))


def freeze(value: Any) -> Any:
    """*value* made read-only, deeply: tables become ``MappingProxyType``, arrays :class:`FrozenList`."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return FrozenList(freeze(v) for v in value)
    return value


def apply_schemas(host: Any, tables: Mapping[str, Mapping[str, Any]], impls: Mapping[str, Any]) -> None:
    """Check *tables* (plugin name -> its ``[plugins.NAME]`` table, as given) against the schemas the
    ``config_schema`` hookimpls *impls* (plugin name -> hookimpl) return, for the plugin host *host*
    (:class:`~chatroom.plugins.manager.PluginHost`: ``info``, ``disabled``, ``call_safely``, ``config``,
    ``schemas``, ``_config_problem``). Loop thread (or start-up) only."""
    for warning in check_tables(tables, [*host.info, *host.disabled]):
        host._config_problem(warning, error=False)
    for name in host.info:
        impl = impls.get(name)
        if impl is None:
            continue
        schema = host.call_safely(name, impl.function)
        problem = check_schema(name, schema)
        if problem:
            host._config_problem(problem, error=True)
            continue
        host.schemas[name] = schema
        values, report = validate(name, schema, tables.get(name, {}))
        for message in report.errors:
            host._config_problem(message, error=True)
        for message in report.warnings:
            host._config_problem(message, error=False)
        host.config[name] = freeze(values)
