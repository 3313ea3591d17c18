"""Training a network found by a search, to check it keeps the original's accuracy.

    result = train(TrainSettings("tiny", genome.to_json(), "cifar10:DIR", epochs=200), "out/")
"""

from evo.training.trainer import TrainSettings, accuracy, default_out, train

__all__ = ["TrainSettings", "accuracy", "default_out", "train"]
