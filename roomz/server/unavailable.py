"""The one failure a shared store adds: it cannot be reached right now."""


class StoreUnavailable(Exception):
    """Shared state (Redis) is unreachable; answer "try again shortly", keep the connections.

    ``maybe_done``: the store may have done what was asked all the same (the command went,
    and its answer was lost with the connection), as opposed to refusing it.
    """

    def __init__(self, message: str = "", *, maybe_done: bool = False) -> None:
        super().__init__(message)
        self.maybe_done = maybe_done
