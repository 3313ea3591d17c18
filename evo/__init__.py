"""evo: neural architecture search as program transformation exploration."""


def load_model(path, trust_model_code: bool = False):
    """The transformed PyTorch model exported to `path` (see `evo.export.load_model`);
    a folder naming model code (not a zoo model) needs `trust_model_code=True`."""
    from evo.export import load_model as load

    return load(path, trust_model_code)
