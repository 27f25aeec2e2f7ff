"""Roomz: a plugin-extensible chat bot framework.

This package is the client library::

    from roomz import AsyncClient, SyncClient
    from roomz import ClientError, ConnectionError, AuthenticationError
    from roomz import ConnectionState

The clients are imported on first use, so ``import roomz`` stays fast; the reference
server is :mod:`roomz.server` and is only imported when asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .exceptions import (
    AuthenticationError,
    ClientError,
    ConnectionError,
    ConnectionStoppedError,
    NotSignedInError,
    NotSupportedError,
    SessionCacheError,
    SessionRefusedError,
    SignInFailedError,
)
from .state import ConnectionState

if TYPE_CHECKING:
    from .async_client import AsyncClient
    from .sync_client import SyncClient

__all__ = [
    "AsyncClient",
    "AuthenticationError",
    "ClientError",
    "ConnectionError",
    "ConnectionState",
    "ConnectionStoppedError",
    "NotSignedInError",
    "NotSupportedError",
    "SessionCacheError",
    "SessionRefusedError",
    "SignInFailedError",
    "SyncClient",
]

__version__ = "0.5.0.dev0"


def __getattr__(name: str) -> Any:
    # socketio and aiohttp cost most of a second's tenth to import: only when a client is used.
    if name == "AsyncClient":
        from .async_client import AsyncClient
        return AsyncClient
    if name == "SyncClient":
        from .sync_client import SyncClient
        return SyncClient
    raise AttributeError(f"module 'roomz' has no attribute {name!r}")
