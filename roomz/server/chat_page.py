"""The chat page at ``/``: the markup of its two views, signed out and signed in.

The server renders which view shows, and everything in it is escaped; ``static/chat.js``
does the rest (sending the link, waiting for it, chatting over Socket.IO) and writes what
people send with ``textContent`` only; ``static/rich.js`` draws rich messages, Markdown
through the vendored markdown-it (raw HTML off) and DOMPurify. The headers allow the page's
own scripts, styles and connections, and nothing else: no inline script, no other site, no
framing.
"""

from __future__ import annotations

import html

from aiohttp import web

from .assets import assets

#: Scripts, styles and connections (Socket.IO's polling and WebSocket) from this server only.
CHAT_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "connect-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # not no-referrer: Origin: null would refuse our POSTs
    "Cache-Control": "no-store",  # whether one is signed in: never from a cache
}

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Roomz</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="{css}">
<script src="{socketio}" defer></script>
<script src="{markdown}" defer></script>
<script src="{purify}" defer></script>
<script src="{highlight}" defer></script>
<script src="{rich}" defer></script>
<script src="{js}" defer></script>
</head><body class="chat-page" data-view="{view}">
<header class="bar"><h1>Roomz</h1>
<p id="status" class="status" role="status" aria-live="polite">{status}</p>
{menu}</header>
{main}
</body></html>"""

SIGNED_OUT = """<main id="sign-in" class="sign-in">
{error}<p>You are not signed in.</p>
<form id="sign-in-form" novalidate>
<label for="email">Email</label>
<div class="row"><input id="email" name="email" type="email" required autocomplete="email"
autocapitalize="none" spellcheck="false" placeholder="you@example.com">
<button type="submit">Send sign-in link</button></div>
</form>
<div id="sign-in-said" class="said" role="status" aria-live="polite"></div>
<noscript><p class="bad">Chatting here needs JavaScript. You can chat from the terminal
instead.</p></noscript>
<details><summary>Chat from a terminal instead</summary>
{how_to}</details>
</main>"""

MENU = """<details id="menu" class="menu"><summary><span class="sr-only">Account menu:</span>
<span id="me">{email}</span></summary>
<div class="menu-body">
<p>Signed in as <b>{email}</b> in this browser.</p>
<form id="name-form">
<label for="name">Display name of this tab</label>
<input id="name" autocomplete="nickname" autocapitalize="words" placeholder="Alice">
<div class="row"><button type="submit">Set name</button>
<button type="button" id="clear-name">Clear name</button></div>
</form>
<p id="name-said" class="said" role="status"></p>
<button type="button" id="sign-out">Sign out</button>
</div></details>"""

SIGNED_IN = """<main id="chat" class="chat">
<details id="who" class="connections"><summary>Connections</summary>
<ul id="who-list" aria-label="Your connections"></ul></details>
<ol id="messages" class="messages" role="log" aria-label="Messages" aria-live="polite"
tabindex="0"></ol>
<button type="button" id="more" class="more" hidden>New messages below</button>
<form id="compose" class="compose">
<label for="text" class="sr-only">Message</label>
<textarea id="text" rows="2" enterkeyhint="send" aria-describedby="keys compose-said"
placeholder="Message"></textarea>
<button type="submit">Send</button>
<p id="keys" class="keys">Enter sends, Shift+Enter starts a new line.</p>
<p id="compose-said" class="said bad" role="alert"></p>
</form>
</main>"""


def chat_page(*, email: str | None, error: tuple[str, str] | None = None,
              how_to: str = "") -> web.Response:
    """``/``: chatting as ``email``; or, with no email, the sign-in form, with ``error``
    (what went wrong, and the fix: plain text) above it and ``how_to`` (markup) below."""
    files = assets()
    if email is None:
        shown = "" if error is None else (f'<p class="bad">{html.escape(error[0])}</p>'
                                          f"<p>{html.escape(error[1])}</p>\n")
        view, status, menu = "signed-out", "", ""
        main = SIGNED_OUT.format(error=shown, how_to=how_to)
    else:
        view, status, main = "chat", "Connecting…", SIGNED_IN
        menu = MENU.format(email=html.escape(email))
    body = PAGE.format(css=files.url("roomz.css"), js=files.url("chat.js"),
                       socketio=files.url("vendor/socket.io.min.js"),
                       markdown=files.url("vendor/markdown-it.min.js"),
                       purify=files.url("vendor/purify.min.js"),
                       highlight=files.url("vendor/highlight.min.js"), rich=files.url("rich.js"),
                       view=view,
                       status=status, menu=menu, main=main)
    return web.Response(text=body, content_type="text/html", headers=CHAT_PAGE_HEADERS)
