"""The connection states a client moves through."""

from enum import Enum


class ConnectionState(Enum):
    """Where a client's live connection stands; ``client.connection_state`` tells it."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
