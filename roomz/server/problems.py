"""RFC 7807 problem answers, in the shape the published Roomz server uses."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from .unavailable import StoreUnavailable

ERROR_TYPES = "https://roomz.local/errors/"


def problem(
    status: int, kind: str, title: str, detail: str, instance: str,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """A JSON problem answer; clients show ``detail`` to people."""
    body = {"type": ERROR_TYPES + kind, "title": title, "status": status,
            "detail": detail, "instance": instance}
    return web.json_response(body, status=status, headers=headers)


@web.middleware
async def problems_for_http_errors(request: web.Request,
                                   handler: Handler) -> web.StreamResponse:
    """Answer aiohttp's own errors under ``/auth/`` (404, 405, 413) as problem JSON too,
    and a shared store that is unreachable (several nodes) as 503."""
    try:
        return await handler(request)
    except StoreUnavailable:
        if request.path == "/auth/verify":  # a browser follows links: show it the page
            raise web.HTTPFound("/?error=unavailable") from None
        return problem(503, "unavailable", "Service Unavailable",
                       "The server cannot reach its shared state right now. Try again shortly.",
                       request.path, headers={"Retry-After": "5"})
    except web.HTTPException as exc:
        if not request.path.startswith("/auth/") or exc.status < 400:
            raise
        return problem(exc.status, "http", exc.reason, exc.text or exc.reason, request.path)
