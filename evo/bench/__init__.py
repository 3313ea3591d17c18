"""End-to-end benchmarking: whole networks as one compiled TVM module, and baselines.

    network = to_relax(module, input_shape, plans=plans)     # our conv programs
    row = tvm_end_to_end(module, input_shape, target, plans=plans, threads=2)
    eager = torch_end_to_end(module, input_shape, threads=2)
    ort = peer_end_to_end("onnxruntime", module, input_shape, threads=2)
    tuned, tuning = metaschedule_end_to_end("resnet18", (1, 3, 32, 32), "out/ms",
                                            trials_per_task=64)
    choice = blockswap_baseline(network, fisher_violation(fisher), program=TEMPLATE_SCHEDULE)

MetaSchedule tuning runs in a child process (`python -m evo.bench.metaschedule_child`).
"""

from evo.bench.blockswap import (
    BlockSwapChoice,
    Candidate,
    blockswap_baseline,
    fisher_violation,
    uniform_genome,
)
from evo.bench.compile import Agreement, check_against_torch, compile_network, run_network
from evo.bench.conv_throughput import ConvThroughput, conv_throughput, total_gflops
from evo.bench.end_to_end import EndToEnd, genome_end_to_end, torch_end_to_end, tvm_end_to_end
from evo.bench.metaschedule import Tuning, metaschedule_end_to_end
from evo.bench.peers import DEFAULT_PEERS, PEERS, peer_end_to_end
from evo.bench.relax_import import ConvProgramError, RelaxNetwork, to_relax
from evo.bench.timing import (
    Latency,
    set_tvm_threads,
    time_callable,
    time_executable,
    time_torch,
)

__all__ = [
    "DEFAULT_PEERS",
    "PEERS",
    "Agreement",
    "BlockSwapChoice",
    "Candidate",
    "ConvThroughput",
    "ConvProgramError",
    "EndToEnd",
    "Latency",
    "RelaxNetwork",
    "Tuning",
    "blockswap_baseline",
    "check_against_torch",
    "compile_network",
    "conv_throughput",
    "fisher_violation",
    "genome_end_to_end",
    "metaschedule_end_to_end",
    "peer_end_to_end",
    "run_network",
    "set_tvm_threads",
    "time_callable",
    "time_executable",
    "time_torch",
    "to_relax",
    "torch_end_to_end",
    "total_gflops",
    "tvm_end_to_end",
    "uniform_genome",
]
