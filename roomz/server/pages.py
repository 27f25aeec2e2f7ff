"""The human-facing pages: ``/`` (the chat page of :mod:`.chat_page`, which explains what
went wrong with a sign-in link), the page a sign-in link opens in a browser, and ``/healthz``
for load balancers.

The sign-in link's pages are plain server-rendered HTML with everything they show escaped,
no script, and headers that forbid anything else: no scripts, no styles but the server's
own stylesheet, no outside resources (CSP), no framing, no ``Referer`` to other sites (the
sign-in page's URL holds its token), and no caching.
"""

from __future__ import annotations

import html
from collections.abc import Callable

from aiohttp import hdrs, web

from .assets import assets
from .chat_page import chat_page
from .sessions import SessionError, Sessions, cookie_value
from .unavailable import StoreUnavailable

ERRORS = {
    "missing_token": ("The sign-in link has no token.",
                      "Copy the whole link from the mail, or request a new one."),
    "invalid_token": ("This sign-in link is unknown, expired or already used.",
                      "Links work once and expire after a few minutes: request a new one."),
    "too_many_codes": ("Too many wrong codes were entered for this sign-in link.",
                       "The link no longer works: request a new one."),
    "unavailable": ("The server could not check the link just now.",
                    "Try the same link again in a moment."),
    "unauthorized": ("This email is not allowed on this server.",
                     "Ask the server's operator to add it to ALLOWED_EMAILS."),
}

HOW_TO = """<h2>Signing in from the terminal</h2>
<ol>
<li>Run <code>roomz-cli --server {server}</code></li>
<li>Type <code>/login you@example.com</code></li>
<li>Open the link from the mail, on any device.</li>
<li>Enter the code your terminal shows.</li>
</ol>
<p>Or paste the token from the mail in the terminal: <code>/token TOKEN</code></p>"""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Roomz: {title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="{css}">
</head><body class="page"><h1>Roomz</h1>{body}</body></html>"""

#: Only the server's stylesheet may apply; forms post back to this server only.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # The link's URL holds its token: no other site may see it in a Referer. Not
    # "no-referrer": with that, browsers send "Origin: null" with the page's own forms.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

#: What a code looks like, shown beside the field (never the code itself).
CODE_EXAMPLE = "WDJB-MJHT"

SIGN_IN_HERE = """<p>This link signs in <b>{email}</b> to Roomz at <code>{server}</code>.</p>
<h2>This browser</h2>
<form method="post" action="/auth/verify">
<input type="hidden" name="token" value="{token}">
<input type="hidden" name="action" value="here">
<button type="submit">Sign in here</button>
</form>"""

SIGN_IN_TERMINAL = """<h2>Your terminal</h2>
<p>A Roomz terminal is waiting for this link.</p>
<p>It shows a code such as <code>{example}</code>.</p>
<p>Enter the code only if your own terminal shows it.</p>
<p>If you did not ask to sign in, close this page.</p>
{error}<form method="post" action="/auth/verify">
<input type="hidden" name="token" value="{token}">
<input type="hidden" name="action" value="terminal">
<label>Code <input name="code" required size="11" maxlength="32" autocomplete="one-time-code"
autocapitalize="characters" spellcheck="false" placeholder="{example}"></label>
<button type="submit">Sign the terminal in</button>
</form>"""

TOKEN_INSTEAD = """<h2>A terminal</h2>
<p>To sign in a Roomz terminal instead, type this in it:</p>
<p><code>/token {token}</code></p>"""


def page(title: str, body: str, status: int = 200) -> web.Response:
    """An HTML page with the strict headers above; ``title`` and ``body`` are already safe."""
    text = PAGE.format(title=html.escape(title), body=body, css=assets().url("roomz.css"))
    return web.Response(text=text, status=status,
                        content_type="text/html", headers=PAGE_HEADERS)


def sign_in_page(*, token: str, email: str, server: str, client_waiting: bool,
                 error: str | None = None, status: int = 200) -> web.Response:
    """The page a sign-in link opens in a browser: sign in here, or sign the waiting terminal
    in with its code. ``error`` (plain text) is shown above the code field."""
    values = {"token": html.escape(token), "email": html.escape(email),
              "server": html.escape(server), "example": CODE_EXAMPLE}
    body = SIGN_IN_HERE.format(**values)
    if client_waiting or error is not None:
        shown = f'<p class="bad">{html.escape(error)}</p>\n' if error is not None else ""
        body += SIGN_IN_TERMINAL.format(error=shown, **values)
    else:
        body += TOKEN_INSTEAD.format(**values)
    return page("sign in", body, status)


def terminal_signed_in_page(email: str, code: str) -> web.Response:
    """After the right code: the terminal that shows ``code`` is signed in."""
    return page("terminal signed in",
                f'<p class="ok">Your terminal is signed in as <b>{html.escape(email)}</b>.</p>'
                f"<p>It is the terminal that shows <code>{html.escape(code)}</code>.</p>"
                "<p>You can close this tab.</p>")


def refused_form_page(origin: str, server: str) -> web.Response:
    """A sign-in form that came from another site (or from none): refused, 403."""
    return page("sign-in refused",
                '<p class="bad">This sign-in form came from another website, '
                "so it was refused.</p>"
                f"<p>It came from <code>{html.escape(origin or 'nowhere')}</code>, "
                f"not from <code>{html.escape(server)}</code>.</p>"
                "<p>Open the link from the mail again.</p>", 403)


class Pages:
    """Renders ``/``: the chat page, signed in or not, after each outcome of a sign-in link;
    ``base_url`` is the server's own URL (the one sign-in links use), shown in the terminal
    instructions."""

    def __init__(self, sessions: Sessions, base_url: Callable[[], str]) -> None:
        self.sessions = sessions
        self.base_url = base_url

    def routes(self) -> list[web.RouteDef]:
        """The routes to add to the aiohttp application."""
        return [web.get("/", self.index), web.get("/healthz", self.healthz)]

    async def index(self, request: web.Request) -> web.Response:
        """The chat page: signed in, or the sign-in form, with what went wrong with a link
        and how to sign in from the terminal."""
        how_to = HOW_TO.format(server=html.escape(self.base_url()))
        error = request.query.get("error")
        if error is not None:
            return chat_page(email=None, how_to=how_to, error=ERRORS.get(
                error, ("Signing in failed.", "Request a new sign-in link.")))
        try:
            email = (await self.sessions.verify(
                cookie_value(request.headers.get(hdrs.COOKIE))))["email"]
        except (SessionError, StoreUnavailable):
            return chat_page(email=None, how_to=how_to)
        return chat_page(email=email)

    async def healthz(self, request: web.Request) -> web.Response:
        """``{"status": "ok"}`` while the process serves requests."""
        return web.json_response({"status": "ok"})
