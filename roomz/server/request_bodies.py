"""Bounds on request bodies: how big they may be, and how long they may take to arrive.

Every body is waited for in full, within ``timeout`` seconds, before any handler runs, so
no handler is held by a client trickling bytes. (Engine.IO's long-polling handler reads
the body itself, from the stream, and so gets it whole too.) A body announced as larger
than ``max_bytes`` is answered 413 at once, a body too slow 408; either way the rest of
it is never read, and the connection closes after the answer (the runner lingers 0 s).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from aiohttp import web
from aiohttp.typedefs import Handler

from .quiet_log import QuietLog

log = logging.getLogger("roomz.server")

#: The largest request body: Engine.IO's own limit for a long-polling payload, and the
#: application's ``client_max_size``, so both ends agree.
MAX_BODY_BYTES = 1_000_000


def read_buffer_size(max_bytes: int = MAX_BODY_BYTES) -> int:
    """The runner's ``read_bufsize`` that lets a whole body of ``max_bytes`` be buffered:
    aiohttp stops reading a connection once its unread body passes twice this size."""
    return max_bytes // 2 + 1


class BodyLimits:
    """Refuses request bodies that are too big (413) or too slow to arrive (408)."""

    def __init__(self, max_bytes: int, timeout: float) -> None:
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.quiet = QuietLog(log)

    @web.middleware
    def middleware(self, request: web.Request, handler: Handler
                   ) -> Awaitable[web.StreamResponse]:
        """Wait for the whole body under the limits, then run ``handler``.

        A request without a body goes to ``handler`` as it is, not awaited here: a frame
        of this middleware would otherwise stay for a WebSocket's whole life.
        """
        if not request.body_exists:
            return handler(request)
        return self._whole_body_first(request, handler)

    async def _whole_body_first(self, request: web.Request,
                                handler: Handler) -> web.StreamResponse:
        length = request.content_length
        if length is not None and length > self.max_bytes:
            raise web.HTTPRequestEntityTooLarge(
                self.max_bytes, length,
                text=f"The request body is {length} bytes; at most {self.max_bytes} are "
                     "accepted.")
        try:
            await asyncio.wait_for(request.content.wait_eof(), self.timeout)
        except asyncio.TimeoutError:
            self.quiet.warning("slow-body", "closed a request from %s whose body took longer "
                               "than %g s", request.remote, self.timeout)
            raise web.HTTPRequestTimeout(
                text=f"The request body did not arrive within {self.timeout:g} seconds."
            ) from None
        except web.RequestPayloadError as exc:  # say, broken chunked encoding
            raise web.HTTPBadRequest(text=f"The request body is malformed: {exc}.") from None
        except ConnectionError:
            # The client went away mid-body: there is nobody to answer.
            return web.Response(status=400)
        return await handler(request)
