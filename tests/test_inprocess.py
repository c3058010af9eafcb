"""The server runs in-process too: Server(...).serve_forever() in a thread, shutdown() from another."""

from __future__ import annotations

import threading
from pathlib import Path

from conftest import LineClient

from chatroom.server.app import Server, ServerOptions


def test_in_process_server_serves_and_shuts_down(tmp_path: Path) -> None:
    server = Server(ServerOptions(port=0, data_dir=tmp_path))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.address
    alice, bob = LineClient(host, port), LineClient(host, port)
    try:
        alice.expect_prefix("* Welcome")
        bob.expect_prefix("* Welcome")
        alice.send("/nick alice")
        alice.expect("OK nick alice")
        alice.send("hello from a thread")
        bob.expect("alice: hello from a thread")
        server.shutdown()
        thread.join(5)
        assert not thread.is_alive()
        bob.expect("* server shutting down")
        assert bob.closed_by_server()
    finally:
        alice.close()
        bob.close()


def test_call_later_and_run_in_thread_come_back_on_the_loop_thread(tmp_path: Path) -> None:
    server = Server(ServerOptions(port=0, data_dir=tmp_path))
    loop_thread = threading.Thread(target=server.serve_forever, daemon=True)
    seen: list[tuple[str, object]] = []
    done = threading.Event()

    def after_work(result: object, error: BaseException | None) -> None:
        seen.append(("work", (result, error, threading.current_thread() is loop_thread)))
        server.call_later(0.01, finish)

    def finish() -> None:
        seen.append(("timer", threading.current_thread() is loop_thread))
        done.set()

    server.run_in_thread(lambda: threading.current_thread().name, after_work)
    loop_thread.start()
    assert done.wait(5)
    server.shutdown()
    loop_thread.join(5)
    (kind, (result, error, on_loop)), timer = seen
    assert kind == "work" and str(result).startswith("chatroom-worker") and error is None and on_loop
    assert timer == ("timer", True)
