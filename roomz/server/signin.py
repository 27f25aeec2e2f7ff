"""Sign-in over HTTP: request a magic link, redeem it for a session cookie, who am I, log out."""

from __future__ import annotations

import json
import logging
import math
from datetime import datetime, timezone

from aiohttp import web

from .magic_links import MagicLinkStore
from .mail import MagicLink, Mailer, MailError
from .problems import problem
from .rate_limit import RateLimit
from .sessions import COOKIE_NAME, Session, SessionError, Sessions
from .settings import ServerSettings
from .validation import is_valid_email, normalize_email

log = logging.getLogger("roomz.server")

REQUEST_PATH = "/auth/request-magic-link"
INVALID_EMAIL = "Invalid email format. Please enter a valid email address."


class SignIn:
    """The ``/auth/*`` endpoints of PROTOCOL.md section 1."""

    def __init__(self, settings: ServerSettings, magic_links: MagicLinkStore,
                 rate_limiter: RateLimit, sessions: Sessions, mailer: Mailer) -> None:
        self.settings = settings
        self.magic_links = magic_links
        self.rate_limiter = rate_limiter
        self.sessions = sessions
        self.mailer = mailer

    def routes(self) -> list[web.RouteDef]:
        """The routes to add to the aiohttp application."""
        return [
            web.post(REQUEST_PATH, self.request_magic_link),
            web.get("/auth/verify", self.verify),
            web.get("/auth/me", self.me),
            web.post("/auth/logout", self.logout),
        ]

    def base_url(self, request: web.Request) -> str:
        """The URL people reach this server at, for links in mails."""
        return self.settings.public_url or str(request.url.origin())

    async def request_magic_link(self, request: web.Request) -> web.Response:
        """``POST /auth/request-magic-link {"email": ...}``: mail a sign-in link."""
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
        retry_after = await self.rate_limiter.hit(email)
        if retry_after is not None:
            return problem(429, "rate-limit", "Rate Limit Exceeded",
                           "Too many requests. Please wait before requesting another magic link.",
                           REQUEST_PATH, headers={"Retry-After": str(math.ceil(retry_after))})
        token = await self.magic_links.create(email)
        url = f"{self.base_url(request)}/auth/verify?token={token}"
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
            path="/", httponly=True, samesite="Strict", secure=request.secure,
        )
        log.info("signed in: %s", email)
        raise response

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
