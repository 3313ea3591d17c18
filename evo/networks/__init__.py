"""Networks to search: the zoo, bring-your-own models, slots, and applying a genome.

    network = load_network("tiny")                     # or "file.py:factory"
    network.slots                                      # every conv the genome may change
    transform_network(network, genome).module          # the transformed nn.Module
"""

from evo.networks.base import Network, Slot
from evo.networks.loading import load_network, parse_input_shape
from evo.networks.transform import NetworkTransform, transform_network
from evo.networks.zoo import DEFAULT_INPUT_SHAPE, ZOO

__all__ = [
    "DEFAULT_INPUT_SHAPE",
    "ZOO",
    "Network",
    "NetworkTransform",
    "Slot",
    "load_network",
    "parse_input_shape",
    "transform_network",
]
