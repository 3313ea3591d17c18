"""Understanding a run: its status, the lineage of its individuals, which genes made
them faster, and a report with plots. Everything here only reads the run folder."""

from evo.analysis.snapshot import RunSnapshot, load_run

__all__ = ["RunSnapshot", "load_run"]
