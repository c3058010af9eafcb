"""The plugin manager: loads plugins and calls their hooks, one fault at a time.

Plugins come from three places, loaded in this order: the built-ins listed in
:data:`~chatroom.plugins.loader.BUILTIN_PLUGINS`, installed distributions' entry points in the group
``chatroom`` (``[project.entry-points.chatroom]``), and ``.py`` files in ``--plugin-dir`` folders, each
inside its own error handling (:mod:`chatroom.plugins.loader`).

Hooks are called through :meth:`PluginHost.call` and :meth:`PluginHost.chain`,
which run every implementation in turn (pluggy's order: ``tryfirst`` first,
then the most recently registered first), catch and log an exception per
plugin so the others still run, warn when one blocks the loop longer than
``slow_seconds``, and disable a plugin after ``fault_limit`` faults made on its
own account (hooks, timers, worker results). A fault while serving one
client's command or input is that command's error, answered to the caller and
never counted, so no client can switch a plugin off for everyone.

Blocking is different, since it stalls every client whoever caused it: a plugin
that keeps blocking the loop is quarantined, whoever's calls did it (see
:mod:`chatroom.plugins.slowness`; ``on_quarantine`` hears of it).
"""

from __future__ import annotations

import difflib
import logging
import re
import time
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable

import pluggy

from chatroom.plugins import hookspecs
from chatroom.model.errors import Refused
from chatroom.plugins.commands import Command, CommandError, Registry
from chatroom.plugins.config import Setting, apply_schemas, freeze
from chatroom.plugins.info import PluginInfo
from chatroom.plugins.loader import ENTRY_POINT_GROUP, Loader
from chatroom.plugins.reloading import Reloader
from chatroom.plugins.slowness import SlowCalls
from chatroom.net.logs import ERR

#: What a command name or alias may look like (it is typed after ``/``).
COMMAND_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")

log = logging.getLogger("chatroom.plugins")

#: Hooks called once per server run (or per reload), timed and warned about but never held against a plugin.
ONE_OFF_HOOKS = frozenset({"startup", "shutdown", "register_commands", "config_schema"})

#: Returned by :meth:`PluginHost.run` and :meth:`PluginHost.call_safely` when
#: the plugin raised (and was logged), or is disabled.
FAULT = object()

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class PluginHost:
    """Owns the pluggy plugin manager, the command registry and plugin fault accounting.

    ``disabled``: plugin names (or distribution names) not to load.
    ``config``: plugin name -> that plugin's settings (``ctx.config``).
    ``fault_limit``: faults after which a plugin is switched off.
    ``slow_seconds``: a hook or command call longer than this is logged as blocking the loop.
    ``slow_limit``: slow calls within :data:`~chatroom.plugins.slowness.QUARANTINE_WINDOW` seconds after which
    a plugin is quarantined (0: never).
    ``on_fault(plugin, traceback_text)``: called after each fault is logged (the test kit records them).
    ``on_quarantine(plugin, text)``: called after a plugin was quarantined, with the logged text.
    """

    def __init__(
        self,
        *,
        disabled: Iterable[str] = (),
        config: Mapping[str, Mapping[str, Any]] | None = None,
        fault_limit: int = 5,
        slow_seconds: float = 0.1,
        slow_limit: int = 2,
        on_fault: Callable[[str, str], None] | None = None,
    ) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.registry = Registry()
        self.info: dict[str, PluginInfo] = {}
        self.loader = Loader(self.pm, self.info, disabled)  # loads plugins, keeps the load errors
        self._tables = {name: dict(table) for name, table in (config or {}).items()}  # as given, checked at the end
        self.config: dict[str, Mapping[str, Any]] = {name: freeze(table) for name, table in self._tables.items()}
        #: Plugin name -> its declared settings (``config_schema``), once loading ended.
        self.schemas: dict[str, Mapping[str, Setting]] = {}
        #: Swaps a --plugin-dir file's new version in, or keeps the old one (:meth:`reload_file`).
        self.reloader = Reloader(self.pm, self.registry, self.info, self.config, self.schemas, self._tables)
        #: Settings that cannot be used, and names that match nothing (also in ``load_errors``).
        self.config_errors: list[str] = []
        self.config_warnings: list[str] = []
        self.fault_limit = fault_limit
        self.slow = SlowCalls(slow_seconds, slow_limit)
        self.on_fault = on_fault
        self.on_quarantine: Callable[[str, str], None] | None = None
        self._make_ctx: Callable[[str], Any] | None = None  # given to start(): ctx for a late shutdown hook

    # -- loading -------------------------------------------------------------
    def reload_file(self, name: str, path: Path, *, import_file: Callable[[str, Path], Any],
                    on_swap: Callable[[str], None], call_hook: Callable[[str, str], bool]) -> bool:
        """Load *path* as the new version of the file plugin *name*; True if swapped in (see
        :meth:`chatroom.plugins.reloading.Reloader.reload_file`)."""
        return self.reloader.reload_file(name, path, import_file=import_file, on_swap=on_swap, call_hook=call_hook)

    @property
    def disabled(self) -> set[str]:
        """Plugin (or distribution) names not to load (the loader's)."""
        return self.loader.disabled

    @property
    def load_errors(self) -> list[str]:
        """Every load error logged so far, settings' problems included (the loader's)."""
        return self.loader.errors

    def register(self, plugin: object, name: str, info: PluginInfo) -> bool:
        """Register *plugin* (a module or object with hookimpls) as *name*; False if refused (logged)."""
        return self.loader.register(plugin, name, info)

    def load_builtins(self) -> None:
        """Register the modules in :data:`~chatroom.plugins.loader.BUILTIN_PLUGINS`."""
        self.loader.builtins()

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> None:
        """Load every entry point in *group*, each inside its own error handling."""
        self.loader.entry_points(group)

    def load_dir(self, folder: Path) -> None:
        """Load every ``*.py`` file in *folder* (not starting with ``_``) as a plugin named after the file."""
        self.loader.folder(folder)

    def finish_loading(self) -> None:
        """Report unknown hooks and disable names that matched nothing; collect commands.

        Call once, after every plugin is loaded. Built-in commands are
        collected first, so a plugin can never take a built-in's name.
        """
        self._check_hooks()
        for name in self.loader.unmatched():
            log.warning("--disable-plugin %s: no plugin of that name was found", name, extra=ERR)
        impls = {impl.plugin_name: impl for impl in self.pm.hook.register_commands.get_hookimpls()}
        for info in sorted(self.info.values(), key=lambda i: i.source != "builtin"):
            impl = impls.get(info.name)
            if impl is not None:
                self._add_commands(info, self._guarded(info.name, impl.function, (), {}, passthrough=(), count=True,
                                                       strike=False))
        self._check_config()

    def _check_config(self) -> None:
        """Validate every plugin's table against its ``config_schema`` (see :mod:`chatroom.plugins.config`)."""
        apply_schemas(self, self._tables, {i.plugin_name: i for i in self.pm.hook.config_schema.get_hookimpls()})

    def _config_problem(self, message: str, *, error: bool) -> None:
        """A setting that cannot be used (*error*: the server does not start) or a name that matches nothing."""
        (self.config_errors if error else self.config_warnings).append(message)
        self._load_error(message)

    def _check_hooks(self) -> None:
        """Log every hookimpl whose name is no hook (pluggy's ``check_pending`` stops at the first)."""
        known = hookspecs.hook_names()
        for hook_name, caller in vars(self.pm.hook).items():
            if hook_name.startswith("_") or caller.has_spec():
                continue
            for impl in caller.get_hookimpls():
                if impl.optionalhook:
                    continue
                close = difflib.get_close_matches(hook_name, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self._load_error(
                    f"plugin {impl.plugin_name} implements unknown hook {hook_name!r}{hint}; "
                    "it will never be called"
                )

    def _add_commands(self, info: PluginInfo, commands: Any) -> None:
        if commands is FAULT or commands is None:
            return
        if isinstance(commands, Command):
            commands = [commands]
        try:
            commands = list(commands)
        except TypeError:
            self._load_error(f"plugin {info.name}: register_commands returned {commands!r}, not a list of Command")
            return
        for command in commands:
            if not isinstance(command, Command):
                self._load_error(f"plugin {info.name} returned {command!r} from register_commands, not a Command")
                continue
            bad = [n for n in (command.name, *command.aliases) if not COMMAND_NAME.fullmatch(n)]
            if bad:
                self._load_error(f"plugin {info.name}: command name {bad[0]!r} is not a valid command name")
                continue
            clash = self.registry.add(replace(command, plugin=info.name))
            if clash:
                self._load_error(clash)
            else:
                info.commands.append(command.name)

    def _load_error(self, message: str) -> None:
        self.loader.error(message)

    # -- configuration ---------------------------------------------------------
    def config_for(self, plugin: str) -> Mapping[str, Any]:
        """*plugin*'s settings (read-only mapping; empty if it has none)."""
        return self.config.get(plugin, _EMPTY)

    def is_active(self, plugin: str) -> bool:
        """False once *plugin* has been disabled after faults."""
        info = self.info.get(plugin)
        return info is None or not info.disabled

    def set_enabled(self, name: str, enabled: bool) -> None:
        """Switch the loaded plugin *name* on or off at run time (its hooks, commands and timers).

        Raises CommandError for an unknown plugin, for ``core`` (``/plugins`` lives there), and to
        enable a plugin switched off after faults (it was unloaded: restart the server). Enabling a
        quarantined plugin lifts the quarantine (its slow calls are forgotten)."""
        info = self.info.get(name)
        if info is None or name == "core":
            raise CommandError(f"no plugin {name}" if info is None else "the core plugin cannot be disabled")
        if enabled and info.disabled and not self.pm.has_plugin(name):
            raise CommandError(f"plugin {name} is off: {info.off}; restart the server" if info.off else
                               f"plugin {name} was disabled after {info.faults} faults; restart the server")
        info.disabled = not enabled
        if enabled:
            info.quarantined = ""
            self.slow.forget(name)
        log.info("plugin %s %s at run time", name, "enabled" if enabled else "disabled")

    def start(self, make_ctx: Callable[[str], Any]) -> None:
        """Call every ``startup`` hook. A plugin whose startup raises is switched off (its hooks, commands and
        timers), logged as a load error, never left half started (its commands on a store it did not migrate);
        its ``shutdown`` hook is called then, to release what the startup took before raising. Loop thread only."""
        self._make_ctx = make_ctx
        for impl in self.impls("startup"):
            name = impl.plugin_name
            args = {a: make_ctx(name) for a in impl.argnames}
            if self.is_active(name) and self._guarded(name, impl.function, (), args, passthrough=(), count=False,
                                                      strike=False) is FAULT:
                self._switch_off(name, "its startup hook raised")
                self._load_error(f"plugin {name} is off: its startup hook raised (see the traceback above)")

    def stop(self, make_ctx: Callable[[str], Any]) -> None:
        """Call the ``shutdown`` hook of every plugin that has not had it: disabled and quarantined ones too (an
        admin's ``/plugin disable`` pauses a plugin; its threads and files still need releasing). Loop thread,
        once, when the server stops."""
        for impl in self.impls("shutdown"):
            self._shut_down(impl, make_ctx)

    def _shut_down(self, impl: Any, make_ctx: Callable[[str], Any]) -> None:
        """Call the ``shutdown`` hookimpl *impl* unless its plugin had it already (faults logged, never counted)."""
        plugin = impl.plugin_name
        info = self.info.get(plugin)
        if info is not None:
            if info.shut:
                return
            info.shut = True
        args = {a: make_ctx(plugin) for a in impl.argnames}
        self._guarded(plugin, impl.function, (), args, passthrough=(), count=False, strike=False)

    def _switch_off(self, plugin: str, why: str) -> None:
        """Switch *plugin* off for good (until a restart or its file's reload): its ``shutdown`` hook is called
        first (it may still log and use ``ctx``), then its hooks, commands and timers go."""
        info = self.info.get(plugin)
        if info is not None:
            info.disabled, info.off = True, why
        if self._make_ctx is not None:
            for impl in self.impls("shutdown"):
                if impl.plugin_name == plugin:
                    self._shut_down(impl, self._make_ctx)
        if self.pm.has_plugin(plugin):
            self.pm.unregister(name=plugin)
        self.registry.remove_plugin(plugin)

    def call(self, hook_name: str, make_ctx: Callable[[str], Any], /, **kwargs: Any) -> list[Any]:
        """Call every implementation of *hook_name*; return their non-None results.

        ``make_ctx(plugin_name)`` builds the ``ctx`` argument for each plugin.
        A plugin that raises is logged and skipped; the others still run.
        """
        results = []
        strike = hook_name not in ONE_OFF_HOOKS
        for impl in self.impls(hook_name):
            if not self.is_active(impl.plugin_name):
                continue
            args = {a: (make_ctx(impl.plugin_name) if a == "ctx" else kwargs[a]) for a in impl.argnames}
            result = self._guarded(impl.plugin_name, impl.function, (), args, passthrough=(), count=True,
                                   strike=strike)
            if result is not None and result is not FAULT:
                results.append(result)
        return results

    def chain(self, hook_name: str, make_ctx: Callable[[str], Any], key: str, value: Any, **kwargs: Any) -> Any:
        """Pass *value* (as argument *key*) through every implementation in turn.

        A result of the same type as *value* replaces it for the next plugin;
        ``False`` stops the chain and returns None (dropped); None leaves it
        unchanged. A plugin that raises, or returns anything else, is logged
        as a fault and leaves the value unchanged.
        """
        kind = type(value)
        for impl in self.impls(hook_name):
            kwargs[key] = value
            args = {a: (make_ctx(impl.plugin_name) if a == "ctx" else kwargs[a]) for a in impl.argnames}
            result = self.call_safely(impl.plugin_name, impl.function, **args)
            if result is None or result is FAULT:
                continue
            if result is False:
                return None
            if isinstance(result, kind):
                value = result
            else:
                self.fault(impl.plugin_name, f"{hook_name} returned {result!r}; expected {kind.__name__}, None or False")
        return value

    def implemented(self, hook_name: str) -> bool:
        """True if any plugin implements *hook_name* (cheap; for the hot path)."""
        return bool(getattr(self.pm.hook, hook_name).get_hookimpls())

    def impls(self, hook_name: str) -> list[Any]:
        """The implementations of *hook_name*, in call order."""
        return list(reversed(getattr(self.pm.hook, hook_name).get_hookimpls()))

    def run(self, plugin: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Call ``fn(*args)`` on behalf of *plugin* while serving one client's command or input.

        Returns fn's result, or :data:`FAULT` if it raised (logged); a :class:`~chatroom.model.errors.Refused`
        (``CommandError``) is re-raised for the caller to report. A fault here is that command's error, answered
        to its caller and not counted, so no client's input can switch a plugin off for everyone. Raises
        CommandError (:meth:`unavailable`) if *plugin* has been disabled.
        """
        if not self.is_active(plugin):
            raise CommandError(self.unavailable(plugin))
        return self._guarded(plugin, fn, args, {}, passthrough=Refused, count=False)

    def unavailable(self, plugin: str) -> str:
        """Why *plugin*'s commands are refused: ``plugin NAME is disabled`` (or quarantined, and how to undo it)."""
        if (info := self.info.get(plugin)) is not None and info.quarantined:
            return f"plugin {plugin} is quarantined: it blocked the loop; an admin may /plugins enable {plugin}"
        return f"plugin {plugin} is disabled"

    def run_for_client(self, plugin: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Like :meth:`call_safely`, for plugin code run because of one client (a capture's
        ``on_end``): a fault is logged but not counted towards disabling the plugin."""
        if not self.is_active(plugin):
            return FAULT
        return self._guarded(plugin, fn, args, {}, passthrough=(), count=False)

    def call_safely(self, plugin: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``fn(*args, **kwargs)`` for *plugin* on its own account (a hook, a timer, a worker
        result); any exception is logged as a fault, counted, and gives :data:`FAULT`.

        A disabled plugin's callables (late timers, worker results) are not
        called at all: :data:`FAULT` is returned.
        """
        if not self.is_active(plugin):
            return FAULT
        return self._guarded(plugin, fn, args, kwargs, passthrough=(), count=True)

    def _guarded(self, plugin: str, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                 passthrough: type[BaseException] | tuple[()], count: bool, strike: bool = True) -> Any:
        """The one place plugin code runs: faults are logged (and counted if *count*), slow calls warned about.

        Every ``BaseException`` is caught, ``KeyboardInterrupt``,
        ``SystemExit`` and ``GeneratorExit`` included: the server handles
        SIGINT and SIGTERM itself (they never raise in plugin code), so any
        of these coming out of a plugin is the plugin's doing and must not
        stop the server. Only ``os._exit`` (uncatchable) or a signal can end
        the process from plugin code.
        """
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        except passthrough:
            raise
        except BaseException:  # noqa: BLE001 - see the docstring
            self.fault(plugin, traceback.format_exc(), count=count)
            return FAULT
        finally:
            elapsed = time.perf_counter() - start
            if elapsed > self.slow.seconds:
                self._slow_call(plugin, fn, elapsed, strike)

    def _slow_call(self, plugin: str, fn: Callable[..., Any], elapsed: float, strike: bool) -> None:
        """Warn about a call that blocked the loop; quarantine *plugin* if it keeps doing so."""
        info = self.info.get(plugin)
        text = self.slow.blocked(plugin, getattr(fn, "__qualname__", str(fn)), elapsed,
                                 strike and info is not None and info.source != "builtin" and not info.disabled)
        if text and info is not None:
            info.disabled, info.quarantined = True, text
            notice = self.slow.notice(plugin, text)
            if self.on_quarantine is not None:
                self.on_quarantine(plugin, notice)

    def fault(self, plugin: str, trace: str, *, count: bool = True) -> None:
        """Record one fault of *plugin* (logged with *trace*); with *count*, disable it at ``fault_limit``."""
        log.error("plugin %s raised:\n%s", plugin, trace.rstrip(), extra=ERR)
        if self.on_fault is not None:
            self.on_fault(plugin, trace)
        info = self.info.get(plugin)
        if info is None or info.disabled or not count:
            return
        info.faults += 1
        if info.faults >= self.fault_limit:
            self._switch_off(plugin, "")
            log.error("plugin %s disabled after %d faults", plugin, info.faults, extra=ERR)

