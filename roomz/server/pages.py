"""The small human-facing pages: ``/`` after a sign-in link, and ``/healthz`` for load balancers."""

from __future__ import annotations

import html
from collections.abc import Callable

from aiohttp import web

from .sessions import COOKIE_NAME, SessionError, Sessions
from .unavailable import StoreUnavailable

ERRORS = {
    "missing_token": ("The sign-in link has no token.",
                      "Copy the whole link from the mail, or request a new one."),
    "invalid_token": ("This sign-in link is unknown, expired or already used.",
                      "Links work once and expire after a few minutes: request a new one."),
    "unavailable": ("The server could not check the link just now.",
                    "Try the same link again in a moment."),
    "unauthorized": ("This email is not allowed on this server.",
                     "Ask the server's operator to add it to ALLOWED_EMAILS."),
}

HOW_TO = """<h2>Signing in from the terminal</h2>
<ol>
<li>Run <code>roomz-cli --server {server}</code></li>
<li>Type <code>/login you@example.com</code></li>
<li>Paste the token from the mail: <code>/token TOKEN</code></li>
</ol>"""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Roomz: {title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:38em;margin:3em auto;padding:0 1em}}
code{{background:#f2f2f2;padding:0 .25em}} .bad{{color:#a40000}} .ok{{color:#006400}}</style>
</head><body><h1>Roomz</h1>{body}</body></html>"""


class Pages:
    """Renders ``/`` for each outcome of a sign-in link; ``base_url`` is the server's own URL
    (the one sign-in links use), shown in the terminal instructions."""

    def __init__(self, sessions: Sessions, base_url: Callable[[], str]) -> None:
        self.sessions = sessions
        self.base_url = base_url

    def routes(self) -> list[web.RouteDef]:
        """The routes to add to the aiohttp application."""
        return [web.get("/", self.index), web.get("/healthz", self.healthz)]

    async def index(self, request: web.Request) -> web.Response:
        """Signed in, or what went wrong, and how to sign in from the terminal."""
        server = html.escape(self.base_url())
        error = request.query.get("error")
        if error is not None:
            what, fix = ERRORS.get(error, ("Signing in failed.", "Request a new sign-in link."))
            title = "sign-in failed"
            body = f'<p class="bad">{what}</p><p>{fix}</p>'
        else:
            try:
                email = (await self.sessions.verify(request.cookies.get(COOKIE_NAME)))["email"]
                title = "signed in"
                body = (f'<p class="ok">Signed in as <b>{html.escape(email)}</b>.</p>'
                        "<p>You can close this tab and chat from the Roomz terminal.</p>")
            except (SessionError, StoreUnavailable):
                title, body = "welcome", "<p>You are not signed in.</p>"
        body += HOW_TO.format(server=server)
        return web.Response(text=PAGE.format(title=title, body=body), content_type="text/html")

    async def healthz(self, request: web.Request) -> web.Response:
        """``{"status": "ok"}`` while the process serves requests."""
        return web.json_response({"status": "ok"})
