"""The attacks of issue 11, each reproduced against a real server; each test failed before its fix."""
