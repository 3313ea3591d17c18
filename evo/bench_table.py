"""`evo bench`'s printed table, from a result dict (`evo.bench_report.benchmark`) or a
`result.json` read back. Results written before a key existed (a row's `network`,
`tuning` or `peer`, the `best_peer`, a speedup) print "-" for it."""

from __future__ import annotations

from evo.host import host_label, same_host

SPEEDUPS = ("vs_program_only", "vs_metaschedule", "vs_torch_eager", "vs_best_peer")


def format_table(result: dict) -> str:
    """The rows as a table, then the best peer and the speedups."""
    width = max([24, *(len(row["name"]) for row in result["rows"])])
    # the capacity column: the ratio to the original's of the run's capacity measure
    # (results written before `capacity` existed measured the Fisher Potential)
    measure = result.get("capacity", {}).get("measure", "fisher")
    lines = [f"{result['model']}, batch 1, {result['threads']} thread(s); "
             f"discovered = individual {result['individual']}",
             f"{'row':{width}} {'ms':>10} {'spread':>7} {'MFLOPs':>9} {'params':>10} "
             f"{measure[:7]:>7}  what"]
    if result.get("host"):
        lines.insert(1, f"measured on {host_label(result['host'])}")
        elsewhere = [h for h in result.get("search_hosts", [])
                     if not same_host(h, result["host"])]
        lines[2:2] = [f"note: the search also ran on {host_label(h)}; programs it found "
                      "there are measured here" for h in elsewhere]
    for row in result["rows"]:
        ms = f"{row['ms']:.3f}" if row.get("ms") is not None else "-"
        spread = f"{row['spread']:.1%}" if row.get("spread") is not None else "-"
        flops = f"{row['flops'] / 1e6:.1f}" if row.get("flops") is not None else "-"
        params = f"{row['params']:,}" if row.get("params") is not None else "-"
        ratio = row.get("capacity_ratio", row.get("fisher_ratio"))  # the old key: Fisher
        fisher = f"{ratio:.2f}x" if ratio else "-"
        lines.append(f"{row['name']:{width}} {ms:>10} {spread:>7} {flops:>9} {params:>10} "
                     f"{fisher:>7}  {row['what']}")
        if row.get("error"):
            lines.append(f"{'':{width}} error: {row['error']}")
        if row.get("tuning"):
            lines.append(f"{'':{width}} {_tuning(row['tuning'])}")
        if row.get("breakdown"):
            lines.append(f"{'':{width}} {_inside(row['breakdown'])}")
    best = result.get("best_peer")
    lines.append(f"best peer: {best['name']}, {best['ms']:.3f} ms ({best['what']})" if best
                 else "best peer: -")
    speedup = result.get("speedup", {})
    for key in [*SPEEDUPS, *(k for k in speedup if k not in SPEEDUPS)]:
        value = speedup.get(key)
        lines.append(f"speedup {key}: {value:.2f}x" if value else f"speedup {key}: -")
    lines.extend(_head_to_head(result.get("head_to_head")))
    lines.extend(_notes(result))
    counts = sorted({row["processes"] for row in result["rows"]
                     if (row.get("processes") or 1) > 1})
    if counts:
        lines.append(f"TVM rows: the median of {'/'.join(map(str, counts))} fresh processes; "
                     "their spread is the range between processes")
    return "\n".join(lines)


def _head_to_head(raced: dict | None) -> list[str]:
    """The race's contenders (median and best window) and its speedups, the headline."""
    if not raced:
        return []
    lines = [f"head to head: {raced['rounds']} interleaved rounds of {raced['window_s']:g} s, "
             "each contender in its own process; a speedup is the median of the rounds' "
             "ratios (quartiles in brackets)"]
    for c in raced["contenders"]:
        error = raced["errors"].get(c["name"])
        if c["median_ms"] is None:
            lines.append(f"  {c['name']:24} - ({error or 'no time'})")
            continue
        lines.append(f"  {c['name']:24} {c['median_ms']:.3f} ms median, {c['min_ms']:.3f} "
                     f"best" + (f" (dropped: {error})" if error else ""))
    best = raced.get("best_peer")
    for key, value in raced["speedup"].items():
        if value is None:
            lines.append(f"  speedup {key}: -")
            continue
        low, high = raced["speedup_quartiles"][key]
        against = f" ({best})" if key == "vs_best_peer" and best else ""
        lines.append(f"  speedup {key}{against}: {value:.2f}x ({low:.2f}-{high:.2f})")
    return lines


def _notes(result: dict) -> list[str]:
    """The BlockSwap search's outcome and the discovered convs' throughput."""
    lines = []
    blockswap = result.get("blockswap")
    if blockswap and blockswap["chosen"] is None:
        least = min((c["violation"] for c in blockswap["tried"] if c["violation"] is not None),
                    default=None)
        lines.append(f"blockswap: no uniform factor is legal ({len(blockswap['tried'])} tried"
                     + (f", smallest violation {least:.3f})" if least is not None else ")"))
    gflops = result.get("conv_gflops")
    if gflops and gflops["tvm"] and gflops["torch"]:
        lines.append(f"discovered convs: {gflops['tvm']:.1f} GFLOP/s in TVM, "
                     f"{gflops['torch']:.1f} GFLOP/s in PyTorch eager on the same shapes "
                     f"({gflops['ratio']:.0%})")
        alone = sum(slot["tvm_ms"] for slot in gflops["slots"])
        inside = next((row["breakdown"]["conv_ms"] for row in result["rows"]
                       if row["name"] == "tvm_discovered" and row.get("breakdown")), None)
        lines.append(f"discovered convs: {alone:.3f} ms in sum, each timed alone and warm"
                     + (f"; {inside:.3f} ms inside the network" if inside is not None else ""))
    return lines


def _tuning(tuning: dict) -> str:
    """One line: what MetaSchedule's tuning did (`evo.bench.metaschedule.Tuning`)."""
    budget = tuning.get("budget_s")
    stopped = tuning.get("stopped")
    why = "by its time budget" if stopped == "time budget" else "when its trials were done"
    return (f"tuning: {tuning.get('tasks', '-')} tasks x {tuning.get('trials_per_task', '-')} "
            f"trials/task = {tuning.get('trials', '-')} asked, "
            f"{tuning.get('measured', '-')} measured, {tuning.get('cost_model', '-')} cost "
            f"model, {tuning.get('seconds', '-')} s"
            + (f" of a {budget:.0f} s budget" if budget else "")
            + (f", stopped {why}" if stopped else "")
            + (" (database reused)" if tuning.get("reused") else ""))


def _inside(breakdown: dict) -> str:
    """One line: where a row's inference time went (`evo.bench.op_profile`)."""
    return (f"inside: convs {breakdown['conv_ms']:.3f} ms, other ops "
            f"{breakdown['other_ms']:.3f} ms, VM {breakdown['runtime_ms']:.3f} ms "
            f"(instrumented run {breakdown['total_ms']:.3f} ms)")
