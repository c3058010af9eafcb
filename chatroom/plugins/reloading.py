"""Reloading a drop-in plugin file in a running server, with rollback (``chatroom-server --reload``).

After Prosody's ``module:reload``: the new version is imported and checked
completely *before* the old one is touched; only when it imports, registers
(its hookimpls match the hookspecs and name no unknown hook), gives valid
commands that clash with no other plugin's, and accepts the plugin's
``[plugins.NAME]`` settings, is it swapped in. Any failure is logged and the
old version keeps running, unchanged.

The swap, in order: the old version's ``shutdown`` hook; its pending timers
cancelled; its hooks and commands unregistered; the new version registered
with its commands and settings; its ``ctx.state`` started empty (state is
the usual source of stale-state bugs in naive reloads; ``ctx.store`` and
``ctx.data_dir`` stay); the new version's ``startup`` hook. If that hook
raises, the swap is undone: the new version's timers are cancelled and its
hooks and commands unregistered, and the old version is registered again
(its hooks, commands, settings, ``/plugins`` line and fault count) and, since
its ``shutdown`` hook ran, its ``startup`` hook runs again, with an empty
``ctx.state`` as after any reload. A file that fails to import leaves the old
module in ``sys.modules``. Input a
plugin had captured (``ctx.capture``) stays with the old handlers until it
ends. Only plugins loaded from files (``--plugin-dir``) reload: an installed
distribution changes with ``pip``, and a restart.

Loop thread only.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from chatroom.net.logs import ERR
from chatroom.plugins import hookspecs
from chatroom.plugins.commands import Command, Registry
from chatroom.plugins.config import check_schema, freeze, validate
from chatroom.plugins.info import PluginInfo

__all__ = ["ReloadError", "Reloader", "import_file"]

log = logging.getLogger("chatroom.plugins")


class ReloadError(Exception):
    """Why a new version of a plugin was not swapped in (the old one keeps running)."""


class Reloader:
    """:meth:`reload_file` for a plugin host (:class:`chatroom.plugins.manager.PluginHost`, which holds one).

    It swaps plugins in the host's pluggy plugin manager *pm*, command *registry*, plugin *info*, settings
    *config* and *schemas* (the host's own objects, changed in place); *tables* are the ``[plugins.NAME]``
    tables as given, which a new version's ``config_schema`` is checked against. Loop thread only.
    """

    def __init__(self, pm: pluggy.PluginManager, registry: Registry, info: dict[str, PluginInfo],
                 config: dict[str, Any], schemas: dict[str, Any], tables: dict[str, dict[str, Any]]) -> None:
        self.pm = pm
        self.registry = registry
        self.info = info
        self.config = config
        self.schemas = schemas
        self.tables = tables

    def reload_file(self, name: str, path: Path, *, import_file: Callable[[str, Path], Any],
                    on_swap: Callable[[str], None], call_hook: Callable[[str, str], bool]) -> bool:
        """Load *path* as the new version of the file plugin *name* (or as a new plugin); True if swapped in.

        *import_file(name, path)* imports it; *on_swap(name)* runs between
        unregistering one version and registering the other (the server
        cancels the plugin's timers and forgets its ``ctx.state`` there);
        *call_hook(hook, name)* calls one hook of one plugin and returns False
        if it raised. Failures are logged under ``[ERROR]`` and leave the old
        version running (see the module docstring for a failed ``startup``).
        """
        old = self.info.get(name)
        old_module = self.pm.get_plugin(name) if old is not None else None
        try:
            if old is not None and old.source != "file":
                raise ReloadError(f"it is a {old.source} plugin; only --plugin-dir files reload")
            try:
                module = import_file(name, path)
            except BaseException as exc:  # noqa: BLE001 - plugin code
                if isinstance(exc, KeyboardInterrupt):
                    raise
                raise ReloadError(f"import failed: {exc!r}") from None
            try:
                commands, settings = self._check_new(name, module)
            except ReloadError:
                _restore_module(module, old_module)
                raise
        except ReloadError as exc:
            log.error("reload of plugin %s from %s failed: %s; %s", name, path, exc,
                      "the old version keeps running" if old is not None else "not loaded", extra=ERR)
            return False
        before = (old_module, [c for c in self.registry.commands if c.plugin == name], old,
                  self.schemas.get(name), self.config.get(name))
        if old is not None:
            call_hook("shutdown", name)
            self._unregister(name)
        on_swap(name)
        info = PluginInfo(name, "file", path=str(path))
        self._register(name, module, info, commands, settings)
        if not call_hook("startup", name):
            self._roll_back(name, module, before, on_swap, call_hook)
            log.error("reload of plugin %s from %s failed: its startup hook raised (see above); %s", name, path,
                      "the old version is back (its startup hook ran again)" if old is not None
                      else "not loaded", extra=ERR)
            return False
        log.info("%s plugin %s from %s", "reloaded" if old is not None else "loaded", name, path)
        return True

    def _unregister(self, name: str) -> None:
        if self.pm.has_plugin(name):  # a startup fault at --plugin-fault-limit 1 unregistered it already
            self.pm.unregister(name=name)
        self.registry.remove_plugin(name)

    def _register(self, name: str, module: Any, info: PluginInfo, commands: list[Command],
                  settings: tuple[Any, Any] | None) -> None:
        self.pm.register(module, name=name)
        info.hooks = sorted(h.name for h in self.pm.get_hookcallers(module) or [] if h.has_spec())
        info.commands = []
        self.info[name] = info
        for command in commands:
            self.registry.add(replace(command, plugin=name))
            info.commands.append(command.name)
        if settings is not None:
            self.schemas[name], self.config[name] = settings

    def _roll_back(self, name: str, module: Any, before: tuple[Any, list[Command], PluginInfo | None, Any, Any],
                   on_swap: Callable[[str], None], call_hook: Callable[[str, str], bool]) -> None:
        """Undo a swap whose new version's ``startup`` raised: the old version (if any) runs again."""
        old_module, old_commands, old_info, schema, config = before
        self._unregister(name)
        on_swap(name)  # the new version's timers and state go
        _restore_module(module, old_module)
        self.schemas.pop(name, None)
        self.config.pop(name, None)
        if old_info is None:
            self.info.pop(name, None)
            return
        faults, disabled = old_info.faults, old_info.disabled
        self._register(name, old_module, old_info, old_commands, (schema, config) if schema is not None else None)
        if config is not None:
            self.config[name] = config
        old_info.faults, old_info.disabled = faults, disabled
        call_hook("startup", name)

    def _check_new(self, name: str, module: Any) -> tuple[list[Command], tuple[Any, Any] | None]:
        """Everything that could fail, checked on a scratch plugin manager; raises ReloadError."""
        scratch = pluggy.PluginManager(hookspecs.PROJECT)
        scratch.add_hookspecs(hookspecs)
        try:
            scratch.register(module, name=name)
        except Exception as exc:  # pluggy's PluginValidationError and others
            raise ReloadError(f"it does not register: {exc}") from None
        unknown = [hook for hook, caller in vars(scratch.hook).items()
                   if not hook.startswith("_") and not caller.has_spec()
                   and any(not i.optionalhook for i in caller.get_hookimpls())]
        if unknown:
            raise ReloadError(f"it implements unknown hook {unknown[0]!r}")
        commands = self._new_commands(name, scratch)
        settings = None
        impls = scratch.hook.config_schema.get_hookimpls()
        if impls:
            schema = _call(impls[0].function, "config_schema")
            problem = check_schema(name, schema)
            if problem:
                raise ReloadError(problem)
            values, report = validate(name, schema, self.tables.get(name, {}))
            if report.errors:
                raise ReloadError("; ".join(report.errors))
            settings = (schema, freeze(values))
        return commands, settings

    def _new_commands(self, name: str, scratch: pluggy.PluginManager) -> list[Command]:
        impls = scratch.hook.register_commands.get_hookimpls()
        result = _call(impls[0].function, "register_commands") if impls else []
        commands = [result] if isinstance(result, Command) else list(result or [])
        taken = {n: c for c in self.registry.commands if c.plugin != name for n in c.names()}
        for command in commands:
            if not isinstance(command, Command):
                raise ReloadError(f"register_commands returned {command!r}, not a Command")
            clash = next((n for n in command.names() if n in taken), None)
            if clash:
                raise ReloadError(f"command /{clash} is taken by plugin {taken[clash].plugin!r}")
        return commands


def _call(fn: Callable[[], Any], what: str) -> Any:
    try:
        return fn()
    except BaseException as exc:  # noqa: BLE001 - plugin code
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise ReloadError(f"{what} raised {exc!r}") from None



def import_file(name: str, path: Path) -> ModuleType:
    """Import the drop-in plugin file *path* as the module ``chatroom_plugin_NAME``, replacing an older one
    in ``sys.modules`` only if it imports: on any exception the older one (if any) is put back, and the
    exception propagates."""
    spec = importlib.util.spec_from_file_location(f"chatroom_plugin_{name}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    previous = sys.modules.get(spec.name)
    sys.modules[spec.name] = module  # the module's own code (dataclasses, pickling) looks itself up there
    try:
        # compiled from the source itself, never from __pycache__: a cached .pyc is trusted when the file's mtime
        # (whole seconds) and size match, so a file rewritten within the same second at the same size would
        # reload its old code; nor is a .pyc written into the plugin folder
        exec(compile(path.read_bytes(), str(path), "exec"), module.__dict__)  # noqa: S102 - the plugin's own code
    except BaseException:
        _restore_module(module, previous)
        raise
    return module


def _restore_module(new: Any, old: Any) -> None:
    """Put *old* back in ``sys.modules`` where *new* (a plugin module that is not kept) took its place."""
    key = getattr(new, "__name__", None)
    if not isinstance(key, str) or sys.modules.get(key) is not new:
        return
    if old is not None and getattr(old, "__name__", None) == key:
        sys.modules[key] = old
    else:
        del sys.modules[key]
