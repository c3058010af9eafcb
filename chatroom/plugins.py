"""The plugin manager: loads plugins and calls their hooks, one fault at a time.

Plugins come from three places, loaded in this order: the built-ins listed in
:data:`BUILTIN_PLUGINS`, installed distributions' entry points in the group
``chatroom`` (``[project.entry-points.chatroom]``), and ``.py`` files in
``--plugin-dir`` folders. Each one is loaded inside its own error handling:
a plugin that fails to import or register is logged under ``[ERROR]`` with
its source and the reason, and the server starts without it (pluggy's own
``load_setuptools_entrypoints`` stops at the first failure, so it is not
used).

Hooks are called through :meth:`PluginHost.call`, which runs every
implementation in turn (pluggy's order: ``tryfirst`` first, then the most
recently registered first), catches and logs an exception per plugin so the
others still run, warns when one blocks the loop longer than
``slow_seconds``, and disables a plugin after ``fault_limit`` faults.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import logging
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import pluggy

from chatroom import hookspecs
from chatroom.commands import Command, CommandError, Registry
from chatroom.logs import ERR

ENTRY_POINT_GROUP = "chatroom"

#: Modules of the built-in plugins, registered under their last dotted part.
BUILTIN_PLUGINS = (
    "chatroom.builtin.core",
    "chatroom.builtin.board",
    "chatroom.builtin.tweet",
    "chatroom.builtin.sendfile",
)

log = logging.getLogger("chatroom.plugins")

#: Returned by :meth:`PluginHost.run` when the plugin raised (and was logged).
FAULT = object()


@dataclass
class PluginInfo:
    """What is known of one registered plugin (for ``--list-plugins`` and ``/plugins``)."""

    name: str
    source: str  # "builtin", "entry point", or "file"
    distribution: str = ""
    version: str = ""
    path: str = ""
    hooks: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    faults: int = 0


class PluginHost:
    """Owns the pluggy plugin manager, the command registry and plugin fault accounting."""

    def __init__(
        self,
        *,
        disabled: frozenset[str] | set[str] = frozenset(),
        fault_limit: int = 5,
        slow_seconds: float = 0.1,
    ) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.registry = Registry()
        self.info: dict[str, PluginInfo] = {}
        self.disabled = set(disabled)
        self.fault_limit = fault_limit
        self.slow_seconds = slow_seconds
        self.load_errors: list[str] = []

    # -- loading -------------------------------------------------------------
    def register(self, plugin: object, name: str, info: PluginInfo) -> bool:
        """Register *plugin* (a module or object with hookimpls) as *name*; False if refused."""
        if name in self.disabled:
            log.info("plugin %s disabled by configuration", name)
            return False
        if self.pm.has_plugin(name):
            self._load_error(f"plugin name {name!r} from {info.source} {info.distribution or info.path} is already taken")
            return False
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:  # pluggy raises PluginValidationError and others
            self._load_error(f"plugin {name} ({info.source} {info.distribution or info.path}) failed to register: {exc}")
            return False
        info.hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or [])
        self.info[name] = info
        return True

    def load_builtins(self) -> None:
        for module_name in BUILTIN_PLUGINS:
            name = module_name.rsplit(".", 1)[1]
            try:
                module = importlib.import_module(module_name)
            except Exception as exc:
                self._load_error(f"built-in plugin {name} failed to import: {exc!r}")
                continue
            self.register(module, name, PluginInfo(name, "builtin", "chatroom", _version("chatroom")))

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> None:
        """Load every entry point in *group*, each on its own."""
        for ep in importlib.metadata.entry_points(group=group):
            dist = ep.dist.name if ep.dist else "?"
            version = ep.dist.version if ep.dist else ""
            if ep.name in self.disabled:
                log.info("plugin %s (%s) disabled by configuration", ep.name, dist)
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                self._load_error(f"plugin {ep.name} from distribution {dist} {version} failed to load: {exc!r}")
                continue
            self.register(plugin, ep.name, PluginInfo(ep.name, "entry point", dist, version))

    def load_dir(self, folder: Path) -> None:
        """Load every ``*.py`` file in *folder* (not starting with ``_``) as a plugin named after the file."""
        if not folder.is_dir():
            self._load_error(f"plugin folder {folder} does not exist")
            return
        for path in sorted(folder.glob("*.py")):
            name = path.stem
            if name.startswith("_"):
                continue
            if name in self.disabled:
                log.info("plugin %s (%s) disabled by configuration", name, path)
                continue
            try:
                module = _import_file(name, path)
            except Exception as exc:
                self._load_error(f"plugin {name} from file {path} failed to import: {exc!r}")
                continue
            self.register(module, name, PluginInfo(name, "file", path=str(path)))

    def finish_loading(self) -> None:
        """Check hook names and collect commands; call once every plugin is loaded."""
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            self._load_error(f"unknown hook: {exc}")
        builtin_first = sorted(self.info.values(), key=lambda i: i.source != "builtin")
        for info in builtin_first:
            plugin = self.pm.get_plugin(info.name)
            impl = getattr(plugin, "register_commands", None)
            if impl is None or not hasattr(impl, hookspecs.PROJECT + "_impl"):
                continue
            commands = self.call_safely(info.name, impl)
            if commands is FAULT or commands is None:
                continue
            for command in commands:
                if not isinstance(command, Command):
                    self._load_error(f"plugin {info.name} returned {command!r} from register_commands, not a Command")
                    continue
                command = _with_plugin(command, info.name)
                clash = self.registry.add(command)
                if clash:
                    self._load_error(clash)
                else:
                    info.commands.append(command.name)

    def _load_error(self, message: str) -> None:
        self.load_errors.append(message)
        log.error(message, extra=ERR)

    # -- calling -------------------------------------------------------------
    def call(self, hook_name: str, make_ctx: Callable[[str], Any], **kwargs: Any) -> list[Any]:
        """Call every implementation of *hook_name*; return their non-None results.

        ``make_ctx(plugin_name)`` builds the ``ctx`` argument for each plugin.
        A plugin that raises is logged and skipped.
        """
        results = []
        for impl in self.impls(hook_name):
            args = {a: (make_ctx(impl.plugin_name) if a == "ctx" else kwargs[a]) for a in impl.argnames}
            result = self.call_safely(impl.plugin_name, impl.function, **args)
            if result is not None and result is not FAULT:
                results.append(result)
        return results

    def chain(self, hook_name: str, make_ctx: Callable[[str], Any], key: str, value: Any, **kwargs: Any) -> Any:
        """Pass *value* (as argument *key*) through every implementation in turn.

        A non-None, non-False result replaces the value for the next plugin;
        ``False`` stops the chain and returns None (dropped). A plugin that
        raises leaves the value unchanged.
        """
        for impl in self.impls(hook_name):
            kwargs[key] = value
            args = {a: (make_ctx(impl.plugin_name) if a == "ctx" else kwargs[a]) for a in impl.argnames}
            result = self.call_safely(impl.plugin_name, impl.function, **args)
            if result is False:
                return None
            if result is not None and result is not FAULT:
                value = result
        return value

    def implemented(self, hook_name: str) -> bool:
        """True if any plugin implements *hook_name* (cheap; for the hot path)."""
        return bool(getattr(self.pm.hook, hook_name).get_hookimpls())

    def impls(self, hook_name: str) -> list[Any]:
        """The implementations of *hook_name*, in call order."""
        return list(reversed(getattr(self.pm.hook, hook_name).get_hookimpls()))

    def run(self, plugin: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Call ``fn(*args)`` on behalf of *plugin* with fault isolation.

        Returns fn's result, or :data:`FAULT` if it raised (logged); a
        :class:`~chatroom.commands.CommandError` is re-raised for the caller to report.
        """
        start = time.perf_counter()
        try:
            return fn(*args)
        except CommandError:
            raise
        except Exception:
            self.fault(plugin, traceback.format_exc())
            return FAULT
        finally:
            self._check_time(plugin, fn, start)

    def call_safely(self, plugin: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``fn(*args, **kwargs)`` for *plugin*; any exception is logged as a fault and gives :data:`FAULT`."""
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        except Exception:
            self.fault(plugin, traceback.format_exc())
            return FAULT
        finally:
            self._check_time(plugin, fn, start)

    def _check_time(self, plugin: str, fn: Callable[..., Any], start: float) -> None:
        elapsed = time.perf_counter() - start
        if elapsed > self.slow_seconds:
            log.warning(
                "plugin %s blocked the loop for %.0f ms in %s",
                plugin, elapsed * 1000, getattr(fn, "__qualname__", fn), extra=ERR,
            )

    def fault(self, plugin: str, trace: str) -> None:
        """Record one fault of *plugin*; disable it at ``fault_limit``."""
        log.error("plugin %s raised:\n%s", plugin, trace.rstrip(), extra=ERR)
        info = self.info.get(plugin)
        if info is None:
            return
        info.faults += 1
        if info.faults >= self.fault_limit and self.pm.has_plugin(plugin):
            self.pm.unregister(name=plugin)
            self.registry.remove_plugin(plugin)
            self.info.pop(plugin, None)
            log.error("plugin %s disabled after %d faults", plugin, info.faults, extra=ERR)


def _with_plugin(command: Command, plugin: str) -> Command:
    from dataclasses import replace

    return replace(command, plugin=plugin)


def _import_file(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"chatroom_plugin_{name}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(spec.name, None)
        raise
    return module


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return ""
