"""Where the files shipped beside the code are: templates and example lists.

In a checkout (or an editable install) they sit at the top of the repository;
a built wheel carries them inside the package under ``_shipped/``.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def shipped_dir(name: str) -> Path:
    for candidate in (_PACKAGE / "_shipped" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"embargo-bot's shipped {name}/ folder is missing from {_PACKAGE}")
