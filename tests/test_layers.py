"""The architecture as tests: the floors' import contracts, no import cycles, small modules, and a test
kit that builds the server from public parts only."""

from __future__ import annotations

import ast
import logging
import os

from pathlib import Path

import grimp
import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "chatroom"
#: The guide asks for modules of "about 400 lines at most"; this is the hard stop of that "about": 450 lines, so a
#: module near 400 can take a fix without being split in the same commit. A module that outgrows it is split by
#: giving its parts their own state (the relay's Quota, Consent and Backpressure), never by moving methods into
#: mixins spread over files, which would pass this count and still be one object.
MAX_LINES = 450
#: Modules that may not touch I/O: the sans-I/O wire (codecs: bytes in, events out; its sockets are chatroom.sockets).
SANS_IO = {"socket", "ssl", "select", "selectors", "asyncio", "subprocess", "threading"}


def test_the_import_linter_contracts_are_kept(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """pyproject.toml's [tool.importlinter] contracts: the floors (the room model and the sockets side by side,
    neither importing the other), a wire and sockets that import nothing of ours, a client that shares only the
    wire and the sockets, built-ins that use only the public plugin API."""
    monkeypatch.chdir(ROOT)
    loggers = {name: logger.disabled for name, logger in logging.Logger.manager.loggerDict.items()
               if isinstance(logger, logging.Logger)}
    try:
        assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True) == 0
    finally:  # lint_imports configures logging and disables every existing logger: undo that for later tests
        for name, disabled in loggers.items():
            logging.getLogger(name).disabled = disabled


def test_no_import_cycles_counting_type_only_imports() -> None:
    graph = grimp.build_graph("chatroom")
    cycles = [
        (module, imported)
        for module in sorted(graph.modules)
        for imported in graph.find_modules_directly_imported_by(module)
        if graph.find_shortest_chain(importer=imported, imported=module)
    ]
    assert cycles == []


def test_no_module_is_over_450_lines() -> None:
    """See MAX_LINES: 400 is the aim, 450 what this test enforces."""
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_the_wire_imports_no_io_module() -> None:
    """Floor 1 is sans-I/O: no module of chatroom/wire imports a socket, TLS, selector, thread or process module."""
    offenders = []
    for path in sorted((PACKAGE / "wire").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path.name}:{node.lineno} {name}" for name in names if name.split(".")[0] in SANS_IO]
    assert offenders == []


def test_the_kit_and_the_built_ins_use_no_private_names_of_the_server() -> None:
    """``server._x`` / ``ctx._server`` reached from the kit or a built-in would be private plumbing."""
    offenders = []
    for path in [PACKAGE / "testing.py", *sorted((PACKAGE / "builtin").glob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                base = node.value
                if isinstance(base, ast.Attribute) and base.attr in ("server", "loop", "hub", "transport"):
                    offenders.append(f"{path.name}:{node.lineno} .{base.attr}.{node.attr}")
                if isinstance(base, ast.Name) and base.id in ("server", "ctx") and node.attr != "_":
                    offenders.append(f"{path.name}:{node.lineno} {base.id}.{node.attr}")
    assert offenders == []


def test_the_old_plugin_paths_still_work_and_warn() -> None:
    """Compatibility: plugins written before the layout change import chatroom.context and chatroom.store;
    since API 1.0 that works with a DeprecationWarning naming the replacement."""
    import importlib
    import sys

    assert os.path.exists(PACKAGE / "context.py") and os.path.exists(PACKAGE / "store.py")
    for old in ("chatroom.context", "chatroom.store", "chatroom.commands", "chatroom.hookspecs"):
        sys.modules.pop(old, None)
        with pytest.warns(DeprecationWarning, match=rf"{old} is deprecated since plugin API 1.0.*from chatroom import"):
            importlib.import_module(old)
    from chatroom.context import Context
    from chatroom.store import migrate

    import chatroom

    assert Context is chatroom.Context and migrate is chatroom.migrate


def test_the_re_exports_are_static_so_a_lower_floor_importing_chatroom_breaks_the_layers() -> None:
    """chatroom/__init__.py imports what it re-exports with import statements grimp sees (run on first use),
    so a module of a lower floor doing ``from chatroom import Command`` would make a chain from its floor to
    the plugin floor: what the layer contract refuses."""
    import chatroom

    graph = grimp.build_graph("chatroom")
    reached = graph.find_modules_directly_imported_by("chatroom")
    assert {getattr(chatroom, name).__module__ for name in chatroom.__all__
            if hasattr(getattr(chatroom, name), "__module__") and name != "hookimpl"} <= reached
    assert not graph.find_shortest_chains(importer="chatroom.model", imported="chatroom.plugins")
    graph.add_import(importer="chatroom.model.room", imported="chatroom", line_number=1, line_contents="import chatroom")
    assert graph.find_shortest_chains(importer="chatroom.model", imported="chatroom.plugins")
    text = (PACKAGE / "__init__.py").read_text()
    assert "importlib" not in text and "import_module" not in text


def test_the_plugin_floor_reaches_the_server_only_through_the_port() -> None:
    """Every service a context, the dispatcher, the plugin events and the reloader use of the server is a
    member of the typed port (chatroom.plugins.port.Host), every member is used, and the server's port
    implements it (structurally; mypy checks the signatures where it runs)."""
    from chatroom.plugins.port import Host
    from chatroom.server.port import ServerPort

    declared = {name for klass in Host.__mro__ if klass.__module__ == "chatroom.plugins.port"
                for name in vars(klass) if not name.startswith("_")}
    holders = {"_srv", "_server", "host", "port"}  # how the plugin floor names its host
    files = [PACKAGE / "plugins" / f"{name}.py" for name in ("context", "threads", "dispatch", "events")]
    files.append(PACKAGE / "server" / "reload.py")
    used: dict[str, str] = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Attribute):
                continue
            base = node.value
            if (isinstance(base, ast.Attribute) and base.attr in holders and isinstance(base.value, ast.Name)
                    and base.value.id == "self") or (isinstance(base, ast.Name) and base.id == "host"):
                used.setdefault(node.attr, f"{path.name}:{node.lineno}")
    assert {name: where for name, where in used.items() if name not in declared} == {}
    assert sorted(declared - set(used)) == []
    missing = [name for name in declared if not hasattr(ServerPort, name)]
    assert missing == []
