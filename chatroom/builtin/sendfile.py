"""The built-in ``sendfile`` plugin: ``/sendfile NAME SIZE`` opens a file transfer.

This is the server side of a transfer's first step (``docs/protocol.md``,
"File transfer frames"): ``chatroom-client`` sends ``/sendfile "NAME" SIZE``
for a file in its ``send/`` folder, waits for ``OK sendfile ID NAME`` and then
streams ``file-data ID`` frames, which the server's relay
(:mod:`chatroom.net.relay`) forwards to every other frame-capable member of the
room. NAME in the reply is the sanitised name the room sees. A refusal is
``ERROR sendfile NAME: reason``; it happens before any byte moves (size over
``--max-file-size``, no receivers, a ``file_offered`` hookimpl said no...).

A person on ``nc`` who types ``/sendfile x`` gets the usage line; frames cannot
be typed, so files are sent with ``chatroom-client``.
"""

from __future__ import annotations

from chatroom import Command, Context, Refused, UsageError, hookimpl, parse_uint, safe_name

USAGE = "/sendfile NAME SIZE"
#: Most digits SIZE may have (the server's ``--max-file-size`` bounds the value).
MAX_SIZE_DIGITS = 19
SUMMARY = 'Offer a file of SIZE bytes to the room (in chatroom-client: /sendfile NAME, quoted if it has spaces)'


def sendfile(ctx: Context, args: list[str]) -> None:
    """Handle ``/sendfile NAME SIZE``: reply ``OK sendfile ID NAME`` or ``ERROR sendfile NAME: reason``.

    SIZE is 1 to :data:`MAX_SIZE_DIGITS` ASCII digits; anything else (``-1``,
    ``²``, 5,000 digits) raises UsageError. A size over ``--max-file-size`` is
    refused by the relay with its reason.
    """
    raw_name, size_text = args
    size = parse_uint(size_text, max_digits=MAX_SIZE_DIGITS)
    if size is None:
        raise UsageError(f"{USAGE} (SIZE: the file's size in bytes)")
    name = safe_name(raw_name)
    try:
        tid = ctx.start_transfer(raw_name, size)
    except Refused as exc:
        ctx.reply(f"ERROR sendfile {name}: {exc}")
        return
    ctx.reply(f"OK sendfile {tid} {name}")


@hookimpl
def register_commands() -> list[Command]:
    return [Command("sendfile", sendfile, usage=USAGE, summary=SUMMARY, min_args=2, max_args=2)]
