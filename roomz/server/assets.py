"""The chat page's files (``static/``), served under URLs that name their content.

Each file is read once, when the server starts, and served at ``/static/HASH/NAME``, where
HASH is the start of its SHA-256: a new release changes the URL, so browsers may keep a
file for a year without asking again, and never mix an old script with a new page.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from importlib import resources

from aiohttp import web

#: The files under ``static/`` that are served, with their content types.
SERVED = {
    "chat.js": "text/javascript",
    "rich.js": "text/javascript",
    "roomz.css": "text/css",
    "vendor/socket.io.min.js": "text/javascript",
    "vendor/markdown-it.min.js": "text/javascript",
    "vendor/purify.min.js": "text/javascript",
    "vendor/highlight.min.js": "text/javascript",
}
#: Hex digits of the SHA-256 in a URL: enough that two versions never share one.
HASH_LENGTH = 12
#: A versioned URL's content never changes: cache it for a year, without revalidating.
CACHED_FOR_GOOD = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class Asset:
    """One served file: its bytes, content type and versioned URL."""

    name: str
    body: bytes
    content_type: str
    digest: str  # the first HASH_LENGTH hex digits of its SHA-256

    @property
    def url(self) -> str:
        """The path the page links to: ``/static/HASH/NAME``."""
        return f"/static/{self.digest}/{self.name}"


@functools.cache
def assets() -> Assets:
    """The served files, read once per process."""
    return Assets()


class Assets:
    """The files of :data:`SERVED`, read now; :meth:`url` for pages, :meth:`routes` to serve."""

    def __init__(self) -> None:
        folder = resources.files(__package__).joinpath("static")
        self.files: dict[str, Asset] = {}
        for name, content_type in SERVED.items():
            body = folder.joinpath(name).read_bytes()
            digest = hashlib.sha256(body).hexdigest()[:HASH_LENGTH]
            self.files[name] = Asset(name, body, content_type, digest)

    def url(self, name: str) -> str:
        """The versioned URL of the served file ``name`` (a key of :data:`SERVED`)."""
        return self.files[name].url

    def routes(self) -> list[web.RouteDef]:
        """The route to add to the aiohttp application."""
        return [web.get("/static/{digest}/{name:.+}", self.serve)]

    async def serve(self, request: web.Request) -> web.Response:
        """The file at its current URL; 404 for any other name or an outdated hash."""
        asset = self.files.get(request.match_info["name"])
        if asset is None or request.match_info["digest"] != asset.digest:
            raise web.HTTPNotFound(text="No such file in this version of the Roomz page.")
        return web.Response(body=asset.body, content_type=asset.content_type, charset="utf-8",
                            headers={"Cache-Control": CACHED_FOR_GOOD,
                                     "X-Content-Type-Options": "nosniff"})
