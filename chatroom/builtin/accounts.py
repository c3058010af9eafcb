"""Accounts: ``/register``, ``/login``, ``/password``.

::

    /register PASSWORD       register your current nick (not a guestN nick); you are logged in
    /login NICK PASSWORD     log in to the account NICK and take that nick
    /password OLD NEW        change your password (logged in only)

A registered nick can only be taken by logging in to it: ``/nick alice`` by
anyone else is ``ERROR alice is registered; /login alice PASSWORD`` (the
room model refuses it). Logging in takes the nick from whoever holds it (they
become ``guestN`` again, with a notice). A password is 8 to 256 characters
without spaces; it is stored only as a salted scrypt hash
(:func:`chatroom.hash_password`), computed on a worker thread
(``ctx.run_in_thread``, about 50 ms each), then written by the account store's
writer thread: the ``OK`` of ``/register`` and ``/password`` comes once the
change is committed (docs/protocol.md, "Durability"). Each connection has at most one password check running, and the server at
most :data:`MAX_PENDING`.

Failed logins are rate-limited per account and per address with exponential
backoff (:class:`Backoff`): after :data:`ACCOUNT_FREE` failures for one account
(:data:`ADDRESS_FREE` from one address) every further attempt waits 2, 4,
8 ... up to 300 s after the last failure, answered ``ERROR too many failed
logins; try again in N s``; a success clears the account's count. A wrong
old password in ``/password`` counts against the account too. Passwords
never reach the log: it says ``/login alice *** from ADDR: ok``.

Written against the public plugin API only, like any third-party plugin.
"""

from __future__ import annotations

import math
import re
import sqlite3
from typing import Any

from chatroom import (
    Command,
    CommandError,
    Context,
    Refused,
    UsageError,
    check_password,
    hash_password,
    hookimpl,
    verify_password,
)

REGISTER_USAGE = "/register PASSWORD"
LOGIN_USAGE = "/login NICK PASSWORD"
PASSWORD_USAGE = "/password OLD NEW"
#: Failures allowed without waiting, per account and per address.
ACCOUNT_FREE = 5
ADDRESS_FREE = 10
#: First wait after the free failures, and the longest, in seconds.
BASE_WAIT = 2.0
MAX_WAIT = 300.0
#: A key's failures are forgotten this long after its last failure (seconds).
FORGET = 3600.0
#: Keys one limiter remembers at most (oldest forgotten first).
MAX_KEYS = 100_000
#: Password checks running or queued at once, server-wide.
MAX_PENDING = 32
_GUEST = re.compile(r"guest\d+", re.IGNORECASE)
CONN = {"category": "CONNECTION"}
ERR = {"category": "ERROR"}


class Backoff:
    """Exponential backoff of failed attempts per key (an account, an address).

    :meth:`charge` records an attempt as failed *before* it is checked (so
    attempts running at once count), :meth:`refund` takes one back when it
    succeeded, :meth:`clear` forgets a key. After *free* failures, the next
    attempt waits ``min(base * 2 ** (failures - free), cap)`` seconds after
    the last failure. Times are the caller's clock, in seconds. Memory:
    at most :data:`MAX_KEYS` keys; a key is dropped *forget* seconds after
    its last failure.
    """

    def __init__(self, free: int, *, base: float = BASE_WAIT, cap: float = MAX_WAIT, forget: float = FORGET) -> None:
        self.free, self.base, self.cap, self.forget = free, base, cap, forget
        self.keys: dict[str, tuple[int, float]] = {}  # key -> (failures, time of the last one), oldest first

    def wait(self, key: str, now: float) -> float:
        """Seconds *key* must still wait before its next attempt (0.0: it may try now)."""
        failures, last = self.keys.get(key, (0, 0.0))
        if failures < self.free or now - last >= self.forget:
            return 0.0
        return max(0.0, last + min(self.base * 2.0 ** (failures - self.free), self.cap) - now)

    def charge(self, key: str, now: float) -> None:
        """Count one failed attempt for *key* at *now*."""
        failures, last = self.keys.pop(key, (0, 0.0))
        if now - last >= self.forget:
            failures = 0
        self.keys[key] = (failures + 1, now)
        while len(self.keys) > MAX_KEYS:
            del self.keys[next(iter(self.keys))]

    def refund(self, key: str) -> None:
        """Take back one charged attempt of *key* (it succeeded)."""
        failures, last = self.keys.get(key, (0, 0.0))
        if failures <= 1:
            self.keys.pop(key, None)
        else:
            self.keys[key] = (failures - 1, last)

    def clear(self, key: str) -> None:
        """Forget *key*'s failures."""
        self.keys.pop(key, None)


def _limits(ctx: Context) -> tuple[Backoff, Backoff]:
    state = ctx.state
    if "accounts" not in state:
        state["accounts"] = Backoff(ACCOUNT_FREE)
        state["addresses"] = Backoff(ADDRESS_FREE)
    return state["accounts"], state["addresses"]


def _address(ctx: Context) -> str:
    addr = getattr(ctx.client, "addr", None)
    return str(addr[0]) if isinstance(addr, tuple) and addr else "?"


def _keys(ctx: Context, account: str) -> list[tuple[Backoff, str]]:
    by_account, by_address = _limits(ctx)
    return [(by_account, account.casefold()), (by_address, _address(ctx))]


def _throttle(ctx: Context, account: str) -> None:
    """Refuse (CommandError) while *account* or the caller's address must wait; else charge both."""
    now = ctx.monotonic()
    keys = _keys(ctx, account)
    wait = max(limiter.wait(key, now) for limiter, key in keys)
    if wait > 0:
        ctx.log.warning("/login %s *** from %s: refused, %.0f s to wait", account, _address(ctx), wait, extra=ERR)
        raise CommandError(f"too many failed logins; try again in {math.ceil(wait)} s")
    for limiter, key in keys:
        limiter.charge(key, now)


def _succeeded(ctx: Context, account: str) -> None:
    (by_account, account_key), (by_address, address_key) = _keys(ctx, account)
    by_account.clear(account_key)
    by_address.refund(address_key)


def _start(ctx: Context, fn: Any, done: Any) -> None:
    """Run the slow *fn* on a worker thread, one per connection and :data:`MAX_PENDING` in all,
    then ``done(result, error)`` on the loop unless the caller left meanwhile."""
    pending: set[int] = ctx.state.setdefault("pending", set())
    assert ctx.client is not None
    me = ctx.client.id
    if me in pending:
        raise CommandError("a password check of yours is running; wait for its answer")
    if len(pending) >= MAX_PENDING:
        raise CommandError("the server is busy checking passwords; try again in a few seconds")
    pending.add(me)

    def finished(result: Any, error: BaseException | None) -> None:
        pending.discard(me)
        if ctx.client is None or ctx.client.gone:
            return
        if error is not None:
            ctx.log.error("password check for %s failed: %r", ctx.nick, error)
            ctx.reply("ERROR internal error while checking the password")
            return
        try:
            done(result)
        except Refused as exc:  # the caller's error, not a plugin fault (faults here would disable the plugin)
            ctx.reply(f"ERROR {exc}")
        except sqlite3.Error as exc:
            ctx.log.error("account store error for %s: %s", ctx.nick, exc)
            ctx.reply(f"ERROR account store error: {exc}")

    ctx.run_in_thread(fn, finished)


def _answered(ctx: Context, error: BaseException | None) -> bool:
    """A write to the account store came back: False (and the caller told why, if still here) if it failed."""
    if ctx.client is None or ctx.client.gone:
        return False
    if isinstance(error, Refused):  # registered meanwhile
        ctx.reply(f"ERROR {error}")
    elif error is not None:
        ctx.log.error("account store error for %s: %s", ctx.nick, error)
        ctx.reply(f"ERROR account store error: {error}")
    return error is None


def _words(ctx: Context, count: int, usage: str) -> list[str]:
    words = ctx.text.split()
    if len(words) != count:
        raise UsageError(usage)
    return words


def _valid(password: str) -> str:
    reason = check_password(password)
    if reason is not None:
        raise CommandError(reason)
    return password


# -- commands --------------------------------------------------------------------


def cmd_register(ctx: Context, args: list[str]) -> None:
    """``/register PASSWORD``: register the caller's nick and log it in."""
    (password,) = _words(ctx, 1, REGISTER_USAGE)
    nick = ctx.nick
    if ctx.account is not None:
        raise CommandError(f"you are logged in as {ctx.account} already")
    if _GUEST.fullmatch(nick):
        raise CommandError("choose your nick first: /nick NAME, then /register PASSWORD")
    _valid(password)
    owner = ctx.accounts.registered(nick)
    if owner is not None:
        raise CommandError(f"{nick} is registered already" if owner.casefold() == nick.casefold()
                           else f"{nick} is too much like the registered nick {owner}")

    def done(password_hash: str) -> None:
        if ctx.nick != nick:
            ctx.reply(f"ERROR your nick changed while registering {nick}; nothing was registered")
            return
        ctx.accounts.create(nick, password_hash, on_done=created, owner=ctx.plugin)  # OK once committed

    def created(account: Any, error: BaseException | None) -> None:
        if not _answered(ctx, error):
            return
        ctx.log.info("%s registered from %s", nick, _address(ctx), extra=CONN)
        if ctx.nick != nick:  # renamed while it was being saved: registered, not logged in
            ctx.reply(f"OK registered {nick}; log in with /login {nick} PASSWORD")
            return
        ctx.login(nick)
        ctx.reply(f"OK registered {nick}; you are logged in")

    _start(ctx, lambda: hash_password(password), done)


def cmd_login(ctx: Context, args: list[str]) -> None:
    """``/login NICK PASSWORD``: check the password off the loop, then log in and take the nick."""
    name, password = _words(ctx, 2, LOGIN_USAGE)
    _throttle(ctx, name)
    account = ctx.accounts.get(name)
    if account is None:
        ctx.log.warning("/login %s *** from %s: no such account", name, _address(ctx), extra=ERR)
        raise CommandError(f"no account {name}")

    def done(ok: bool) -> None:
        if not ok:
            ctx.log.warning("/login %s *** from %s: wrong password", account.name, _address(ctx), extra=ERR)
            ctx.reply(f"ERROR wrong password for {account.name}")
            return
        _succeeded(ctx, account.name)
        ctx.login(account.name)
        ctx.log.info("/login %s *** from %s: ok", account.name, _address(ctx), extra=CONN)
        ctx.reply(f"OK logged in as {account.name}")

    _start(ctx, lambda: verify_password(password, account.password_hash), done)


def cmd_password(ctx: Context, args: list[str]) -> None:
    """``/password OLD NEW``: change the logged-in caller's password."""
    old, new = _words(ctx, 2, PASSWORD_USAGE)
    name = ctx.account
    if name is None:
        raise CommandError("log in first: /login NICK PASSWORD")
    _valid(new)
    _throttle(ctx, name)
    account = ctx.accounts.get(name)
    if account is None:
        raise CommandError(f"no account {name}")

    def check_and_hash() -> str | None:
        return hash_password(new) if verify_password(old, account.password_hash) else None

    def done(password_hash: str | None) -> None:
        if password_hash is None:
            ctx.log.warning("/password %s *** ***: wrong old password", name, extra=ERR)
            ctx.reply("ERROR wrong password; the password was not changed")
            return
        _succeeded(ctx, name)
        ctx.accounts.set_password(name, password_hash, on_done=changed, owner=ctx.plugin)  # OK once committed

    def changed(found: Any, error: BaseException | None) -> None:
        if _answered(ctx, error):
            ctx.log.info("/password %s *** ***: changed", name, extra=CONN)
            ctx.reply("OK password changed")

    _start(ctx, check_and_hash, done)


@hookimpl
def register_commands() -> list[Command]:
    return [
        Command("register", cmd_register, usage=REGISTER_USAGE,
                summary="Register your nick with a password (8-256 characters, no spaces)", raw=True, cost=5.0),
        Command("login", cmd_login, usage=LOGIN_USAGE, summary="Log in to your account and take its nick",
                raw=True, cost=5.0, aliases=("identify",)),
        Command("password", cmd_password, usage=PASSWORD_USAGE, summary="Change your password",
                raw=True, cost=5.0),
    ]
