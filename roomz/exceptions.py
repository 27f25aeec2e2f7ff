"""Exceptions raised by the Roomz client.

The tree::

    ClientError                  anything the client raises on purpose
    ├── ConnectionError          the server could not be reached, did not answer in time,
    │   │                        refused a request (``login``), or the client is not connected
    │   └── ConnectionStoppedError   a connect() ended by disconnect()
    ├── AuthenticationError      the server was reached but would not sign this client in
    │   ├── NotSignedInError     no session to connect with: login() first
    │   ├── SignInFailedError    the token was not taken, or a sign-in by link ended
    │   ├── SessionRefusedError  the server refused the session at connect
    │   └── SessionCacheError    the session cache file is corrupt
    └── NotSupportedError        the server lacks an extension asked for (questions, who)

The subclasses are additions to the documented three, so that a program (the terminal is
one) can tell the cases apart without reading messages.

``roomz.ConnectionError`` is not the built-in of the same name: import it from
``roomz`` (or catch ``roomz.ClientError``).
"""

from __future__ import annotations


class ClientError(Exception):
    """Base exception for client errors.

    ``detail`` is the server's explanation when it gave one (show it to people);
    ``status`` is the HTTP status or protocol code behind the error, when known.
    """

    def __init__(self, message: str, *, detail: str | None = None,
                 status: int | None = None) -> None:
        super().__init__(message)
        self.detail = detail
        self.status = status


class ConnectionError(ClientError):  # noqa: A001 - the documented name
    """Connection-related errors."""


class AuthenticationError(ClientError):
    """Authentication-related errors."""


class NotSupportedError(ClientError):
    """The server does not support what was asked of it: an extension of our server's
    (questions, ``who``) that another server, such as the published 0.4.0, lacks."""


class ConnectionStoppedError(ConnectionError):
    """``connect()`` (with ``retry=True`` or not) ended because ``disconnect()`` was
    called meanwhile."""


class NotSignedInError(AuthenticationError):
    """There is no session to connect with: ``login(email)``, then ``connect()`` with the
    token from the mail."""


class SignInFailedError(AuthenticationError):
    """The server did not take the token (unknown, expired or used, or the email is not
    allowed), or a sign-in by link ended without a session; ``detail`` says which."""


class SessionRefusedError(AuthenticationError):
    """The server was reached and refused the session at connect (ended, expired, server
    full, too many connections); ``detail`` is its reason."""


class SessionCacheError(AuthenticationError):
    """The session cache file cannot be read, is not a Roomz session file, or may not be
    used safely (see :mod:`roomz.session_cache`)."""
