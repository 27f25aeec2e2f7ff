"""The one failure a shared store adds: it cannot be reached right now."""


class StoreUnavailable(Exception):
    """Shared state (Redis) is unreachable; answer "try again shortly", keep the connections."""
