"""``roomz-cli``: the Roomz terminal, which also hosts bots from a TOML file."""
