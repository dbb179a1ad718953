"""The one error a benchmark part raises when it cannot measure what it set out to."""


class BenchError(Exception):
    """A measurement could not be made (a tool missing, a stage that never finished, ...)."""
