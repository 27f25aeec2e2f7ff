"""Data of the folder plugin."""

ANSWER = "from a folder"
