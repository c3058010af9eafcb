"""docs/architecture.md names real things: every file it cites exists, and every class (``Hub``), class member
(``Hub.add_wire``) or module member (``hub.Notice``) it cites in backquotes is defined in chatroom/.

Read from the sources with ``ast`` (nothing is imported), so a rename that leaves the page behind fails here
with the name and the line of the page."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "chatroom"
DOC = ROOT / "docs" / "architecture.md"

#: `...` spans outside code blocks.
_QUOTED = re.compile(r"`([^`\n]+)`")
#: A cited file of the repository: a path ending in .py or .lua.
_FILE = re.compile(r"^(?:chatroom/)?[\w/.-]+\.(?:py|lua)$")
#: Capitalised words the page quotes that are no code: HTTP headers (``Host`` is one too, and a class of the
#: plugin port: checked as that).
_NOT_CODE = {"Origin"}
#: In the page's drawing (a ``text`` code block): class names and ``floor.module.Class``.
_DRAWN = re.compile(r"\b(?:[a-z]+\.)*[A-Z][a-z]\w*(?:\.[a-z_]\w*)?")
#: ``Name``, ``Name.member`` or ``module.Name`` (a call's arguments dropped: ``Hub.say(member, room)``).
_NAME = re.compile(r"^(?P<path>[A-Za-z_][\w.]*)(?:\(.*\))?$")


def _sources() -> dict[str, ast.Module]:
    return {str(path.relative_to(ROOT)): ast.parse(path.read_text(encoding="utf-8")) for path in PACKAGE.rglob("*.py")}


def _classes(sources: dict[str, ast.Module]) -> dict[str, list[ast.ClassDef]]:
    found: dict[str, list[ast.ClassDef]] = defaultdict(list)
    for tree in sources.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                found[node.name].append(node)
    return found


def _members(cls: ast.ClassDef) -> set[str]:
    """What a class body defines: methods, class attributes and annotations, ``__slots__``, ``self.X =``."""
    names: set[str] = set()
    for node in ast.walk(cls):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, (ast.Name, ast.Attribute)):
            target = node.target
            names.add(target.id if isinstance(target, ast.Name) else target.attr)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                for leaf in ast.walk(target):
                    if isinstance(leaf, ast.Name):
                        names.add(leaf.id)
                    elif isinstance(leaf, ast.Attribute) and isinstance(leaf.value, ast.Name) and leaf.value.id == "self":
                        names.add(leaf.attr)
            if any(isinstance(t, ast.Name) and t.id == "__slots__" for t in node.targets):
                names |= {e.value for e in ast.walk(node.value) if isinstance(e, ast.Constant) and isinstance(e.value, str)}
    return names


def _all_members(name: str, classes: dict[str, list[ast.ClassDef]], seen: set[str] | None = None) -> set[str]:
    """The members of every class called *name* and of its bases defined in chatroom/."""
    seen = seen if seen is not None else set()
    if name in seen:
        return set()
    seen.add(name)
    names: set[str] = set()
    for cls in classes.get(name, []):
        names |= _members(cls)
        for base in cls.bases:
            base_name = base.id if isinstance(base, ast.Name) else base.attr if isinstance(base, ast.Attribute) else ""
            names |= _all_members(base_name, classes, seen)
    return names


def _module_names(sources: dict[str, ast.Module], module: str) -> set[str] | None:
    """Top-level names (defined or imported) of every chatroom module called *module* (``hub``), or None."""
    names: set[str] = set()
    found = False
    for path, tree in sources.items():
        if Path(path).stem != module:
            continue
        found = True
        for node in tree.body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                names.add(node.name)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names |= {alias.asname or alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names |= {leaf.id for t in targets for leaf in ast.walk(t) if isinstance(leaf, ast.Name)}
    return names if found else None


def _file_exists(text: str) -> bool:
    relative = text.removeprefix("chatroom/")
    return any((base / relative).exists() for base in (ROOT, PACKAGE)) or any(PACKAGE.rglob(relative))


def _citations() -> list[tuple[int, str]]:
    """(line number, text) of every name in backquotes, and of every name in the drawing."""
    cited = []
    in_code = False
    for number, line in enumerate(DOC.read_text(encoding="utf-8").splitlines(), 1):
        if line.lstrip().startswith("```"):
            in_code = not in_code
            continue
        if not in_code:
            cited += [(number, quoted) for quoted in _QUOTED.findall(line)]
        else:
            cited += [(number, drawn.split(".", drawn.count(".") - 1)[-1] if drawn[0].islower() else drawn)
                      for drawn in _DRAWN.findall(line)]
    return cited


def test_every_file_the_architecture_page_cites_exists() -> None:
    missing = [f"docs/architecture.md:{number}: {text}" for number, text in _citations()
               if _FILE.match(text) and not _file_exists(text)]
    assert not missing, "names docs/architecture.md cites that do not exist:\n" + "\n".join(missing)


def test_every_class_and_member_the_architecture_page_cites_exists() -> None:
    sources = _sources()
    classes = _classes(sources)
    missing, checked = [], 0
    for number, text in _citations():
        found = _NAME.match(text)
        if found is None or _FILE.match(text):
            continue
        parts = found["path"].split(".")
        head = parts[0]
        if text in _NOT_CODE:
            continue
        if head[0].isupper() and not head.isupper():  # a class, maybe a member
            checked += 1
            if head not in classes:
                missing.append(f"docs/architecture.md:{number}: {text}: no class {head} in chatroom/")
            elif len(parts) > 1 and parts[1] not in _all_members(head, classes):
                missing.append(f"docs/architecture.md:{number}: {text}: {head} has no {parts[1]}")
        elif len(parts) == 2 and parts[1][:1].isupper():  # module.Name
            names = _module_names(sources, head)
            if names is None:
                continue  # not a chatroom module (a library's, as ``socket.socket``)
            checked += 1
            if parts[1] not in names:
                missing.append(f"docs/architecture.md:{number}: {text}: module {head} has no {parts[1]}")
    assert checked >= 40, f"only {checked} names checked: the page's citations are no longer recognised"
    assert not missing, "names docs/architecture.md cites that do not exist:\n" + "\n".join(missing)
