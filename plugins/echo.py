"""Echo: ``!echo <text>`` says the text back. The smallest useful plugin."""

from roomz_bots import command


@command
def echo(*, text: str) -> str:
    """Say the text back."""
    return text
