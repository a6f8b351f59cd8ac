#!/usr/bin/env bash
# The paper-scale measurements of issue 14 on the lent GPU, as one prepared step (the README's GPU table is filled from
# its output). With the GPU bundle (scripts/gpu/publish.sh), on the device:
#
#   scripts/gpu/paper-scale.sh                      # figures 3, 4, 9 float32; 10 float32 and bfloat16; notebook 01 headless
#   FIGURES=10 scripts/gpu/paper-scale.sh           # one figure (the device allows 10 minutes per command)
#
# It writes random-weights stand-ins of GPT-2, attn-only-4l and Pythia-2.8B (seed 0; 6.2 GB of disk) into a scratch hub
# cache, runs scripts/bench/paper-scale.sh with the bundle's workbook (each figure in its own process: load, compute, peak
# RSS; peak GPU memory sampled with nvidia-smi), and the bfloat16-vs-float32 accuracy check on the GPT-2 stand-in.
# Results in $OUT (at most 8 files): paper-scale.log, paper-scale-<device>.md, precision.txt, gpu-memory.txt, runs.tar.gz.
#
# Environment (defaults in brackets):
#   DEVICE [cuda]  FIGURES ["3 4 9 10"]  NOTEBOOK [1]  PRECISION [1]  PROMPTS [] (a dry run: DEVICE=cpu PROMPTS=2 FIGURES="3 9")
#   OUT [out/paper-scale]  STEP_TIMEOUT [420]  LIBTORCH_DIR, WORKBOOK_ARCHIVE, WORKBOOK_BUNDLE_DIR: see common.sh
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
export DEVICE="${DEVICE:-cuda}"
export FIGURES="${FIGURES:-3 4 9 10}"
export NOTEBOOK="${NOTEBOOK:-1}"
PRECISION="${PRECISION:-1}"
export STEP_TIMEOUT="${STEP_TIMEOUT:-420}"
OUT="${OUT:-$wb_root/out/paper-scale}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
scratch="$(mktemp -d)"
sampler=""
cleanup() { [[ -n "$sampler" ]] && kill "$sampler" 2>/dev/null; rm -rf "$scratch"; }
trap cleanup EXIT

wb_prepare
export WORKBOOK="$WB_HOME/workbook"
export HF_HUB_CACHE="${HF_HUB_CACHE:-$scratch/hub}"
export OUT_RUNS="$scratch/runs"
mkdir -p "$OUT_RUNS"

if [[ "$DEVICE" == cuda* ]] && command -v nvidia-smi >/dev/null 2>&1; then
  # Peak GPU memory over the whole run, sampled twice a second.
  (while true; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits 2>/dev/null | head -1; sleep 0.5; done) > "$scratch/gpu-memory.samples" &
  sampler=$!
fi

status=0
OUT="$OUT_RUNS" "$wb_root/scripts/bench/paper-scale.sh" 2>&1 | tee "$OUT/paper-scale.log" || status=1
(( ${PIPESTATUS[0]} == 0 )) || status=1

if [[ "$PRECISION" == 1 ]]; then
  wb_log "bfloat16 vs float32 on the GPT-2 stand-in, Figure 3's grid, 20 prompts per part"
  timeout --kill-after=10 "$STEP_TIMEOUT" "$WORKBOOK" bench precision --model gpt2 --task ioi --circuit ioi --dtype bfloat16 --device "$DEVICE" --prompts "${PROMPTS:-20}" \
    > "$OUT/precision.txt" 2>> "$OUT/paper-scale.log" || status=1
  cat "$OUT/precision.txt"
fi

if [[ -n "$sampler" ]]; then
  kill "$sampler" 2>/dev/null; sampler=""
  sort -n "$scratch/gpu-memory.samples" | tail -1 | awk '{print "peak GPU memory used over the run: " $1 " MiB (nvidia-smi, sampled every 0.5 s)"}' | tee "$OUT/gpu-memory.txt"
fi
cp "$OUT_RUNS"/paper-scale-*.md "$OUT/" 2>/dev/null
tar -C "$OUT_RUNS" -czf "$OUT/runs.tar.gz" . 2>/dev/null
wb_log "paper-scale.sh finished in ${SECONDS}s with exit $status; results in $OUT"
exit $status
