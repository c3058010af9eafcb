"""Every hook is documented, and docs/plugins.md carries that documentation word for word.

The hooks reference in docs/plugins.md (between the ``hooks:start`` and
``hooks:end`` markers) is generated from chatroom/hookspecs.py; after
editing a hook's docstring, regenerate it with::

    python tests/test_hookspecs.py
"""

from __future__ import annotations

import ast
import inspect
import re
import sys
import textwrap
from pathlib import Path

import pytest

from chatroom.plugins import hookspecs

DOC = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"
START, END = "<!-- hooks:start (generated from chatroom/hookspecs.py) -->", "<!-- hooks:end -->"
HOOKS = hookspecs.hook_names()


def docstring(name: str) -> str:
    return inspect.cleandoc(getattr(hookspecs, name).__doc__ or "")


def example(name: str) -> str:
    """The literal block after ``Example...::`` in the hook's docstring ("" if none)."""
    lines = docstring(name).splitlines()
    for i, line in enumerate(lines):
        if line.lstrip().startswith("Example") and line.rstrip().endswith("::"):
            block = []
            for body in lines[i + 1:]:
                if body.strip() and not body.startswith(" "):
                    break
                block.append(body)
            return textwrap.dedent("\n".join(block)).strip()
    return ""


def test_the_expected_hooks_exist():
    assert set(HOOKS) >= {"register_commands", "startup", "shutdown", "client_joined", "client_left",
                          "nick_changed", "chat_message", "file_offered", "file_delivered"}


@pytest.mark.parametrize("name", HOOKS)
def test_hook_docstring_names_every_argument(name):
    doc = docstring(name)
    assert doc, f"hook {name} has no docstring"
    for arg in inspect.signature(getattr(hookspecs, name)).parameters:
        assert re.search(rf"``{arg}(\.[\w.()]+)?``", doc), f"hook {name}: argument {arg} is not described (as ``{arg}``)"


@pytest.mark.parametrize("name", HOOKS)
def test_hook_docstring_says_when_it_is_called_and_what_the_return_means(name):
    doc = docstring(name)
    assert re.search(r"\bcalled\b", doc, re.IGNORECASE), f"hook {name}: say when it is called"
    assert re.search(r"\breturn\s+value\b", doc, re.IGNORECASE), f"hook {name}: say what its return value means"


@pytest.mark.parametrize("name", HOOKS)
def test_hook_docstring_has_an_example_that_parses(name):
    code = example(name)
    assert code, f"hook {name} has no 'Example::' block"
    tree = ast.parse(code)  # a SyntaxError fails the test
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name]
    assert functions, f"hook {name}: the example must define def {name}(...)"
    decorators = [ast.unparse(d) for d in functions[0].decorator_list]
    assert "hookimpl" in decorators, f"hook {name}: the example must use @hookimpl"
    spec_args = set(inspect.signature(getattr(hookspecs, name)).parameters)
    example_args = {a.arg for a in functions[0].args.args}
    assert example_args <= spec_args, f"hook {name}: the example takes arguments the hook does not have"


def test_an_undocumented_hook_fails_these_checks(monkeypatch):
    """The checks above are not vacuous: a bare spec fails each of them."""

    def nick_changed(ctx, old, new):
        pass

    monkeypatch.setattr(hookspecs, "nick_changed", nick_changed)
    with pytest.raises(AssertionError):
        test_hook_docstring_names_every_argument("nick_changed")
    with pytest.raises(AssertionError):
        test_hook_docstring_says_when_it_is_called_and_what_the_return_means("nick_changed")
    with pytest.raises(AssertionError):
        test_hook_docstring_has_an_example_that_parses("nick_changed")


# -- the generated reference in docs/plugins.md -------------------------------------------
def to_markdown(doc: str) -> str:
    """reStructuredText-ish docstring -> Markdown: ``x`` -> `x`, roles dropped, ``::`` blocks fenced."""
    out: list[str] = []
    lines = doc.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.rstrip().endswith("::"):
            out.append(_inline(line.rstrip()[:-2].rstrip() + ":"))
            block = []
            i += 1
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith(" ")):
                block.append(lines[i])
                i += 1
            out += ["", "```python", textwrap.dedent("\n".join(block)).strip(), "```", ""]
            continue
        out.append(_inline(line))
        i += 1
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()


def _inline(text: str) -> str:
    text = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text)
    return text.replace("``", "`")


def render_reference() -> str:
    parts = [START, ""]
    for name in HOOKS:
        signature = inspect.signature(getattr(hookspecs, name))
        args = ", ".join(signature.parameters)
        returns = signature.return_annotation
        parts += [f"### `{name}({args})` -> `{returns}`", "", to_markdown(docstring(name)), ""]
    parts.append(END)
    return "\n".join(parts)


def current_reference() -> str:
    text = DOC.read_text(encoding="utf-8")
    return text[text.index(START):text.index(END) + len(END)]


def test_docs_hooks_reference_matches_the_hookspecs():
    assert DOC.exists(), "docs/plugins.md is missing"
    assert current_reference() == render_reference(), (
        "docs/plugins.md's hooks reference is out of date: run  python tests/test_hookspecs.py"
    )


def write_reference() -> None:
    text = DOC.read_text(encoding="utf-8")
    DOC.write_text(text.replace(current_reference(), render_reference()), encoding="utf-8")


if __name__ == "__main__":
    write_reference()
    print(f"updated the hooks reference in {DOC}", file=sys.stderr)
