"""The entry point: parse the arguments, run the command, turn errors into one line.

Every error embargo-bot raises on purpose becomes one clear message on stderr
and a non-zero exit; ``--json`` puts exactly one JSON document on stdout.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from embargo_bot.cli.parser import build_parser
from embargo_bot.domain.errors import EmbargoBotError

if TYPE_CHECKING:
    import argparse

    from rich.console import Console

# Everything this process writes (the store, previews, demo output) holds or
# may hold embargoed material: no access for other users, ever.
PRIVATE_UMASK = 0o077


def entry_point() -> int:
    """The process: ``embargo-bot`` and ``python -m embargo_bot``.

    Importing a command's libraries (SQLAlchemy, pydantic, rich...) builds
    hundreds of thousands of objects that live as long as the process and are
    almost never garbage; the cyclic collector walking them while they are
    imported, and again when the interpreter exits, cost a short command more
    than its own work. So it is off while they are imported, then told to leave
    them alone (``gc.freeze``), and the collection at exit is skipped the same
    way: everything that must be closed or flushed (the store, files, logs) is
    closed by the code that opened it, never by the collector.
    ``main`` itself, as tests call it, leaves the collector as it finds it.
    """
    gc.disable()
    try:
        return main(loaded=_loaded)
    finally:
        gc.freeze()


def _loaded() -> None:
    gc.freeze()
    gc.enable()


def main(argv: Sequence[str] | None = None, *, loaded: Callable[[], None] | None = None) -> int:
    """Run one command; ``loaded`` is called once its modules are imported, before it runs."""
    args = build_parser().parse_args(argv)
    previous_umask = os.umask(PRIVATE_UMASK)
    try:
        from rich.console import Console

        module_name, _, function = args.handler.partition(":")
        module = importlib.import_module(f"embargo_bot.cli.{module_name}")
        handler: Callable[[argparse.Namespace, Console], int] = getattr(module, function)
        if loaded is not None:
            loaded()
        return handler(args, Console())
    except EmbargoBotError as exc:
        # Plain text, never wrapped: each "file:line: message" stays one line to grep.
        sys.stderr.write(f"embargo-bot: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        fault = _store_fault(exc)
        if fault is None:
            raise
        sys.stderr.write(f"embargo-bot: {fault}\n")
        return fault.exit_code
    finally:
        os.umask(previous_umask)


def _store_fault(exc: Exception) -> EmbargoBotError | None:
    """A fault of the store's file or disk (full, overwritten) met mid-command, as one line."""
    from pathlib import Path

    from embargo_bot.store import STORE_FAULTS, describe_fault

    if not isinstance(exc, STORE_FAULTS):
        return None
    try:
        from embargo_bot.app import store_target
        from embargo_bot.settings import load_settings

        path = store_target(load_settings()).path
    except EmbargoBotError:
        path = Path(os.environ.get("EMBARGO_BOT_DATABASE", "the store"))
    return describe_fault(exc, path)
