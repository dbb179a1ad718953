"""How a connection to a server is secured, and which hosts are this machine.

Shared by the settings (which refuse clear text off this machine) and the
SMTP client; the words a setting takes are the enum's values.
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum


class SmtpSecurity(StrEnum):
    STARTTLS = "starttls"  # port 587: upgrade is required, never opportunistic
    TLS = "tls"  # port 465: implicit TLS
    NONE = "none"  # loopback relays only


def is_loopback(host: str) -> bool:
    if host.lower() in {"localhost", "localhost.localdomain"}:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
