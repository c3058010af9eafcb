"""The built-in ``sendfile`` plugin: ``/sendfile NAME SIZE`` opens a file transfer; receivers consent.

This is the server side of a transfer's first step (``docs/protocol.md``,
"File transfer frames"): ``chatroom-client`` sends ``/sendfile "NAME" SIZE``
for a file in its ``send/`` folder, waits for ``OK sendfile ID NAME`` and then
streams ``file-data ID`` frames, which the server's relay
(:mod:`chatroom.net.relay`) forwards to every other frame-capable member of the
room that accepted the file. NAME in the reply is the sanitised name the room
sees. A refusal is ``ERROR sendfile NAME: reason``; it happens before any byte
moves (size over ``--max-file-size``, no receivers, a quota, a
``file_offered`` hookimpl said no, nobody accepted...). The relay sends the
``OK`` itself, once every receiver asked for consent has answered.

Consent (the receiver decides):

* ``/files ask|all|none``: this connection's policy. ``all`` is what a client
  that never says otherwise gets (files arrive without asking, as before
  consent existed); ``ask`` makes every offer a ``file-offer`` frame to answer;
  ``none`` declines every offer at once.
* ``/accept ID`` and ``/decline ID`` answer one offer: ``OK accepted ID "NAME"
  from SENDER`` / ``OK declined ...``, or ``ERROR accept ID: no offer ID is
  waiting for your answer ...``. No answer within the server's offer timeout
  counts as declined.

A person on ``nc`` who types ``/sendfile x`` gets the usage line; frames cannot
be typed, so files are sent with ``chatroom-client``.
"""

from __future__ import annotations


from chatroom import (
    Command,
    CommandError,
    Context,
    Refused,
    UsageError,
    hookimpl,
    parse_uint,
    safe_name,
)

USAGE = "/sendfile NAME SIZE"
#: Most digits SIZE may have (the server's ``--max-file-size`` bounds the value).
MAX_SIZE_DIGITS = 19
SUMMARY = 'Offer a file of SIZE bytes to the room (in chatroom-client: /sendfile NAME, quoted if it has spaces)'
#: The policies ``/files`` takes.
POLICIES = ("ask", "all", "none")


def sendfile(ctx: Context, args: list[str]) -> None:
    """Handle ``/sendfile NAME SIZE``: the relay replies ``OK sendfile ID NAME`` once the receivers answered;
    a refusal is ``ERROR sendfile NAME: reason``.

    SIZE is 1 to :data:`MAX_SIZE_DIGITS` ASCII digits; anything else (``-1``,
    ``²``, 5,000 digits) raises UsageError. A size over ``--max-file-size`` or
    the sender's quota is refused by the relay with its reason.
    """
    raw_name, size_text = args
    size = parse_uint(size_text, max_digits=MAX_SIZE_DIGITS)
    if size is None:
        raise UsageError(f"{USAGE} (SIZE: the file's size in bytes)")
    name = safe_name(raw_name)
    try:
        ctx.start_transfer(raw_name, size)
    except Refused as exc:
        ctx.reply(f"ERROR sendfile {name}: {exc}")


def _answer(ctx: Context, args: list[str], accept: bool) -> None:
    verb = "accept" if accept else "decline"
    tid = parse_uint(args[0], max_digits=18)
    try:
        ctx.answer_offer(tid, accept)  # the relay replies OK accepted/declined itself
    except Refused as exc:
        ctx.reply(f"ERROR {verb} {'' if tid is None else tid}: {exc}".replace("  ", " "))


def accept(ctx: Context, args: list[str]) -> None:
    """``/accept ID``: take the file offered as ID (only acceptors get its bytes)."""
    _answer(ctx, args, True)


def decline(ctx: Context, args: list[str]) -> None:
    """``/decline ID``: refuse the file offered as ID."""
    _answer(ctx, args, False)


def files(ctx: Context, args: list[str]) -> None:
    """``/files ask|all|none``: how offers to this connection are answered; replies ``OK files POLICY``."""
    policy = args[0].lower()
    if policy not in POLICIES:
        raise UsageError("/files ask|all|none")
    try:
        ctx.set_file_policy(policy)
    except Refused as exc:
        raise CommandError(str(exc)) from None
    ctx.reply(f"OK files {policy}")


@hookimpl
def register_commands() -> list[Command]:
    return [
        Command("sendfile", sendfile, usage=USAGE, summary=SUMMARY, min_args=2, max_args=2),
        Command("accept", accept, usage="/accept ID", summary="Accept the file offered as ID", min_args=1, max_args=1),
        Command("decline", decline, usage="/decline ID", summary="Decline the file offered as ID",
                min_args=1, max_args=1),
        Command("files", files, usage="/files ask|all|none",
                summary="Files offered to you: ask each time (/accept or /decline), take all, or refuse all",
                min_args=1, max_args=1),
    ]
