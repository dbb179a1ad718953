"""Bounces: delivery status notifications read from the bounce mailbox over IMAP.

``dsn`` parses one report (pure, RFC 3464), ``verp`` builds and reads return
paths that name a delivery, ``matching`` decides which delivery a report is
about, ``mailbox`` speaks IMAP (imaplib, in a worker thread) and ``reader``
applies one read of the mailbox. May import ``store``, ``security`` and ``domain``.
"""
