"""The browser client's files are package data: a wheel built from the tree carries every file of
chatroom/web/static, so `pip install chatroom` serves the page with nothing else to fetch."""

from __future__ import annotations

import zipfile
from pathlib import Path

from hatchling.build import build_wheel

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "chatroom" / "web" / "static"


def test_the_wheel_ships_every_static_file_of_the_page(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(ROOT)
    wheel = tmp_path / build_wheel(str(tmp_path))
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = {f"chatroom/web/static/{path.relative_to(STATIC).as_posix()}" for path in STATIC.rglob("*") if path.is_file()}
    assert {"chatroom/web/static/index.html", "chatroom/web/static/app.js", "chatroom/web/static/style.css"} <= wanted
    assert wanted <= names


def test_the_page_loads_nothing_from_elsewhere_and_never_parses_html() -> None:
    """No CDN, no web fonts, no http(s) URL in the page's files; no innerHTML/outerHTML/insertAdjacentHTML/
    document.write (every text goes in as text)."""
    for path in STATIC.rglob("*"):
        if path.suffix in (".html", ".js", ".css"):
            text = path.read_text()
            assert "http://" not in text and "https://" not in text and "@import" not in text, path.name
            for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
                assert sink not in text, f"{path.name} uses {sink}"
