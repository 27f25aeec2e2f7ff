"""Roomz bots: the pluggy hook layer that dispatches chat events to plugins."""
