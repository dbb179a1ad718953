"""What officials do: queue, clear, reschedule, amend, withdraw, preview, look.

Checks every input before anything is stored (``intake``, ``fields``), then
changes the store in one conditional transaction with its audit entry.
May import ``app`` (the wired parts), ``delivery`` (a test send goes at once),
``messages``, ``lists``, ``store``, ``security`` and ``domain``; never ``cli``.
"""
