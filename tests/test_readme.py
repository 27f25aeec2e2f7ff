"""The README shows code that the test suite runs: the two must not drift apart."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_plugin_and_its_test_are_the_files_the_suite_runs() -> None:
    """"Writing a plugin" quotes tests/bots/example_plugin/quotes.py and its test verbatim."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for path in ("tests/bots/example_plugin/quotes.py", "tests/bots/test_readme_example.py"):
        assert (ROOT / path).read_text(encoding="utf-8").strip() in readme, path


def test_readme_opens_with_the_two_quick_start_commands() -> None:
    """A newcomer's first two commands: ./dev run and ./dev test, and .ci/run runs the second."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1].split("##", 1)[0]
    assert "./dev run" in quick and "./dev test" in quick
    assert "exec ./dev test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
