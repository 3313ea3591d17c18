"""evo: neural architecture search as program transformation exploration."""


def load_model(path):
    """The transformed PyTorch model exported to `path` (see `evo.export.load_model`)."""
    from evo.export import load_model as load

    return load(path)
