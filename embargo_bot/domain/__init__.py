"""The words of the job: packs, stages, deliveries, markings, times, errors.

Frozen dataclasses, enums and pure functions with no I/O, imported by every
other layer. Imports nothing from embargo-bot outside ``domain``.
"""
