"""The command line: arguments, what each command does, and how results look.

Owns ``embargo-bot``'s parser, its commands, their output (rich tables for
people, ``--json`` for programs) and the demo. The outermost layer: it may
import every other subpackage, and nothing imports it.
"""
