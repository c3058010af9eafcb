"""The send-folder watcher reports complete files once, and nothing else (issue 12's rule:
closed and then unchanged for the settle time, or renamed or moved in; never again after a change).

Negative checks ("not reported") are made deterministic with a marker file:
events are handled in order, so once a marker written after the action is
reported, the action's events were handled too.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from watchdog.observers.polling import PollingObserver

from chatroom.client.watch import SendFolderWatcher, ignored


class Seen:
    """Collects what the watcher reports; waits for names with a deadline."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.names: list[str] = []
        self.watcher: SendFolderWatcher | None = None
        self.markers = 0
        self.changed: list[str] = []

    def wake(self) -> None:
        self.event.set()

    def until(self, name: str, timeout: float = 10.0) -> list[str]:
        deadline = time.monotonic() + timeout
        assert self.watcher is not None
        while name not in self.names:
            left = deadline - time.monotonic()
            assert left > 0, f"{name} was not reported; saw {self.names}"
            self.event.wait(min(left, 0.5))
            self.event.clear()
            self.changed += [p.name for p in self.watcher.changed()]
            self.names += [p.name for p in self.watcher.ready()]
        return self.names


def make(folder: Path, **kw: Any) -> tuple[SendFolderWatcher, Seen]:
    seen = Seen()
    watcher = SendFolderWatcher(folder, seen.wake, **kw)
    seen.watcher = watcher
    watcher.start()
    return watcher, seen


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[tuple[Path, Seen]]:
    folder = tmp_path / "send"
    watcher, seen = make(folder, settle=0.2)
    try:
        yield folder, seen
    finally:
        watcher.stop()


def marker(folder: Path, seen: Seen) -> list[str]:
    seen.markers += 1
    name = f"marker{seen.markers}.txt"
    (folder / name).write_text(name)
    return seen.until(name)


def test_settle_default_is_the_one_the_help_gives() -> None:
    from chatroom.client.cli import build_parser
    from chatroom.client.watch import SETTLE

    assert f"(default: {SETTLE:g})" in " ".join(build_parser().format_help().split())
    assert build_parser().parse_args(["--settle", "0.5"]).settle == 0.5


def test_ignored_names() -> None:
    assert ignored(".hidden") and ignored("movie.mkv.part") and ignored("x.crdownload") and ignored("notes~")
    assert not ignored("report.pdf") and not ignored("my file.txt")


def test_slow_write_is_reported_when_closed(watched: Any) -> None:
    folder, seen = watched
    with open(folder / "slow.bin", "wb") as f:
        f.write(b"first half")
        f.flush()
        assert "slow.bin" not in marker(folder, seen)
        f.write(b"second half")
    assert seen.until("slow.bin").count("slow.bin") == 1


def test_moved_in_file_is_reported(watched: Any, tmp_path: Path) -> None:
    folder, seen = watched
    outside = tmp_path / "elsewhere.txt"
    outside.write_bytes(b"x" * 5000)
    os.rename(outside, folder / "moved.txt")
    seen.until("moved.txt")
    (folder / ".inside.part").write_bytes(b"y")
    os.rename(folder / ".inside.part", folder / "renamed.txt")
    seen.until("renamed.txt")


def test_dotfiles_partial_files_reads_and_touches_are_not_reported(watched: Any) -> None:
    folder, seen = watched
    (folder / ".hidden").write_text("h")
    (folder / "big.iso.part").write_text("p")
    (folder / "a.txt").write_text("content")
    seen.until("a.txt")
    (folder / "a.txt").read_text()
    subprocess.run(["touch", str(folder / "a.txt")], check=True)
    (folder / "a.txt").write_text("content")  # rewritten, same bytes
    names = marker(folder, seen)
    assert names.count("a.txt") == 1
    assert ".hidden" not in names and "big.iso.part" not in names
    assert seen.changed == []
    (folder / "a.txt").write_text("changed")
    names = marker(folder, seen)
    assert names.count("a.txt") == 1  # changed after it was reported: named in changed(), not reported again
    assert seen.changed == ["a.txt"]
    (folder / "a.txt").write_text("changed again")
    assert marker(folder, seen).count("a.txt") == 1 and seen.changed == ["a.txt"]  # named once


def test_a_file_appended_in_five_steps_is_reported_once_whole(watched: Any) -> None:
    """Issue 12: five appends, each opening and closing the file, less than the settle time apart."""
    folder, seen = watched
    for step in range(5):
        with open(folder / "log.txt", "ab") as f:
            f.write(b"step %d\n" % step)
        time.sleep(0.05)  # a writer's pace, shorter than settle (0.2 s); not a synchronisation
    names = seen.until("log.txt")
    assert names.count("log.txt") == 1
    assert (folder / "log.txt").read_bytes() == b"".join(b"step %d\n" % i for i in range(5))
    assert marker(folder, seen).count("log.txt") == 1 and seen.changed == []


def test_a_file_kept_open_is_not_reported_until_closed(watched: Any) -> None:
    folder, seen = watched
    with open(folder / "held.bin", "wb") as f:
        f.write(b"x" * 1000)
        f.flush()
        time.sleep(0.5)  # more than settle with nothing written: still open, so not complete
        assert "held.bin" not in marker(folder, seen)
        f.write(b"y")
    assert seen.until("held.bin").count("held.bin") == 1


def test_renamed_over_a_reported_file_is_a_new_file(watched: Any) -> None:
    folder, seen = watched
    (folder / "r.txt").write_text("v1")
    seen.until("r.txt")
    (folder / "r.txt.part").write_text("v2")
    os.rename(folder / "r.txt.part", folder / "r.txt")
    assert marker(folder, seen).count("r.txt") == 2 and seen.changed == []


def test_files_present_at_start_are_not_reported(tmp_path: Path) -> None:
    folder = tmp_path / "send"
    folder.mkdir()
    (folder / "old.txt").write_text("old")
    watcher, seen = make(folder, settle=0.2)
    try:
        assert "old.txt" not in marker(folder, seen)
    finally:
        watcher.stop()


def test_deleted_then_recreated_is_reported_again(watched: Any) -> None:
    folder, seen = watched
    (folder / "b.txt").write_text("b")
    seen.until("b.txt")
    (folder / "b.txt").unlink()
    (folder / "b.txt").write_text("b")
    assert marker(folder, seen).count("b.txt") == 2


def test_polling_observer_uses_a_stable_size_check(tmp_path: Path) -> None:
    folder = tmp_path / "send"
    watcher, seen = make(folder, settle=0.3, observer_factory=lambda: PollingObserver(timeout=0.1))
    try:
        with open(folder / "poll.bin", "wb") as f:
            for _ in range(3):  # keeps changing faster than the settle time
                f.write(b"z" * 1000)
                f.flush()
                time.sleep(0.1)
        names = seen.until("poll.bin")
        (folder / "other.txt").write_text("o")
        assert seen.until("other.txt").count("poll.bin") == 1
        assert os.path.getsize(folder / "poll.bin") == 3000
    finally:
        watcher.stop()
    assert names


def test_stop_is_idempotent(tmp_path: Path) -> None:
    watcher = SendFolderWatcher(tmp_path / "s", lambda: None)
    watcher.stop()
    watcher.start()
    assert (tmp_path / "s").is_dir()
    watcher.stop()
    watcher.stop()


