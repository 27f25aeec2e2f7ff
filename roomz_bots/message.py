"""A chat message as plugins see it: :class:`roomz.message.Message`, which the terminal
shows too. Plugins import it as ``from roomz_bots import Message``; this module keeps
``roomz_bots.message.Message`` working."""

from roomz.message import Message, display_name_of, label

__all__ = ["Message", "display_name_of", "label"]
