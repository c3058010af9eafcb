"""Loading plugins: the built-ins, installed distributions' entry points and ``--plugin-dir`` files.

Each plugin is loaded inside its own error handling: one that fails to import or register is logged under
``[ERROR]`` with its source and the reason (and kept in :attr:`Loader.errors`), and the server starts without it
(pluggy's own ``load_setuptools_entrypoints`` stops at the first failure, so it is not used). A plugin name is
taken by the first plugin that claims it, so a built-in is never replaced. Names the configuration disables
(``--disable-plugin``: a plugin's or a distribution's) are skipped, and the ones that matched nothing reported.
The plugin manager (:class:`chatroom.plugins.manager.PluginHost`) holds one :class:`Loader`. Start-up (or the
loop thread) only.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
from collections.abc import Iterable
from pathlib import Path

import pluggy

from chatroom.net.logs import ERR
from chatroom.plugins.info import PluginInfo
from chatroom.plugins.reloading import import_file

__all__ = ["BUILTIN_PLUGINS", "ENTRY_POINT_GROUP", "Loader"]

ENTRY_POINT_GROUP = "chatroom"

#: Modules of the built-in plugins, registered under their last dotted part.
BUILTIN_PLUGINS = (
    "chatroom.builtin.core",
    "chatroom.builtin.rooms",
    "chatroom.builtin.board",
    "chatroom.builtin.tweet",
    "chatroom.builtin.sendfile",
    "chatroom.builtin.accounts",
    "chatroom.builtin.moderation",
    "chatroom.builtin.search",
)

log = logging.getLogger("chatroom.plugins")


class Loader:
    """Registers plugins with *pm* (a ``pluggy.PluginManager``), recording each in *info* (name ->
    :class:`~chatroom.plugins.info.PluginInfo`). ``disabled``: plugin or distribution names not to load;
    ``errors``: every load error logged so far, in order."""

    def __init__(self, pm: pluggy.PluginManager, info: dict[str, PluginInfo], disabled: Iterable[str] = ()) -> None:
        self.pm = pm
        self.info = info
        self.disabled = set(disabled)
        self.errors: list[str] = []
        self._skipped: set[str] = set()  # names in `disabled` that matched something

    def error(self, message: str) -> None:
        """Log *message* as a load error (``[ERROR]``) and keep it in :attr:`errors`."""
        self.errors.append(message)
        log.error(message, extra=ERR)

    def unmatched(self) -> list[str]:
        """The disabled names that matched no plugin (sorted)."""
        return sorted(self.disabled - self._skipped)

    def _is_disabled(self, *names: str) -> bool:
        for name in names:
            if name and name in self.disabled:
                self._skipped.add(name)
                return True
        return False

    def register(self, plugin: object, name: str, info: PluginInfo) -> bool:
        """Register *plugin* (a module or object with hookimpls) as *name*; False if refused (logged)."""
        if self._is_disabled(name, info.distribution if info.source == "entry point" else ""):
            log.info("plugin %s (%s) disabled by configuration", name, info.origin)
            return False
        if self.pm.has_plugin(name) or name in self.info:
            other = self.info.get(name)
            taken_by = f"{other.source} {other.origin}" if other else "another plugin"
            self.error(
                f"plugin {name} ({info.source} {info.origin}) not loaded: the name is taken by {taken_by}"
            )
            return False
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:  # pluggy raises PluginValidationError and others
            self.error(f"plugin {name} ({info.source} {info.origin}) failed to register: {exc}")
            return False
        info.hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or [] if h.has_spec())
        self.info[name] = info
        log.info("loaded plugin %s (%s %s)", name, info.source, info.origin)
        return True

    def builtins(self) -> None:
        """Register the modules in :data:`BUILTIN_PLUGINS`."""
        for module_name in BUILTIN_PLUGINS:
            name = module_name.rsplit(".", 1)[1]
            if self._is_disabled(name):
                log.info("built-in plugin %s disabled by configuration", name)
                continue
            try:
                module = importlib.import_module(module_name)
            except Exception as exc:
                self.error(f"built-in plugin {name} failed to import: {exc!r}")
                continue
            self.register(module, name, PluginInfo(name, "builtin", "chatroom", _version("chatroom")))

    def entry_points(self, group: str = ENTRY_POINT_GROUP) -> None:
        """Load every entry point in *group*, each inside its own error handling."""
        for ep in importlib.metadata.entry_points(group=group):
            dist = ep.dist.name if ep.dist else "?"
            version = ep.dist.version if ep.dist else ""
            if self._is_disabled(ep.name, dist):
                log.info("plugin %s (%s %s) disabled by configuration", ep.name, dist, version)
                continue
            try:
                plugin = ep.load()
            except BaseException as exc:  # SystemExit from a module body must not stop the server either
                if isinstance(exc, KeyboardInterrupt):
                    raise
                self.error(
                    f"plugin {ep.name} from distribution {dist} {version} failed to load "
                    f"({ep.value}): {exc!r}"
                )
                continue
            self.register(plugin, ep.name, PluginInfo(ep.name, "entry point", dist, version))

    def folder(self, folder: Path) -> None:
        """Load every ``*.py`` file in *folder* (not starting with ``_``) as a plugin named after the file."""
        if not folder.is_dir():
            self.error(f"plugin folder {folder} does not exist")
            return
        for path in sorted(folder.glob("*.py")):
            name = path.stem
            if name.startswith("_"):
                continue
            if self._is_disabled(name):
                log.info("plugin %s (%s) disabled by configuration", name, path)
                continue
            if name in self.info:  # checked before importing: never run a shadowed file's code
                self.register(None, name, PluginInfo(name, "file", path=str(path)))
                continue
            try:
                module = import_file(name, path)
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt):
                    raise
                self.error(f"plugin {name} from file {path} failed to import: {exc!r}")
                continue
            self.register(module, name, PluginInfo(name, "file", path=str(path)))


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return ""
