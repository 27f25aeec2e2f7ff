"""The README shows code that the test suite runs: the two must not drift apart."""

from __future__ import annotations

import re
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


def test_readme_and_docs_link_only_to_files_in_the_repository() -> None:
    """Someone who clones the repository can follow every relative link in the README and docs."""
    for page in (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))):
        text = page.read_text(encoding="utf-8")
        assert "../shared" not in text, page
        for target in re.findall(r"\]\(([^)#\s]+)[^)]*\)", text):
            if "://" not in target:
                assert (page.parent / target).exists(), f"{page.name} links to {target}"
