"""Answers with long text heavy in ``&`` and ``<``: several messages on any server."""

from roomz_bots import command


def long_text(length: int, words_a_line: int = 0) -> str:
    """``length`` characters of words like ``a<007>&b``, on one line, or with a line
    break after every ``words_a_line`` words."""
    def gap(i: int) -> str:
        return "\n" if words_a_line and i % words_a_line == words_a_line - 1 else " "

    return "".join(f"a<{i:03}>&b{gap(i)}" for i in range(length))[:length]


@command("long")
def long_command(length: int, words_a_line: int = 0) -> str:
    """Answer with ``length`` characters, most of which the server escapes."""
    return long_text(length, words_a_line)
