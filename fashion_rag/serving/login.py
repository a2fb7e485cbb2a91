"""The optional login, throttled per client address, so that a guesser locks out only themselves.

Gradio hands `auth` a user name and a password but not who sent them; the LoginAddress middleware,
which sees every request to the login route, passes the client's address along in a context
variable. A global ceiling stays: past `everyone` wrong passwords a window, an address with any
wrong one is refused, so a guesser needs a new address per guess; an address that has not guessed
wrong is still checked, and the owner's right password from it works.
"""
from __future__ import annotations

import asyncio
import logging
import secrets
from contextvars import ContextVar

from fastapi import HTTPException

from fashion_rag import settings
from fashion_rag.serving.limits import RateLimit, client_address

log = logging.getLogger(__name__)

LOGIN_ADDRESS: ContextVar[str] = ContextVar("login_address", default="unknown")
WRONG_PAUSE = 0.5  # s a wrong password waits: slows a guesser without holding up the server


class LoginThrottle:
    """A user and password, and the `owner`'s if given, for Gradio's `auth`: pass `check` (Gradio
    awaits only coroutine functions; an un-awaited coroutine would count as a yes) and install
    `LoginAddress`. After `failures` wrong passwords from an address within `lockout` seconds, its
    attempts are refused with HTTP 429 until the oldest is that old; past `everyone` from all
    addresses, so are those of any address with a wrong one in that time."""

    def __init__(self, user: str, password: str, failures: int | None = None, lockout: float | None = None,
                 everyone: int | None = None, owner: tuple[str, str] | None = None):
        self.accounts = [(user, password)] + ([owner] if owner else [])
        self.wrong = RateLimit(failures or settings.LOGIN_FAILURES, everyone or settings.LOGIN_FAILURES_ALL,
                               lockout or settings.LOGIN_LOCKOUT)

    async def check(self, user: str, password: str) -> bool:
        address = LOGIN_ADDRESS.get()
        mine, everyone, wait = self.wrong.counts(address)
        if mine >= self.wrong.per_key or (mine and everyone >= self.wrong.everyone):
            raise HTTPException(status_code=429, detail=f"Too many wrong passwords from your address: try "
                                                        f"again in {max(1, round(wait))} s.")
        ok = any([secrets.compare_digest(user.encode(), name.encode()) &  # every account checked: no timing hint
                  secrets.compare_digest(password.encode(), secret.encode()) for name, secret in self.accounts])
        if not ok:
            self.wrong.add(address)  # counted before the pause, so parallel guesses count too
            log.warning("Wrong login from %s (%d from there, %d in all in the last %.0f s).", address,
                        mine + 1, everyone + 1, self.wrong.window)
            await asyncio.sleep(WRONG_PAUSE)
        return bool(ok)


class LoginAddress:
    """ASGI middleware: the client's address, for LoginThrottle.check, on the login route."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or not scope["path"].rstrip("/").endswith("/login"):
            return await self.app(scope, receive, send)
        token = LOGIN_ADDRESS.set(client_address(scope))
        try:
            await self.app(scope, receive, send)
        finally:
            LOGIN_ADDRESS.reset(token)
