"""Errors the CLI turns into a one-line message and exit code 2."""

from __future__ import annotations


class UsageError(ValueError):
    """Bad input from the user: a wrong path, option, model, genome or run folder."""


class TargetError(ValueError):
    """A --target option that is not a valid TVM target."""


class InfrastructureError(RuntimeError):
    """The measuring machinery failed (the compiler, the build workers, the Dask cluster,
    the timing device) and kept failing when retried: no candidate is to blame. A run
    stops on it without storing the generation under way, so it can be resumed."""


# Exit code of a command stopped by an InfrastructureError (bad input is 2).
INFRASTRUCTURE_EXIT = 3


def user_error_types() -> tuple[type[BaseException], ...]:
    """Every exception type that means "bad input" rather than a bug."""
    from genomes.genes import GenomeFormatError
    from genomes.spec import SpecError

    return (UsageError, GenomeFormatError, SpecError, TargetError)
