"""A plugin whose dependency is not installed."""

import roomz_no_such_dependency  # noqa: F401
