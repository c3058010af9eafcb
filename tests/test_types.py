"""The type check as tests, like the import contracts in test_layers.py: mypy --strict on chatroom/ with the
configuration of pyproject.toml's [tool.mypy], and every ``# type: ignore`` that is left says which error it
silences and why."""

from __future__ import annotations

import re
import subprocess
import sys

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "chatroom"
#: A cold check of the whole package takes about 10 s on the project's 2-core machine (25 s while the rest of the
#: suite runs beside it); the cache in .mypy_cache (ignored by git) makes a second run about 1 s.
BUDGET = 240
IGNORE = re.compile(r"#\s*type:\s*ignore\b(?P<codes>\[[^\]]*\])?(?P<rest>.*)$")


@pytest.mark.timeout(BUDGET + 30)
def test_mypy_strict_passes_on_the_package() -> None:
    """``mypy`` with [tool.mypy] (strict, every ignore with its code), from the repository's root, so it checks
    the sources in chatroom/ and not an installed copy; its cache in .mypy_cache."""
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
         "--cache-dir", str(ROOT / ".mypy_cache"), "--no-color-output", "--no-error-summary", str(PACKAGE)],
        cwd=ROOT, capture_output=True, text=True, timeout=BUDGET, check=False)
    output = (done.stdout + done.stderr).strip()
    # one finding a line, "chatroom/FILE.py:LINE: error: WHAT  [code]" (paths relative to the repository's root)
    findings = [line for line in output.splitlines() if ": error:" in line]
    assert not findings, f"mypy --strict: {len(findings)} error(s):\n" + "\n".join(findings)
    assert (done.returncode, output) == (0, ""), f"mypy did not run cleanly:\n{output}"


def test_every_type_ignore_names_its_code_and_its_reason() -> None:
    """``# type: ignore[code]  # reason``: a bare ignore, or one with no reason after it, is a finding."""
    bare = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if (found := IGNORE.search(line)) is None:
                continue
            reason = found["rest"].strip()
            if not found["codes"] or not reason.startswith("#") or len(reason.lstrip("# ")) < 10:
                bare.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not bare, "ignores without a code or a reason (# type: ignore[code]  # reason):\n" + "\n".join(bare)
