"""Server settings: defaults, the operators' environment variables, flags, start-up rules."""

from __future__ import annotations

import ipaddress
import logging
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roomz.server import Server, ServerSettings, SettingsError, SmtpSettings
from roomz.server.__main__ import build_parser, settings_from
from roomz.server.settings import (
    default_state_dir,
    is_loopback_host,
    load_or_create_secret,
    parse_emails,
    settings_from_env,
)

LONG_SECRET = "s" * 32


def from_command_line(*argv: str, env: dict[str, str] | None = None) -> ServerSettings:
    """The settings ``roomz-server ARGV`` would run with, given ``env``."""
    return settings_from(build_parser().parse_args(list(argv)), env or {})


@contextmanager
def umask(mask: int) -> Iterator[None]:
    """Run with ``mask`` as the process umask."""
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def test_defaults_are_loopback_port_8000() -> None:
    """With no flags and no environment the server listens on 127.0.0.1:8000 with console mail."""
    settings = from_command_line()

    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings == ServerSettings()
    assert settings.allowed_emails is None
    assert settings.jwt_secret is None
    assert (settings.jwt_expiry_days, settings.magic_link_expiry_minutes,
            settings.magic_link_rate_limit) == (30, 15, 5)
    assert settings.email_sender == "console"
    assert settings.max_connections == 1000


def test_environment_variables_are_read() -> None:
    """Each of the published server's variables lands in the matching setting."""
    env = {
        "JWT_SECRET_KEY": LONG_SECRET,
        "ALLOWED_EMAILS": " Alice@Example.com,bob@example.com ,, ",
        "JWT_EXPIRY_DAYS": "7",
        "MAGIC_LINK_EXPIRY_MINUTES": "5",
        "MAGIC_LINK_RATE_LIMIT": "3",
        "EMAIL_SENDER": " SMTP ",
        "SMTP_HOST": "mail.example.com",
        "SMTP_PORT": "2525",
        "SMTP_STARTTLS": "false",
        "SMTP_USER": "relay",
        "SMTP_PASSWORD": "hunter2",
        "SMTP_SENDER": "roomz@example.com",
        "ROOMZ_MAX_CONNECTIONS": "50",
    }

    settings = from_command_line(env=env)

    assert settings.jwt_secret == LONG_SECRET
    assert settings.allowed_emails == frozenset({"alice@example.com", "bob@example.com"})
    assert settings.jwt_expiry_days == 7
    assert settings.magic_link_expiry_minutes == 5
    assert settings.magic_link_rate_limit == 3
    assert settings.email_sender == "smtp"
    assert settings.max_connections == 50
    assert settings.smtp == SmtpSettings(host="mail.example.com", port=2525, starttls=False,
                                         user="relay", password="hunter2",
                                         sender="roomz@example.com")


def test_unset_variables_are_not_settings() -> None:
    """An empty environment yields no settings, so defaults and flags decide."""
    assert settings_from_env({}) == {}
    assert settings_from_env({"JWT_SECRET_KEY": "", "JWT_EXPIRY_DAYS": ""}) == {}


@pytest.mark.parametrize("value", ["", " ", ", ,"])
def test_empty_allow_list_means_anyone(value: str) -> None:
    """ALLOWED_EMAILS that names nobody means any email (on loopback), not "nobody"."""
    assert parse_emails(value) is None
    assert from_command_line(env={"ALLOWED_EMAILS": value}).allowed_emails is None


def test_flags_win_over_env() -> None:
    """A flag overrides the same setting from the environment; the rest of the env still applies."""
    env = {"ALLOWED_EMAILS": "env@example.com", "JWT_EXPIRY_DAYS": "3",
           "MAGIC_LINK_EXPIRY_MINUTES": "4", "MAGIC_LINK_RATE_LIMIT": "9",
           "EMAIL_SENDER": "smtp", "SMTP_HOST": "mail.example.com", "SMTP_PORT": "25",
           "SMTP_STARTTLS": "true", "SMTP_SENDER": "env@roomz.example",
           "ROOMZ_MAX_CONNECTIONS": "10"}

    settings = from_command_line(
        "--host", "::1", "--port", "9000", "--allowed-emails", "Flag@Example.com",
        "--jwt-expiry-days", "7", "--magic-link-expiry-minutes", "2",
        "--email-sender", "console", "--smtp-port", "2525", "--no-smtp-starttls",
        "--smtp-sender", "flag@roomz.example", "--max-connections", "20", env=env,
    )

    assert (settings.host, settings.port) == ("::1", 9000)
    assert settings.allowed_emails == frozenset({"flag@example.com"})
    assert settings.jwt_expiry_days == 7
    assert settings.magic_link_expiry_minutes == 2
    assert settings.magic_link_rate_limit == 9  # no flag: the environment's value
    assert settings.email_sender == "console"
    assert settings.max_connections == 20
    assert settings.smtp == SmtpSettings(host="mail.example.com", port=2525, starttls=False,
                                         sender="flag@roomz.example")


def test_smtp_flags_alone() -> None:
    """The SMTP flags fill the SMTP settings without any environment."""
    settings = from_command_line(
        "--email-sender", "smtp", "--smtp-host", "127.0.0.1", "--smtp-port", "1025",
        "--smtp-starttls", "--smtp-user", "u", "--smtp-password", "p", "--smtp-sender", "a@b.cd",
    )

    assert settings.email_sender == "smtp"
    assert settings.smtp == SmtpSettings(host="127.0.0.1", port=1025, starttls=True, user="u",
                                         password="p", sender="a@b.cd")


@pytest.mark.parametrize("var", ["JWT_EXPIRY_DAYS", "MAGIC_LINK_EXPIRY_MINUTES",
                                 "MAGIC_LINK_RATE_LIMIT", "SMTP_PORT", "ROOMZ_MAX_CONNECTIONS"])
@pytest.mark.parametrize("value", ["abc", "1.5", "7 days"])
def test_malformed_number_is_a_one_line_error(var: str, value: str) -> None:
    """A variable that should be a whole number names itself and its value in one line."""
    with pytest.raises(SettingsError) as error:
        settings_from_env({var: value})

    message = str(error.value)
    assert var in message and repr(value) in message
    assert "\n" not in message


def test_malformed_boolean_is_a_one_line_error() -> None:
    """SMTP_STARTTLS must be true or false."""
    with pytest.raises(SettingsError, match="SMTP_STARTTLS") as error:
        settings_from_env({"SMTP_STARTTLS": "maybe"})
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("name", ["jwt_expiry_days", "magic_link_expiry_minutes",
                                  "magic_link_rate_limit", "max_connections"])
@pytest.mark.parametrize("value", [0, -1])
def test_numbers_below_one_are_refused(name: str, value: int) -> None:
    """Counts and durations of zero or less are refused at start-up."""
    settings = ServerSettings(jwt_secret=LONG_SECRET, **{name: value})  # type: ignore[arg-type]

    with pytest.raises(SettingsError, match=name):
        settings.checked()


def test_unknown_email_sender_is_refused() -> None:
    """EMAIL_SENDER must be console or smtp."""
    with pytest.raises(SettingsError, match="EMAIL_SENDER"):
        ServerSettings(jwt_secret=LONG_SECRET, email_sender="pigeon").checked()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_loopback_without_allow_list_accepts_anyone(host: str, tmp_path: Path) -> None:
    """On loopback with no ALLOWED_EMAILS any email may sign in."""
    settings = ServerSettings(host=host, state_dir=tmp_path).checked()

    assert settings.allows("anyone@example.com")
    assert settings.allows("someone.else@example.org")


def test_allow_list_limits_who_signs_in() -> None:
    """With ALLOWED_EMAILS only those emails may sign in."""
    settings = ServerSettings(jwt_secret=LONG_SECRET,
                              allowed_emails=parse_emails("alice@example.com")).checked()

    assert settings.allows("alice@example.com")
    assert not settings.allows("mallory@example.com")


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "10.0.0.1", "example.com"])
def test_public_address_without_allow_list_is_refused(host: str) -> None:
    """A non-loopback address without ALLOWED_EMAILS refuses to start, in one line."""
    with pytest.raises(SettingsError) as error:
        ServerSettings(host=host, jwt_secret=LONG_SECRET * 2).checked()

    message = str(error.value)
    assert "ALLOWED_EMAILS" in message and host in message
    assert "\n" not in message


@pytest.mark.parametrize("length", [1, 31])
def test_public_address_with_short_secret_is_refused(length: int) -> None:
    """A non-loopback address with a secret under 32 characters refuses to start."""
    settings = ServerSettings(host="0.0.0.0", jwt_secret="s" * length,
                              allowed_emails=frozenset({"alice@example.com"}))

    with pytest.raises(SettingsError, match="32") as error:
        settings.checked()
    assert "\n" not in str(error.value)


def test_public_address_with_allow_list_secret_and_public_url_starts() -> None:
    """A non-loopback address is fine with an allow-list, a 32-character secret and a URL."""
    settings = ServerSettings(host="0.0.0.0", jwt_secret=LONG_SECRET,
                              allowed_emails=frozenset({"alice@example.com"}),
                              public_url="https://chat.example.com")

    assert settings.checked().jwt_secret == LONG_SECRET


def test_python_api_refuses_unsafe_settings_before_listening() -> None:
    """Server() itself raises SettingsError, so nothing is ever bound."""
    with pytest.raises(SettingsError, match="ALLOWED_EMAILS"):
        Server(ServerSettings(host="0.0.0.0", port=0, jwt_secret=LONG_SECRET))


@pytest.mark.parametrize("host", ["localhost", "LocalHost", "127.0.0.1", "127.8.9.10", "::1",
                                  "[::1]"])
def test_loopback_hosts(host: str) -> None:
    """localhost and loopback addresses count as loopback."""
    assert is_loopback_host(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com", "",
                                  "localhost.example.com", "127.0.0.1.example.com"])
def test_non_loopback_hosts(host: str) -> None:
    """Every other address or name is not loopback."""
    assert not is_loopback_host(host)


@given(st.ip_addresses(v=4))
def test_ipv4_loopback_is_exactly_127_0_0_0_slash_8(address: ipaddress.IPv4Address) -> None:
    """Any IPv4 address is loopback exactly when it lies in 127.0.0.0/8."""
    assert is_loopback_host(str(address)) == (address in ipaddress.ip_network("127.0.0.0/8"))


@given(st.ip_addresses(v=6))
def test_ipv6_loopback_is_only_colon_colon_1(address: ipaddress.IPv6Address) -> None:
    """Any IPv6 address, bracketed or not, is loopback exactly when it is ::1."""
    expected = address == ipaddress.IPv6Address("::1")
    assert is_loopback_host(str(address)) == expected
    assert is_loopback_host(f"[{address}]") == expected


def test_generated_secret_is_kept_with_mode_0600(tmp_path: Path) -> None:
    """With no JWT_SECRET_KEY a long secret is generated once, stored 0600, and reused."""
    state_dir = tmp_path / "state" / "roomz"
    with umask(0):  # the file must be private whatever the umask
        first = ServerSettings(state_dir=state_dir).checked().jwt_secret

    path = state_dir / "jwt_secret"
    assert first is not None and len(first) >= 32
    assert path.read_text().strip() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ServerSettings(state_dir=state_dir).checked().jwt_secret == first
    assert load_or_create_secret(state_dir) == first


def test_given_secret_is_used_and_nothing_is_stored(tmp_path: Path) -> None:
    """With JWT_SECRET_KEY set the state dir stays untouched."""
    settings = ServerSettings(jwt_secret=LONG_SECRET, state_dir=tmp_path / "roomz").checked()

    assert settings.jwt_secret == LONG_SECRET
    assert not (tmp_path / "roomz").exists()


def test_default_state_dir_follows_xdg_state_home(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The secret lives in $XDG_STATE_HOME/roomz/jwt_secret by default."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))

    secret = ServerSettings().checked().jwt_secret

    assert default_state_dir() == tmp_path / "roomz"
    assert (tmp_path / "roomz" / "jwt_secret").read_text().strip() == secret


def test_short_stored_secret_is_replaced(tmp_path: Path) -> None:
    """A stored secret under 32 characters is not used; a new one replaces it, still 0600."""
    (tmp_path / "jwt_secret").write_text("too-short\n")

    secret = load_or_create_secret(tmp_path)

    assert len(secret) >= 32
    assert (tmp_path / "jwt_secret").read_text().strip() == secret
    assert stat.S_IMODE((tmp_path / "jwt_secret").stat().st_mode) == 0o600


def test_unusable_state_dir_is_a_one_line_error(tmp_path: Path) -> None:
    """A state dir that cannot hold the secret is a SettingsError naming the path."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")

    with pytest.raises(SettingsError, match="not-a-directory") as error:
        ServerSettings(state_dir=blocker).checked()
    assert "\n" not in str(error.value)


def test_generating_a_secret_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The operator learns where the generated secret lives."""
    with caplog.at_level(logging.INFO, logger="roomz.server"):
        load_or_create_secret(tmp_path)

    assert any(str(tmp_path / "jwt_secret") in r.getMessage() for r in caplog.records)


def test_several_nodes_need_one_shared_secret(tmp_path: Path) -> None:
    """With REDIS_URL, a secret generated per machine would split sessions between nodes."""
    settings = ServerSettings(redis_url="redis://127.0.0.1:6379/0", state_dir=tmp_path)
    with pytest.raises(SettingsError, match="REDIS_URL needs JWT_SECRET_KEY"):
        settings.checked()
    assert not (tmp_path / "jwt_secret").exists()
