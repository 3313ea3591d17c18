"""The evolutionary search: configuration, variation, evaluation, selection, the loop."""
