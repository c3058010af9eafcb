"""The relay's parts alone, without a relay or a socket: :class:`Consent` (policies and the answer phase)
and :class:`Backpressure` (holding, pausing, resuming, dropping stalled receivers), each against the fake
server and clients of ``test_transfer.py`` (the quota's own tests are in ``test_consent.py``)."""

from __future__ import annotations

from typing import Any

import pytest
from test_transfer import Clock, FakeClient, FakeServer, frames, lines

from chatroom.model.errors import Refused
from chatroom.net.backpressure import Backpressure
from chatroom.net.consent import Consent
from chatroom.net.transfer import Transfer


def ends_with(client: FakeClient, meta: str) -> bool:
    """*client*'s queue ends with the frame *meta* (what came before is raw filler, not frames)."""
    return bytes(client.out).endswith(client.frame(meta))


def transfer(tid: int, sender: FakeClient, *receivers: FakeClient, size: int = 100) -> Transfer:
    return Transfer(tid, sender, "a.txt", size, {r.id: r for r in receivers}, 0.0, 0.0)  # type: ignore[arg-type]


# -- Consent -------------------------------------------------------------------------------------------


@pytest.fixture
def consent() -> tuple[Consent, list[Transfer], FakeServer, Clock, list[FakeClient]]:
    server, clock, decided = FakeServer(), Clock(), []
    parts = Consent(server, decided.append, timeout=60, clock=clock)  # type: ignore[arg-type]
    people = [FakeClient(i, nick, server.lobby) for i, nick in enumerate(["alice", "bob", "carol", "dave"], 1)]
    return parts, decided, server, clock, people


def test_consent_sorts_candidates_by_policy_and_decides_at_once_when_nobody_is_asked(consent: Any) -> None:
    parts, decided, _, _, (alice, bob, carol, dave) = consent
    parts.set_policy(carol, "none")
    offer = transfer(1, alice)
    parts.offer(offer, [bob, carol])
    assert decided == [offer] and parts.waiting == {}
    assert (list(offer.receivers), offer.accepted, offer.declined, offer.report) == ([bob.id], ["bob"], ["carol"], True)
    assert bob.drain() == [] and carol.drain() == []  # nobody was asked: no offer frames
    with pytest.raises(Refused, match="a file policy is one of ask, all, none"):
        parts.set_policy(dave, "maybe")


def test_consent_asks_then_decides_when_the_last_answer_is_in(consent: Any) -> None:
    parts, decided, _, _, (alice, bob, carol, _) = consent
    for person in (bob, carol):
        parts.set_policy(person, "ask")
    offer = transfer(7, alice)
    parts.offer(offer, [bob, carol])
    assert decided == [] and parts.waiting == {7: offer}
    assert frames(bob.drain()) == ["file-offer 7 100 alice a.txt"]
    assert lines(alice.drain()) == ['* offering "a.txt" (100 bytes) to bob, carol: waiting up to 60 s for their answers']
    assert parts.answer(bob, 7, True) == "accepted"
    assert lines(bob.drain()) == ['OK accepted 7 "a.txt" from alice'] and decided == []
    with pytest.raises(Refused, match="no offer 7 is waiting"):
        parts.answer(bob, 7, False)  # answered already
    parts.set_policy(carol, "none")  # a policy of none answers what waits: declined
    assert decided == [offer] and parts.waiting == {}
    assert (offer.accepted, offer.declined) == (["bob"], ["carol"])


def test_consent_counts_silence_and_leaving_as_no_answer(consent: Any) -> None:
    parts, decided, _, clock, (alice, bob, carol, dave) = consent
    for person in (bob, carol, dave):
        parts.set_policy(person, "ask")
    offer = transfer(3, alice)
    parts.offer(offer, [bob, carol, dave])
    bob.drain()
    parts.left(carol)
    assert "carol" in offer.timed_out and carol.id not in parts.policies
    parts.answer(dave, 3, True)
    clock.now += 59
    parts.expire(clock.now)
    assert decided == []
    clock.now += 1
    parts.expire(clock.now)
    assert frames(bob.drain()) == ["file-abort 3 no answer in 60 s: declined"]
    assert decided == [offer] and offer.timed_out == ["carol", "bob"] and list(offer.receivers) == [dave.id]


def test_consent_forgets_an_offer_whose_transfer_ended(consent: Any) -> None:
    parts, decided, _, clock, (alice, bob, *_) = consent
    parts.set_policy(bob, "ask")
    offer = transfer(4, alice)
    parts.offer(offer, [bob])
    parts.drop(offer)
    with pytest.raises(Refused):
        parts.answer(bob, 4, True)
    clock.now += 3600
    parts.expire(clock.now)
    assert decided == []


# -- Backpressure ---------------------------------------------------------------------------------------


@pytest.fixture
def flow() -> tuple[Backpressure, dict[int, Transfer], list[tuple[Transfer, str]], FakeServer, Clock, list[FakeClient]]:
    server, clock, ended = FakeServer(max_queue=1000), Clock(), []
    transfers: dict[int, Transfer] = {}
    parts = Backpressure(server, transfers, lambda t, reason: ended.append((t, reason)), high_water=100,  # type: ignore[arg-type]
                         stall_timeout=30, clock=clock)
    people = [FakeClient(i, nick, server.lobby) for i, nick in enumerate(["alice", "bob", "carol", "dave"], 1)]
    return parts, transfers, ended, server, clock, people


def test_backpressure_holds_what_does_not_fit_and_gives_it_once_drained(flow: Any) -> None:
    parts, transfers, _, _, _, (alice, bob, *_) = flow
    transfers[1] = t = transfer(1, alice, bob)
    assert parts.send(t, bob, b"x" * 600)  # an empty queue takes anything
    assert not parts.send(t, bob, b"y" * 600)  # 1200 > max_queue: held, not queued, not copied
    assert bob.queued == 600 and t.held == {bob.id: [b"y" * 600]}
    assert not parts.send(t, bob, b"z")  # behind what is held, in order
    bob.out.clear()
    parts.drained(bob)
    assert bytes(bob.out) == b"y" * 600 + b"z" and t.held == {}


def test_backpressure_pauses_every_sender_to_a_full_receiver_and_resumes_them_together(flow: Any) -> None:
    parts, transfers, _, _, clock, (alice, bob, carol, dave) = flow
    transfers[1] = first = transfer(1, alice, bob)
    transfers[2] = transfer(2, carol, bob, dave)
    parts.send(first, bob, b"x" * 150)  # over the high-water mark of 100
    parts.pause(first)
    assert alice.paused and carol.paused and set(parts.paused) == {alice.id, carol.id}
    parts.resume_unblocked()
    assert alice.paused  # bob is still full
    clock.now += 5
    bob.out.clear()
    parts.drained(bob)
    assert not alice.paused and not carol.paused and parts.paused == {}
    assert (first.last_data, first.window, first.mark) == (clock.now, clock.now, first.relayed)  # idle clock restarts


def test_backpressure_drops_a_receiver_that_stalls_a_sender_and_ends_a_transfer_left_without_any(flow: Any) -> None:
    parts, transfers, ended, _, clock, (alice, bob, carol, _) = flow
    transfers[1] = t = transfer(1, alice, bob, carol)
    parts.send(t, bob, b"x" * 150)
    parts.pause(t)
    parts.tick(clock.now)
    clock.now += 29
    parts.tick(clock.now)
    assert bob.id in t.receivers
    clock.now += 1
    parts.tick(clock.now)
    assert bob.id not in t.receivers and ended == []
    assert ends_with(bob, "file-abort 1 too slow: bob held the transfer back for 30 s")
    carol.out += b"c" * 150
    parts.resume_unblocked()  # bob is gone from the transfer; carol is full now
    clock.now += 30
    parts.tick(clock.now)
    parts.tick(clock.now + 30)
    assert ended == [(t, "carol held the transfer back for 30 s")]


def test_backpressure_flushes_an_ended_transfer_then_drops_a_receiver_that_never_reads(flow: Any) -> None:
    parts, transfers, _, _, clock, (alice, bob, carol, _) = flow
    t = transfer(1, alice, bob, carol)
    for receiver in (bob, carol):
        receiver.out += b"q" * 900
        assert not parts.send(t, receiver, b"end" * 100)
    parts.ended(t)  # the relay forgot it; its last bytes still wait for bob and carol
    assert parts.flushing == {1: t}
    carol.out.clear()
    parts.drained(carol)
    assert bytes(carol.out) == b"end" * 100 and list(t.held) == [bob.id]
    parts.tick(clock.now)
    parts.tick(clock.now + 30)
    assert parts.flushing == {} and ends_with(bob, "file-abort 1 too slow: bob held the transfer back for 30 s")


def test_backpressure_forgets_a_client_that_left(flow: Any) -> None:
    parts, transfers, _, _, _, (alice, bob, *_) = flow
    t = transfer(1, alice, bob)
    bob.out += b"q" * 900
    parts.send(t, bob, b"x" * 200)
    parts.ended(t)
    transfers[2] = other = transfer(2, bob, alice)
    alice.out += b"a" * 150
    parts.pause(other)
    assert bob.paused and parts.flushing
    parts.left(bob)
    assert parts.flushing == {} and parts.paused == {} and bob.id not in parts.blocked_since
