"""What the terminal says when something goes wrong: one line, in its own words.

The client library words its errors for programmers ("call login(email), then connect()
with the token from the mail"). The terminal translates them here, at its edge, into
what a person at the prompt can do (``/login``, ``/token``, ``/reconnect``), naming what
was wrong. Nothing here changes what the library raises.
"""

from __future__ import annotations

import errno
import os

from roomz import (
    AuthenticationError,
    ClientError,
    ConnectionStoppedError,
    NotSignedInError,
    SessionCacheError,
    SessionRefusedError,
    SignInFailedError,
)

#: What to type to sign in, in every sentence that asks for it.
LOGIN = "/login you@example.com"
SIGN_IN_HELP = (f"Not signed in: {LOGIN} mails you a link; open it, or paste its token: "
                "/token TOKEN")
_ENDED = "session ended: "
#: The server's sentence for a sign-in that is over, and ours.
_NEW_LINK = "Request a new link"


def reason(exc: BaseException) -> str:
    """Why the server could not be reached, in a few words: "connection refused", "Name or
    service not known", "timed out"; "" when nothing more precise than that is known."""
    cause: BaseException | None = exc
    while cause is not None:
        os_error = getattr(cause, "os_error", None)  # aiohttp's ClientConnectorError
        if isinstance(os_error, OSError):
            cause = os_error
        if isinstance(cause, OSError):
            if cause.errno is not None and cause.errno in errno.errorcode:
                return os.strerror(cause.errno).lower()  # "connection refused"
            if cause.strerror:
                return str(cause.strerror)  # "Name or service not known"
            if isinstance(cause, TimeoutError):
                return "timed out"
        cause = cause.__cause__
    text = str(exc)
    if "within" in text and "no answer" in text:
        return "no answer in time"
    return ""


def unreachable(server_url: str, exc: BaseException) -> str:
    """"Cannot reach URL (connection refused)"."""
    why = reason(exc)
    return f"Cannot reach {server_url}" + (f" ({why})" if why else "")


def after_colon(sentence: str) -> str:
    """``sentence`` to follow "Sign-in failed: ": its first letter in lower case."""
    return sentence[:1].lower() + sentence[1:]


def is_no_session(exc: ClientError) -> bool:
    """True when ``connect()`` failed because there is no session to connect with."""
    return isinstance(exc, NotSignedInError)


def is_refusal(exc: ClientError) -> bool:
    """True when the server was reached and refused the session (not the token, not the
    session cache)."""
    return isinstance(exc, SessionRefusedError)


def is_stopped(exc: ClientError) -> bool:
    """True when ``connect(retry=True)`` ended because the connection was closed on purpose."""
    return isinstance(exc, ConnectionStoppedError)


def refused(server_url: str, why: str) -> str:
    """The server refused our session: say why, and how to sign in again."""
    why = why.removesuffix("; sign in again").strip() or "no reason given"
    return f"{server_url} refused your session ({why}). Sign in again: {LOGIN}"


def connect_failed(server_url: str, exc: ClientError) -> str:
    """Why connecting (with the cached session or a token) failed, and what to do."""
    if is_no_session(exc):
        return SIGN_IN_HELP
    if is_refusal(exc):
        return refused(server_url, exc.detail or str(exc))
    text = str(exc)
    if isinstance(exc, SignInFailedError):  # redeeming the token
        return token_refused(server_url, exc.detail or text)
    if isinstance(exc, SessionCacheError):
        return session_cache(text)
    if isinstance(exc, AuthenticationError) or exc.status == 502:
        return _sentence(text)
    return unreachable(server_url, exc)


def token_refused(server_url: str, why: str) -> str:
    """A ``/token`` the server would not take."""
    if "unknown, expired or already used" in why:
        return (f"The token is unknown, expired or already used. Check it, or {LOGIN} "
                "for a new link.")
    if "not allowed" in why:
        return f"This email is not allowed on {server_url}: ask its operator."
    return _sentence(f"{server_url} did not take the token: {why.split('; ')[0]}")


def session_cache(text: str) -> str:
    """The session cache cannot be used: the library's sentence, with the terminal's fix."""
    return text.replace("; delete it and log in again", f": delete it, then {LOGIN}")


def login_failed(server_url: str, exc: ClientError) -> str:
    """``/login`` failed: the server's own sentence, or why it could not be reached."""
    if exc.status is not None and exc.detail:
        return f"Login failed: {exc.detail}"
    return f"Login failed: {after_colon(unreachable(server_url, exc))}. Is the server running?"


def sign_in_ended(exc: ClientError, email: str | None) -> str:
    """The wait for the link to be confirmed ended without a sign-in (expired, used, refused)."""
    detail = exc.detail or str(exc).removeprefix("sign-in failed: ")
    fix = f"Type /login {email or 'you@example.com'} for a new link"
    detail = detail.replace(_NEW_LINK, fix) if _NEW_LINK in detail else f"{detail}. {fix}."
    return _sentence(f"Sign-in by link ended: {detail}")


def error_event(server_url: str, data: dict[str, object]) -> str:
    """The client's ``error`` event (the connection is over) in the terminal's words."""
    code, error = data.get("code"), str(data.get("error") or "")
    if code == 401:
        if error.startswith(_ENDED):
            why = error.removeprefix(_ENDED).removesuffix("; sign in again")
            return f"{server_url} ended your session ({why}). Sign in again: {LOGIN}"
        return refused(server_url, error.removeprefix("the server refused the session: "))
    if code == 503:
        return f"Stopped reconnecting to {server_url}: /reconnect tries again."
    return _sentence(f"{error.removesuffix('; disconnected')}: disconnected. "
                     "/reconnect tries again.")


def _sentence(text: str) -> str:
    """``text`` as a sentence: capitalised, one line, ending with a full stop."""
    text = " ".join(text.split())
    if not text:
        return text
    if not text.startswith(("http://", "https://")):  # a URL stays as it is
        text = text[0].upper() + text[1:]
    return text if text.endswith((".", "?", "!")) else text + "."
