"""The attacks of issue 11, each reproduced against a real server; each failed before its fix."""
