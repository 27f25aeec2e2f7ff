"""Exceptions raised by the Roomz client.

The tree::

    ClientError                  anything the client raises on purpose
    ├── ConnectionError          the server could not be reached, did not answer in time,
    │                            refused a request (``login``), or the client is not connected
    ├── AuthenticationError      the server was reached but would not sign this client in
    └── NotSupportedError        the server lacks an extension asked for (questions, who)

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
