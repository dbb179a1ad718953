"""What every command starts from: the settings, and the file modes they imply."""

from __future__ import annotations

import json
import os
from typing import Any

from rich.console import Console

from embargo_bot.settings import Settings, load_settings

GROUP_UMASK = 0o007  # with EMBARGO_BOT_SHARED_GROUP: owner and group, nobody else


def command_settings() -> Settings:
    settings = load_settings()
    if settings.shared_group is not None:
        os.umask(GROUP_UMASK)
    return settings


def emit_json(console: Console, document: Any) -> None:
    """Exactly one JSON document on stdout, for programs."""
    console.file.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
