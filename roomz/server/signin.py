"""Sign-in over HTTP: request a magic link, redeem it for a session cookie, who am I, log out;
and the extension that lets a waiting client be signed in by confirming the link in a browser.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime, timezone
from typing import Any

from aiohttp import hdrs, web
from yarl import URL

from . import pages
from .addresses import ClientAddresses, limit_key
from .magic_links import Confirmation, MagicLinkStore, Status, show_code, token_hash, typed_code
from .mail import MagicLink, Mailer, MailError
from .problems import problem
from .quiet_log import QuietLog
from .rate_limit import Quota, RateLimit
from .sessions import COOKIE_NAME, Session, SessionError, Sessions, cookie_value
from .settings import ServerSettings
from .validation import is_valid_email, normalize_email

log = logging.getLogger("roomz.server")

REQUEST_PATH = "/auth/request-magic-link"
INVALID_EMAIL = "Invalid email format. Please enter a valid email address."
JSON_ONLY = ('Send the request as JSON: Content-Type: application/json, '
             'body {"email": "you@example.com"}.')
PLEASE_WAIT = "Please wait before requesting another magic link."

VERIFY_PATH = "/auth/verify"
#: On the browser that asked for a link: the hash of its token. That browser opening the
#: link is signed in at once; anyone else holding the link (a mail scanner, another
#: device) gets the page that waits for a button.
ASKED_COOKIE = "roomz_asked"

POLL_PATH = "/auth/sign-in/poll"
#: Seconds a waiting client leaves between polls; one that polls in under half of it is
#: told to slow down (429).
POLL_INTERVAL_SECONDS = 2
POLL_JSON_ONLY = ('Send the poll as JSON: Content-Type: application/json, body {"id": "..."} '
                  'with the id from "sign_in" in the answer to your link request.')
MAX_ID_LENGTH = 100
#: Why a sign-in no longer waits, for the 410 answer to its poll: (type, detail for people).
GONE = {
    Status.EXPIRED: ("sign-in-expired",
                     "The sign-in link expired before anyone used it. Request a new link."),
    Status.UNKNOWN: ("sign-in-expired",
                     "This sign-in is unknown or has expired. Request a new link."),
    Status.BROWSER: ("sign-in-used",
                     "The sign-in link was used to sign in a browser instead. "
                     "Request a new link to sign in here."),
    Status.TOKEN: ("sign-in-used",
                   "The token from the sign-in mail was used to sign in elsewhere. "
                   "Request a new link to sign in here."),
    Status.TERMINAL: ("sign-in-used",
                      "This sign-in has already signed a terminal in. Request a new link."),
    Status.TOO_MANY_CODES: ("sign-in-refused",
                            "Too many wrong codes were entered on the sign-in page. "
                            "The link no longer works. Request a new link."),
}
EMPTY_CODE = "Enter the code your terminal shows."


@dataclass(eq=False)
class SignIn:
    """The ``/auth/*`` endpoints of PROTOCOL.md section 1.

    ``base_url`` gives the URL people reach this server at, for the links in mails: never
    the request's ``Host`` header, which whoever sends the request chooses.
    """

    settings: ServerSettings
    magic_links: MagicLinkStore
    rate_limiter: RateLimit
    sessions: Sessions
    mailer: Mailer
    _: KW_ONLY
    base_url: Callable[[], str]
    addresses: ClientAddresses
    quiet: QuietLog = field(init=False, default_factory=lambda: QuietLog(log))

    def routes(self) -> list[web.RouteDef]:
        """The routes to add to the aiohttp application."""
        return [
            web.post(REQUEST_PATH, self.request_magic_link),
            web.get(VERIFY_PATH, self.verify),
            web.post(VERIFY_PATH, self.confirm),
            web.post(POLL_PATH, self.poll),
            web.get("/auth/me", self.me),
            web.post("/auth/logout", self.logout),
        ]

    def quotas(self, email: str, address: str) -> list[Quota]:
        """The hourly limits one request for ``email`` from ``address`` counts against."""
        s = self.settings
        return [
            Quota(f"email+address:{email} {address}", s.magic_link_rate_limit,
                  f"this email may get {s.magic_link_rate_limit} links an hour "
                  "from one address"),
            Quota(f"email:{email}", s.magic_link_email_limit,
                  f"this email may get {s.magic_link_email_limit} links an hour in all"),
            Quota(f"address:{address}", s.magic_link_address_limit,
                  f"one address may ask for {s.magic_link_address_limit} links an hour"),
        ]

    async def request_magic_link(self, request: web.Request) -> web.Response:
        """``POST /auth/request-magic-link {"email": ...}``: mail a sign-in link."""
        body = await _json_body(request, JSON_ONLY, REQUEST_PATH)
        if isinstance(body, web.Response):
            return body
        if body is NOT_JSON:
            return _invalid('Request body must be JSON: {"email": "you@example.com"}.')
        if not isinstance(body, dict) or "email" not in body:
            return _invalid('Missing "email" field: send {"email": "you@example.com"}.')
        raw = body["email"]
        email = normalize_email(raw) if isinstance(raw, str) else ""
        if not is_valid_email(email):
            return _invalid(INVALID_EMAIL)
        if not self.settings.allows(email):
            return problem(403, "not-authorized", "Not Authorized",
                           "This email is not authorized to access this service.", REQUEST_PATH)
        address = limit_key(self.addresses.client_address(request))
        refusal = await self.rate_limiter.hit(self.quotas(email, address))
        if refusal is not None:
            return problem(429, "rate-limit", "Rate Limit Exceeded",
                           f"Too many requests: {refusal.quota.what}. {PLEASE_WAIT}",
                           REQUEST_PATH,
                           headers={"Retry-After": str(math.ceil(refusal.retry_after))})
        link = await self.magic_links.create(email)
        url = f"{self.base_url()}{VERIFY_PATH}?token={link.token}"
        try:
            await self.mailer.send(MagicLink(email=email, url=url, token=link.token,
                                             expires_minutes=self.settings
                                             .magic_link_expiry_minutes))
        except MailError:
            return problem(500, "email-failed", "Email Delivery Failed",
                           "Failed to send magic link email. Please try again.", REQUEST_PATH)
        response = web.json_response({
            "status": "ok", "message": "Magic link sent. Check your email.",
            # The extension: clients that do not know it ignore it.
            "sign_in": {"id": link.sign_in_id, "code": show_code(link.code),
                        "interval": POLL_INTERVAL_SECONDS,
                        "expires_in": max(0, int(self.magic_links.lifetime_seconds))},
        })
        response.set_cookie(ASKED_COOKIE, token_hash(link.token), path=VERIFY_PATH,
                            max_age=max(1, int(self.magic_links.lifetime_seconds)),
                            httponly=True, samesite="Lax", secure=self.is_https(request))
        return response

    async def verify(self, request: web.Request) -> web.StreamResponse:
        """``GET /auth/verify?token=...``: for a browser, the sign-in page, which uses nothing;
        for anything else (a client redeeming its token), redeem the link, set the session
        cookie and go to ``/``."""
        token = request.query.get("token", "").strip()
        if not token:
            raise web.HTTPFound("/?error=missing_token")
        if request.method == "GET" and hmac.compare_digest(
                request.cookies.get(ASKED_COOKIE, ""), token_hash(token)):
            # The browser that asked for this link: it signs in at once.
            email = await self.magic_links.redeem(token, Status.BROWSER)
            response = await self.signed_in(request, email, web.HTTPFound)
            response.del_cookie(ASKED_COOKIE, path=VERIFY_PATH)
            raise response
        # Anyone else, a mail scanner that looks like a browser included (HEAD too): nobody
        # may have seen the link yet, so it is not used until someone presses a button.
        if request.method == "HEAD" or wants_html(request):
            link = await self.magic_links.peek(token)
            if link is None:
                raise web.HTTPFound("/?error=invalid_token")
            if not self.settings.allows(link.email):
                raise web.HTTPFound("/?error=unauthorized")
            return pages.sign_in_page(token=token, email=link.email, server=self.base_url(),
                                      client_waiting=link.client_waiting)
        email = await self.magic_links.redeem(token, Status.TOKEN)
        raise await self.signed_in(request, email, web.HTTPFound)

    async def signed_in(self, request: web.Request, email: str | None,
                        redirect: type[web.HTTPFound] | type[web.HTTPSeeOther],
                        ) -> web.HTTPException:
        """The redirect to ``/`` that carries a new session of ``email``'s link (None: the
        link was unknown, used or expired)."""
        if email is None:
            return redirect("/?error=invalid_token")
        if not self.settings.allows(email):
            return redirect("/?error=unauthorized")
        response = redirect("/")
        self.set_session_cookie(request, response, await self.sessions.issue(email))
        log.info("signed in: %s", email)
        return response

    async def confirm(self, request: web.Request) -> web.StreamResponse:
        """``POST /auth/verify`` from the sign-in page: ``action=here`` signs this browser in;
        ``action=terminal`` with the right ``code`` signs in the client that waits for it."""
        if not self.is_own_form(request):
            return pages.refused_form_page(request.headers.get("Origin", ""), self.base_url())
        form = await request.post()
        token, action, code = (str(form.get(name, "")).strip()
                               for name in ("token", "action", "code"))
        if not token:
            raise web.HTTPSeeOther("/?error=missing_token")
        if action == "here":
            email = await self.magic_links.redeem(token, Status.BROWSER)
            raise await self.signed_in(request, email, web.HTTPSeeOther)
        if action != "terminal":
            raise web.HTTPBadRequest(text='The form needs "action": "here" or "terminal".')
        link = await self.magic_links.peek(token)
        if link is None:
            raise web.HTTPSeeOther("/?error=invalid_token")
        if not self.settings.allows(link.email):
            raise web.HTTPSeeOther("/?error=unauthorized")
        if not typed_code(code):  # an empty field costs no try
            return pages.sign_in_page(token=token, email=link.email, server=self.base_url(),
                                      client_waiting=True, error=EMPTY_CODE, status=400)
        confirmed = await self.magic_links.confirm(token, code)
        if confirmed.outcome is Confirmation.APPROVED:
            log.info("approved a terminal's sign-in: %s", confirmed.email)
            return pages.terminal_signed_in_page(confirmed.email, show_code(typed_code(code)))
        if confirmed.outcome is Confirmation.WRONG:
            tries = "1 try" if confirmed.tries_left == 1 else f"{confirmed.tries_left} tries"
            return pages.sign_in_page(
                token=token, email=link.email, server=self.base_url(), client_waiting=True,
                error=f"That is not the code your terminal shows. You have {tries} left.",
                status=400)
        if confirmed.outcome is Confirmation.TOO_MANY:
            self.quiet.warning("too-many-codes", "a sign-in link for %s was used up by wrong "
                               "codes", confirmed.email)
            raise web.HTTPSeeOther("/?error=too_many_codes")
        raise web.HTTPSeeOther("/?error=invalid_token")

    async def poll(self, request: web.Request) -> web.Response:
        """``POST /auth/sign-in/poll {"id": ...}``: is the sign-in approved yet? Once it is,
        the answer carries the new session cookie (once)."""
        body = await _json_body(request, POLL_JSON_ONLY, POLL_PATH)
        if isinstance(body, web.Response):
            return body
        sign_in_id = body.get("id") if isinstance(body, dict) else None
        if not isinstance(sign_in_id, str) or not 0 < len(sign_in_id) <= MAX_ID_LENGTH:
            return problem(400, "validation", "Validation Error", POLL_JSON_ONLY, POLL_PATH)
        polled = await self.magic_links.poll(sign_in_id, POLL_INTERVAL_SECONDS / 2)
        if polled.status is Status.PENDING:
            return web.json_response({"status": "pending"})
        if polled.status is Status.SLOW_DOWN:
            return problem(429, "slow-down", "Slow Down",
                           f"Poll at most every {POLL_INTERVAL_SECONDS} seconds.", POLL_PATH,
                           headers={"Retry-After": str(POLL_INTERVAL_SECONDS)})
        if polled.status is Status.APPROVED:
            return await self._collect(request, sign_in_id, polled.email)
        kind, detail = GONE[polled.status]
        return problem(410, kind, "Gone", detail, POLL_PATH)

    async def _collect(self, request: web.Request, sign_in_id: str,
                       email: str) -> web.Response:
        """The approved sign-in's session, for the first poll that gets it."""
        if not self.settings.allows(email):
            return problem(403, "not-authorized", "Not Authorized",
                           "This email is not authorized to access this service.", POLL_PATH)
        # Issued before it is claimed: a poll that loses the race drops a session nobody saw.
        session = await self.sessions.issue(email)
        if not await self.magic_links.collect(sign_in_id):
            kind, detail = GONE[Status.TERMINAL]
            return problem(410, kind, "Gone", detail, POLL_PATH)
        response = web.json_response({"status": "ok"})
        self.set_session_cookie(request, response, session)
        log.info("signed in a waiting client: %s", email)
        return response

    def set_session_cookie(self, request: web.Request, response: web.StreamResponse,
                           session: str) -> None:
        """Put ``session`` in ``response``'s ``session_token`` cookie."""
        response.set_cookie(
            COOKIE_NAME, session, max_age=self.sessions.max_age_seconds,
            path="/", httponly=True, samesite="Strict", secure=self.is_https(request),
        )

    def is_own_form(self, request: web.Request) -> bool:
        """True when a form POST comes from a page of this server: its ``Origin`` is the
        origin of the server's own URL (login CSRF: another site cannot post our forms)."""
        expected = origin_of(self.base_url())
        got = origin_of(request.headers.get("Origin", ""))
        if got is not None and got == expected:
            return True
        self.quiet.warning("cross-site-form", "refused a sign-in form from origin %.100r; this "
                           "server's own is %s (is ROOMZ_PUBLIC_URL right?)",
                           request.headers.get("Origin"), expected)
        return False

    def is_https(self, request: web.Request) -> bool:
        """True when the cookie must be ``Secure``: people reach us over https."""
        public = self.settings.public_url
        return (public is not None and public.lower().startswith("https:")) \
            or self.addresses.is_https(request)

    async def me(self, request: web.Request) -> web.Response:
        """``GET /auth/me``: the signed-in user, or 401."""
        try:
            claims = await self.sessions.verify(cookie_value(request.headers.get(hdrs.COOKIE)))
            if not self.settings.allows(claims["email"]):
                raise SessionError("this email is no longer allowed")
        except SessionError as exc:
            return problem(401, "unauthorized", "Unauthorized",
                           f"Not signed in: {exc}.", "/auth/me")
        created = datetime.fromtimestamp(claims["iat"], timezone.utc).isoformat()
        return web.json_response(
            {"status": "ok", "user": {"email": claims["email"], "created_at": created}}
        )

    async def logout(self, request: web.Request) -> web.Response:
        """``POST /auth/logout``: end this session on the server and clear the cookie."""
        try:
            claims = await self.sessions.verify(cookie_value(request.headers.get(hdrs.COOKIE)))
        except SessionError:
            pass  # no session, or one that has ended already: nothing left to end
        else:
            await self.sessions.end(Session.of(claims))
        response = web.json_response({"status": "ok"})
        response.del_cookie(COOKIE_NAME, path="/")
        return response


#: What :func:`_json_body` gives for a body that does not parse as JSON.
NOT_JSON = object()


async def _json_body(request: web.Request, how: str, path: str) -> Any:
    """The request's body parsed as JSON, or :data:`NOT_JSON`; or the 415 answer when it
    was not sent as JSON (``how`` says how to send it)."""
    # A JSON content type is something a cross-site HTML form cannot send.
    if request.content_type != "application/json":
        return problem(415, "unsupported-media-type", "Unsupported Media Type",
                       f"{how} Got Content-Type: {request.content_type}.", path)
    try:
        return json.loads(await request.read())
    except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
        return NOT_JSON


def _invalid(detail: str) -> web.Response:
    return problem(400, "validation", "Validation Error", detail, REQUEST_PATH)


def wants_html(request: web.Request) -> bool:
    """True when the request's ``Accept`` asks for an HTML page (as browsers do), not for
    anything at all (``*/*``, as HTTP clients such as the published client and curl do)."""
    for header in request.headers.getall("Accept", []):
        for item in header.split(","):
            media, *params = (part.strip() for part in item.split(";"))
            if media.lower() in ("text/html", "application/xhtml+xml") and _quality(params) > 0:
                return True
    return False


def _quality(params: list[str]) -> float:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def origin_of(url: str) -> str | None:
    """The origin (``scheme://host[:port]``) of ``url`` as browsers write it in ``Origin``,
    default ports left out; None for anything that is not an http(s) URL."""
    try:
        parsed = URL(url.strip())
    except ValueError:  # a port out of range, say
        return None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return None
    return str(parsed.origin())  # yarl lower-cases, drops default ports, brackets IPv6
