"""Errors the CLI turns into a one-line message and exit code 2."""

from __future__ import annotations


class UsageError(ValueError):
    """Bad input from the user: a wrong path, option, model, genome or run folder."""


class TargetError(ValueError):
    """A --target option that is not a valid TVM target."""


def user_error_types() -> tuple[type[BaseException], ...]:
    """Every exception type that means "bad input" rather than a bug."""
    from genomes.genes import GenomeFormatError
    from genomes.spec import SpecError

    return (UsageError, GenomeFormatError, SpecError, TargetError)
