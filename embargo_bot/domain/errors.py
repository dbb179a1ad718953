"""Every error embargo-bot raises on purpose.

The command line turns any of these into one clear line on stderr and a
non-zero exit; anything else is a bug.

    EmbargoBotError
     ├── ConfigError        a setting in the environment or .env is missing or invalid
     ├── ListError          a recipient list file is invalid, missing or not cleared for a pack
     ├── InputError         a command-line value or input file was refused
     ├── KeyMismatchError   the at-rest key is missing or cannot read the store
     ├── StoreError         the database cannot be opened or used
     │    ├── NotFoundError the store holds no such pack (or stage, or version)
     │    └── StoreMissingError  there is no store where the settings point
     ├── TemplateError      an email template cannot be loaded or rendered
     └── AuditError         the audit log does not verify

Library errors are wrapped where they enter (``raise ... from exc``) so the
cause is kept for logs while users see a sentence that says what to do.
"""

from __future__ import annotations

from collections.abc import Sequence


class EmbargoBotError(Exception):
    """Root of embargo-bot's own errors; ``str()`` is the message for users."""

    exit_code = 1


class ConfigError(EmbargoBotError):
    """A setting is missing or invalid."""

    exit_code = 78  # EX_CONFIG


class InputError(EmbargoBotError):
    """A value given on the command line, or a file it names, was refused."""

    exit_code = 65  # EX_DATAERR


class ListError(EmbargoBotError):
    """One or more recipient lists are invalid or cannot be used for a pack.

    ``problems`` holds every ``file:line: message`` line, so that an admin sees
    all of them at once rather than one per run.
    """

    exit_code = 65

    def __init__(self, summary: str, problems: Sequence[str] = ()) -> None:
        self.summary = summary
        self.problems = tuple(problems)
        super().__init__("\n".join([summary, *self.problems]) if self.problems else summary)


class KeyMismatchError(EmbargoBotError):
    """The at-rest key is missing, malformed, or not the one the store was written with."""

    exit_code = 78


class StoreError(EmbargoBotError):
    """The store cannot be opened or used."""

    exit_code = 74  # EX_IOERR


class NotFoundError(StoreError):
    """The store is fine but holds nothing by that name: usually a mistyped pack id."""

    exit_code = 66  # EX_NOINPUT


class StoreMissingError(StoreError):
    """No store where ``EMBARGO_BOT_DATABASE`` points, for a command that must not make one."""

    exit_code = 66  # EX_NOINPUT


class TemplateError(EmbargoBotError):
    """An email template is missing, has a syntax error, or uses an unknown variable."""

    exit_code = 65


class AuditError(EmbargoBotError):
    """The audit log was edited, cut or reordered; ``problems`` says where."""

    exit_code = 2

    def __init__(self, summary: str, problems: Sequence[str] = ()) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join([summary, *self.problems]))
