"""Roomz: a plugin-extensible chat bot framework.

The client library (``AsyncClient``, ``SyncClient``) lives here; the reference
server is :mod:`roomz.server` and is only imported when asked for.
"""

__version__ = "0.5.0.dev0"
