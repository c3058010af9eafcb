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
``ctx.data_dir`` stay); the new version's ``startup`` hook. Input a
plugin had captured (``ctx.capture``) stays with the old handlers until it
ends. Only plugins loaded from files (``--plugin-dir``) reload: an installed
distribution changes with ``pip``, and a restart.

Loop thread only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pluggy

from chatroom.net.logs import ERR
from chatroom.plugins import hookspecs
from chatroom.plugins.commands import Command, Registry
from chatroom.plugins.config import check_schema, freeze, validate
from chatroom.plugins.info import PluginInfo

__all__ = ["ReloadError", "Reloading"]

log = logging.getLogger("chatroom.plugins")


class ReloadError(Exception):
    """Why a new version of a plugin was not swapped in (the old one keeps running)."""


class Reloading:
    """Mixed into :class:`chatroom.plugins.manager.PluginHost`: :meth:`reload_file`."""

    # provided by PluginHost
    pm: pluggy.PluginManager
    registry: Registry
    info: dict[str, PluginInfo]
    config: dict[str, Any]
    schemas: dict[str, Any]
    _tables: dict[str, dict[str, Any]]

    def reload_file(self, name: str, path: Path, *, import_file: Callable[[str, Path], Any],
                    on_swap: Callable[[str], None], call_hook: Callable[[str, str], None]) -> bool:
        """Load *path* as the new version of the file plugin *name* (or as a new plugin); True if swapped in.

        *import_file(name, path)* imports it; *on_swap(name)* runs between
        unregistering the old version and registering the new (the server
        cancels the old timers and forgets its ``ctx.state`` there);
        *call_hook(hook, name)* calls one hook of one plugin. Failures are
        logged under ``[ERROR]`` and leave everything as it was.
        """
        old = self.info.get(name)
        try:
            if old is not None and old.source != "file":
                raise ReloadError(f"it is a {old.source} plugin; only --plugin-dir files reload")
            try:
                module = import_file(name, path)
            except BaseException as exc:  # noqa: BLE001 - plugin code
                if isinstance(exc, KeyboardInterrupt):
                    raise
                raise ReloadError(f"import failed: {exc!r}") from None
            commands, settings = self._check_new(name, module)
        except ReloadError as exc:
            log.error("reload of plugin %s from %s failed: %s; %s", name, path, exc,
                      "the old version keeps running" if old is not None else "not loaded", extra=ERR)
            return False
        if old is not None:
            call_hook("shutdown", name)
            self.pm.unregister(name=name)
            self.registry.remove_plugin(name)
        on_swap(name)
        self.pm.register(module, name=name)
        info = PluginInfo(name, "file", path=str(path))
        info.hooks = sorted(h.name for h in self.pm.get_hookcallers(module) or [] if h.has_spec())
        self.info[name] = info
        for command in commands:
            self.registry.add(replace(command, plugin=name))
            info.commands.append(command.name)
        if settings is not None:
            self.schemas[name], self.config[name] = settings
        call_hook("startup", name)
        log.info("%s plugin %s from %s", "reloaded" if old is not None else "loaded", name, path)
        return True

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
            values, report = validate(name, schema, self._tables.get(name, {}))
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

