"""Sign-in over HTTP: request a magic link, redeem it for a session cookie, who am I, log out."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from datetime import datetime, timezone

from aiohttp import web

from .addresses import ClientAddresses, limit_key
from .magic_links import MagicLinkStore
from .mail import MagicLink, Mailer, MailError
from .problems import problem
from .rate_limit import Quota, RateLimit
from .sessions import COOKIE_NAME, Session, SessionError, Sessions
from .settings import ServerSettings
from .validation import is_valid_email, normalize_email

log = logging.getLogger("roomz.server")

REQUEST_PATH = "/auth/request-magic-link"
INVALID_EMAIL = "Invalid email format. Please enter a valid email address."
JSON_ONLY = ('Send the request as JSON: Content-Type: application/json, '
             'body {"email": "you@example.com"}.')
PLEASE_WAIT = "Please wait before requesting another magic link."


class SignIn:
    """The ``/auth/*`` endpoints of PROTOCOL.md section 1.

    ``base_url`` gives the URL people reach this server at, for the links in mails: never
    the request's ``Host`` header, which whoever sends the request chooses.
    """

    def __init__(self, settings: ServerSettings, magic_links: MagicLinkStore,
                 rate_limiter: RateLimit, sessions: Sessions, mailer: Mailer, *,
                 base_url: Callable[[], str], addresses: ClientAddresses) -> None:
        self.settings = settings
        self.magic_links = magic_links
        self.rate_limiter = rate_limiter
        self.sessions = sessions
        self.mailer = mailer
        self.base_url = base_url
        self.addresses = addresses

    def routes(self) -> list[web.RouteDef]:
        """The routes to add to the aiohttp application."""
        return [
            web.post(REQUEST_PATH, self.request_magic_link),
            web.get("/auth/verify", self.verify),
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
        # A JSON content type is something a cross-site HTML form cannot send.
        if request.content_type != "application/json":
            return problem(415, "unsupported-media-type", "Unsupported Media Type",
                           f"{JSON_ONLY} Got Content-Type: {request.content_type}.",
                           REQUEST_PATH)
        try:
            body = json.loads(await request.read())
        except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
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
        token = await self.magic_links.create(email)
        url = f"{self.base_url()}/auth/verify?token={token}"
        try:
            await self.mailer.send(MagicLink(email=email, url=url, token=token))
        except MailError:
            return problem(500, "email-failed", "Email Delivery Failed",
                           "Failed to send magic link email. Please try again.", REQUEST_PATH)
        return web.json_response({"status": "ok", "message": "Magic link sent. Check your email."})

    async def verify(self, request: web.Request) -> web.Response:
        """``GET /auth/verify?token=...``: redeem a link, set the session cookie, go to ``/``."""
        token = request.query.get("token", "").strip()
        if not token:
            raise web.HTTPFound("/?error=missing_token")
        email = await self.magic_links.redeem(token)
        if email is None:
            raise web.HTTPFound("/?error=invalid_token")
        if not self.settings.allows(email):
            raise web.HTTPFound("/?error=unauthorized")
        session = await self.sessions.issue(email)
        response = web.HTTPFound("/")
        response.set_cookie(
            COOKIE_NAME, session, max_age=self.sessions.max_age_seconds,
            path="/", httponly=True, samesite="Strict", secure=self.is_https(request),
        )
        log.info("signed in: %s", email)
        raise response

    def is_https(self, request: web.Request) -> bool:
        """True when the cookie must be ``Secure``: people reach us over https."""
        public = self.settings.public_url
        return (public is not None and public.lower().startswith("https:")) \
            or self.addresses.is_https(request)

    async def me(self, request: web.Request) -> web.Response:
        """``GET /auth/me``: the signed-in user, or 401."""
        try:
            claims = await self.sessions.verify(request.cookies.get(COOKIE_NAME))
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
            claims = await self.sessions.verify(request.cookies.get(COOKIE_NAME))
        except SessionError:
            pass  # no session, or one that has ended already: nothing left to end
        else:
            await self.sessions.end(Session.of(claims))
        response = web.json_response({"status": "ok"})
        response.del_cookie(COOKIE_NAME, path="/")
        return response


def _invalid(detail: str) -> web.Response:
    return problem(400, "validation", "Validation Error", detail, REQUEST_PATH)
