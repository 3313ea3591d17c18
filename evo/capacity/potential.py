"""`FisherPotential`: a network's Fisher Potential per genome, cached by the neural part;
and `violation`, how far a candidate falls short of the capacity constraint."""

from __future__ import annotations

from pathlib import Path

from evo.capacity.cache import FisherCache
from evo.capacity.data import load_batch, parse_data
from evo.capacity.fisher import BN_MODES, FisherResult, fisher_potential
from evo.errors import UsageError
from evo.networks import Network, transform_network
from evo.networks.threads import torch_threads
from genomes.genome import NetworkGenome

SCOPES = ("network", "layer")


class FisherPotential:
    """The Fisher Potential of `network` transformed by genomes, on one fixed minibatch.

    The batch comes from `data` and `seed`; weights are initialised from `seed`.
    Results are cached in memory by the genome's neural part (program genes do not
    change it) and, with `cache_path`, in an SQLite file keyed by model identity,
    input shape, neural-part hash, data, seed, batch size and `bn`.

    `bn` is how BatchNorm normalises while it is measured (`evo.capacity.fisher`):
    "running" (default: its initial running statistics, so BatchNorm is the identity,
    and transformed convs inherit the original conv's weights) or "batch" (the
    minibatch's statistics, fresh weights per transformed conv; the paper's setting).

    Each computation runs torch on `threads` threads (restored afterwards); one by
    default (see `evo.networks.threads`).
    """

    def __init__(self, network: Network, data: str = "synthetic", seed: int = 0,
                 batch: int = 16, cache_path: str | Path | None = None,
                 threads: int = 1, bn: str = "running") -> None:
        if not isinstance(batch, int) or batch < 2:
            raise UsageError(f"fisher batch {batch!r}: must be an integer >= 2 "
                             f"(BatchNorm needs more than one sample)")
        if len(network.output_shape) != 2:
            raise UsageError(f"model {network.name}: output shape {network.output_shape} is "
                             f"not (batch, classes) logits; the Fisher Potential needs them "
                             f"(--program-only or --capacity params/flops do not)")
        if bn not in BN_MODES:
            raise UsageError(f"fisher bn {bn!r}: choose one of {', '.join(BN_MODES)}")
        if not isinstance(threads, int) or threads < 1:
            raise UsageError(f"fisher threads {threads!r}: must be an integer >= 1")
        self.network = network
        self.threads = threads
        self.data = parse_data(data)
        self.seed = seed
        self.batch = batch
        self.bn = bn
        self.x, self.y = load_batch(self.data, network.input_shape[1:], batch,
                                    network.output_shape[1], seed)
        self._memory: dict[str, FisherResult] = {}
        self._disk = FisherCache(cache_path) if cache_path is not None else None
        self.computed = 0

    def of(self, genome: NetworkGenome) -> FisherResult:
        """The Fisher Potential of the network transformed by `genome`'s neural genes."""
        neural = genome.neural
        neural_hash = neural.hash()
        if neural_hash in self._memory:
            return self._memory[neural_hash]
        key = (self.network.identity or self.network.name, tuple(self.network.input_shape),
               neural_hash, self.data.identity, self.seed, self.batch, self.bn)
        result = self._disk.get(key) if self._disk is not None else None
        if result is None:
            result = self._compute(neural)
            if self._disk is not None:
                self._disk.put(key, result)
        self._memory[neural_hash] = result
        return result

    def original(self) -> FisherResult:
        return self.of(NetworkGenome())

    def _compute(self, neural: NetworkGenome) -> FisherResult:
        self.computed += 1
        transform = transform_network(self.network, neural, seed=self.seed, share_weights=True,
                                      inherit=self.bn == "running")
        if transform.error is not None or transform.module is None:
            return FisherResult(None, {}, transform.error)
        try:
            with torch_threads(self.threads):
                return fisher_potential(transform.module, self.network.slots, self.x, self.y,
                                        self.bn)
        except RuntimeError as exc:  # e.g. out of memory: a value for this candidate
            return FisherResult(None, {}, f"fisher: {type(exc).__name__}: {exc}"[:300])

    def close(self) -> None:
        if self._disk is not None:
            self._disk.close()


def violation(original: FisherResult, candidate: FisherResult, threshold: float = 1.0,
              scope: str = "network") -> float | None:
    """0.0 when `candidate` keeps at least `threshold` x the original's potential.

    Otherwise the relative shortfall: at network scope `threshold - cand/orig` of the
    totals; at layer scope the sum over slots of `max(0, threshold - cand/orig)` of
    each slot's potential (slots with no original potential are skipped). None when
    either result has an error.
    """
    if scope not in SCOPES:
        raise UsageError(f"scope {scope!r}: expected one of {', '.join(SCOPES)}")
    if (original.error is not None or candidate.error is not None
            or original.total is None or candidate.total is None):
        return None
    if scope == "network":
        return _shortfall(original.total, candidate.total, threshold)
    return sum(_shortfall(value, candidate.per_slot.get(slot_id, 0.0), threshold)
               for slot_id, value in original.per_slot.items())


def _shortfall(original: float, candidate: float, threshold: float) -> float:
    if original <= 0.0:
        return 0.0
    return max(0.0, threshold - candidate / original)
