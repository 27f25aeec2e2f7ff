"""``roomz-cli``: the Roomz terminal, which also hosts bots from a TOML file."""

#: The longest wait, in seconds, between two attempts of the terminal to reach its server,
#: unless ``--reconnect-max-delay`` or the config's ``[client] reconnect_max_delay`` says.
DEFAULT_RECONNECT_MAX_DELAY = 60.0
