#!/usr/bin/env bash
# Reproduce benchmarks/RESULTS.md: `evo bench` on each network, one after the other.
#   bash benchmarks/run.sh [BUDGET] [TRIALS] [FISHER_BN]
# BUDGET is each search's time (the full search and its program-only twin; default 10m,
# the paper's protocol is 2h); TRIALS the MetaSchedule trials of row 2 (default 16);
# FISHER_BN the capacity check's BatchNorm mode (default running; batch is the paper's).
# MODELS (environment) picks the networks, default the issue's goal networks first:
#   MODELS="resnet34 densenet161 resnext29_2x64d resnet18".
# Results go to runs/bench-MODEL-BUDGET-FISHER_BN/result.json; rerunning resumes or
# reuses the searches already there. Run it on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
BUDGET=${1:-10m}
TRIALS=${2:-16}
FISHER_BN=${3:-running}
MODELS=${MODELS:-"resnet34 densenet161 resnext29_2x64d resnet18"}
for MODEL in $MODELS; do
  echo "== $MODEL, $BUDGET per search, MetaSchedule $TRIALS trials, fisher-bn $FISHER_BN" >&2
  .venv/bin/evo bench --model "$MODEL" --time-budget "$BUDGET" --fisher-bn "$FISHER_BN" \
    --metaschedule-trials "$TRIALS" --out "runs/bench-$MODEL-$BUDGET-$FISHER_BN" --quiet
done
