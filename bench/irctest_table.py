"""Per-module irctest figures for docs/irc.md, from the JUnit reports of two irctest runs.

Usage (docs/irc.md, "Conformance: irctest", gives the irctest commands that write the reports)::

    python bench/irctest_table.py chatroom.xml ngircd.xml [--modules connection_registration,pingpong,...]

Prints a Markdown table: one row per irctest module, passed / failed / skipped / xfailed for each report,
and a total row. A test counts as failed when its report has a ``failure`` or an ``error``.
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict

OUTCOMES = ("passed", "failed", "skipped", "xfailed")


def outcomes(path: str) -> dict[str, Counter[str]]:
    """Module name (``chmodes/ban``, ``join``...) -> outcome -> count, from the JUnit XML report *path*."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for case in ET.parse(path).getroot().iter("testcase"):
        module = case.get("classname", "").removeprefix("irctest.server_tests.").rsplit(".", 1)[0].replace(".", "/")
        kinds = {child.tag for child in case}
        skipped = case.find("skipped")
        if "failure" in kinds or "error" in kinds:
            outcome = "failed"
        elif skipped is not None:
            outcome = "xfailed" if skipped.get("type") == "pytest.xfail" else "skipped"
        else:
            outcome = "passed"
        counts[module][outcome] += 1
    return counts


def table(first: dict[str, Counter[str]], second: dict[str, Counter[str]], names: tuple[str, str],
          modules: list[str] | None) -> str:
    """The Markdown table of both runs, one row per module (*modules*, or every module either ran)."""
    rows = modules or sorted(set(first) | set(second))
    head = "| module | " + " | ".join(f"{n} {o}" for n in names for o in ("pass", "fail", "skip", "xfail")) + " |"
    out = [head, "|---|" + "---:|" * 8]
    totals = [Counter(), Counter()]
    for module in rows:
        cells = []
        for i, run in enumerate((first, second)):
            counts = run.get(module, Counter())
            totals[i].update(counts)
            cells += [str(counts[o]) for o in OUTCOMES]
        out.append(f"| {module} | " + " | ".join(cells) + " |")
    out.append("| **total** | " + " | ".join(f"**{t[o]}**" for t in totals for o in OUTCOMES) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("first")
    ap.add_argument("second")
    ap.add_argument("--names", default="chatroom,ngircd")
    ap.add_argument("--modules", default="", help="comma-separated modules, in this order (default: all)")
    args = ap.parse_args(argv)
    names = tuple(args.names.split(",", 1))
    modules = [m for m in args.modules.split(",") if m] or None
    print(table(outcomes(args.first), outcomes(args.second), names, modules))  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())
