"""The layers lean one way: read every production module's imports and check the rules.

Every ``import`` counts, wherever it is: at the top, inside a function, under
``TYPE_CHECKING``. The rules are the tables below: a module belongs to the most specific
layer that names it, and "a module named testing" is any whose last part is ``testing``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

#: layer               ->  must not import
RULES: dict[str, tuple[str, ...]] = {
    "roomz":                ("roomz.server", "roomz.cli", "roomz_bots"),  # the client
    "roomz.server":         ("roomz.cli", "roomz_bots"),
    "roomz.cli":            (),  # the top: the terminal may use every layer below it
    "roomz_bots":           ("roomz.cli", "roomz.server"),
    "plugins":              ("roomz.cli", "roomz.server"),  # bots, like roomz_bots
}
#: No production module imports a module named ``testing``: test machinery stays out.
#: (``roomz_bots.testing``, the plugin authors' harness, is one, shipped for their tests:
#: nothing in production imports it.)
NOT_IMPORTED_BY_PRODUCTION = "testing"
#: Allowed anyway: importer -> modules it may import although a rule above forbids them.
EXCEPTIONS: dict[str, tuple[str, ...]] = {
    # The plugin authors' harness runs a real server in its process, as our own tests do.
    "roomz_bots.testing": ("roomz.server.local",),
}

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = ("roomz", "roomz_bots", "plugins")


@dataclass(frozen=True)
class Import:
    """One module named by an import statement."""

    importer: str
    imported: str
    line: int

    def __str__(self) -> str:
        return f"{self.importer} (line {self.line}) imports {self.imported}"


def module_name(path: Path) -> str:
    """``roomz/server/local.py`` -> ``roomz.server.local``; a package is its ``__init__``."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_in(source: str, importer: str, *, is_package: bool = False) -> Iterator[Import]:
    """Every module ``source`` imports, wherever the statement is; ``from p import n``
    names both ``p`` and ``p.n`` (``n`` may be a submodule)."""
    package = importer if is_package else importer.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(importer, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = parts[:len(parts) - node.level + 1] if node.level else []  # "." is package
            module = ".".join([*base, *([node.module] if node.module else [])])
            yield Import(importer, module, node.lineno)
            for alias in node.names:
                yield Import(importer, f"{module}.{alias.name}", node.lineno)


def production_imports() -> Iterator[Import]:
    """The imports of every module of the packages we ship, and of the bundled plugins."""
    for top in PRODUCTION:
        for path in sorted((ROOT / top).rglob("*.py")):
            yield from imports_in(path.read_text(encoding="utf-8"), module_name(path),
                                  is_package=path.name == "__init__.py")


def within(module: str, package: str) -> bool:
    """True when ``module`` is ``package`` or inside it."""
    return module == package or module.startswith(package + ".")


def layer_of(module: str) -> str:
    """The most specific layer of :data:`RULES` that ``module`` belongs to."""
    return max((layer for layer in RULES if within(module, layer)), key=len)


def broken(found: Import) -> str | None:
    """Which rule ``found`` breaks, or None."""
    if any(within(found.imported, allowed) for allowed in EXCEPTIONS.get(found.importer, ())):
        return None
    if found.imported.rpartition(".")[2] == NOT_IMPORTED_BY_PRODUCTION:
        return "production code imports no module named testing"
    layer = layer_of(found.importer)
    for forbidden in RULES[layer]:
        if within(found.imported, forbidden):
            return f"{layer} imports nothing from {forbidden}"
    return None


def violations(imports: Iterator[Import]) -> list[str]:
    """``"importer (line n) imports x: the rule"`` for every import that breaks a rule."""
    return [f"{found}: {rule}" for found in imports if (rule := broken(found)) is not None]


def test_production_code_keeps_to_the_layers() -> None:
    """No production module imports across the rules of RULES, anywhere in it."""
    checked = list(production_imports())
    assert len({i.importer for i in checked}) > 50  # the walk found the code
    assert violations(iter(checked)) == []


@pytest.mark.parametrize(("importer", "source", "rule"), [
    ("roomz.async_client", "from roomz_bots import Message",
     "roomz imports nothing from roomz_bots"),
    ("roomz.async_client", "def f():\n    import roomz.cli.app\n",
     "roomz imports nothing from roomz.cli"),
    ("roomz.server.app", "from typing import TYPE_CHECKING\n"
                         "if TYPE_CHECKING:\n    from roomz_bots.bot import Bot\n",
     "roomz.server imports nothing from roomz_bots"),
    ("roomz_bots.bot", "from roomz.server import local",
     "roomz_bots imports nothing from roomz.server"),
    ("roomz.cli.embedded", "from roomz.server.testing import LocalServer",
     "production code imports no module named testing"),
    ("roomz.cli.embedded", "from roomz.server import testing",
     "production code imports no module named testing"),
    ("roomz.message", "from .server import app", "roomz imports nothing from roomz.server"),
    ("roomz.cli.app", "from ..server import testing",
     "production code imports no module named testing"),
])
def test_a_broken_rule_is_found(importer: str, source: str, rule: str) -> None:
    """The check sees imports inside functions, under TYPE_CHECKING, relative ones, and
    submodules named in ``from ... import``."""
    found = violations(imports_in(source, importer))
    assert found and all(line.endswith(rule) for line in found)


def test_the_exceptions_are_all_that_is_allowed() -> None:
    """The harness may run a local server; the terminal may run one; nothing else."""
    assert violations(imports_in("from roomz.server.local import LocalServer",
                                 "roomz_bots.testing")) == []
    assert violations(imports_in("from roomz.server.local import LocalServer",
                                 "roomz.cli.embedded")) == []
    assert violations(imports_in("from roomz.server.local import LocalServer",
                                 "roomz_bots.host")) != []
