"""The plugins that ship with Roomz, loadable by name (``plugins = ["dice"]``).

A wheel carries them in this package; in a clone they live in the top-level ``plugins/``
folder, which is added to this package's search path.
"""

from pathlib import Path

_CLONE = Path(__file__).resolve().parents[2] / "plugins"
if _CLONE.is_dir():
    __path__.append(str(_CLONE))
