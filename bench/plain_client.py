"""Plain aiosmtplib, none of embargo-bot's code: the bound issue 12 measures us against.

The same bytes over the same number of reused connections, each message its
own ``sendmail`` with one recipient, as the service sends a notice.
"""

from __future__ import annotations

import asyncio
import time

import aiosmtplib


async def _send_all(port: int, message: bytes, count: int, connections: int, sender: str) -> float:
    clients = [
        aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, use_tls=False)
        for _ in range(connections)
    ]
    await asyncio.gather(*(client.connect() for client in clients))
    remaining = iter(range(count))

    async def worker(client: aiosmtplib.SMTP) -> None:
        for number in remaining:
            await client.sendmail(sender, [f"partner{number:05d}@partner.example"], message)

    started = time.perf_counter()
    await asyncio.gather(*(worker(client) for client in clients))
    elapsed = time.perf_counter() - started
    await asyncio.gather(*(client.quit() for client in clients))
    return count / elapsed


def plain_rate(port: int, *, message: bytes, count: int, connections: int, sender: str) -> float:
    """Messages a second that aiosmtplib alone puts through to the sink."""
    return asyncio.run(_send_all(port, message, count, connections, sender))
