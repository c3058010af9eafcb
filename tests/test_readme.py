"""The README's test command is the one CI runs (.ci/run), word for word."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ci_runs_exactly_the_readmes_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Test it"):]
    command = section.split("```sh\n", 1)[1].split("\n```", 1)[0].strip()
    assert "pytest" in command
    ci_lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert ci_lines[-1] == command
