"""Who is acting: the OS account, never anything the person running a command can set."""

from __future__ import annotations

import getpass
import os
import pwd


def current_user() -> str:
    """The OS account running this command: from the process's user id, not the environment."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return getpass.getuser()
