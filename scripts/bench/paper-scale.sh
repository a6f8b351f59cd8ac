#!/usr/bin/env bash
# Paper-scale benchmarks: the evaluations behind each of the paper's figures at its prompt counts (Figure 3: 30 IOI parts
# x 100 prompts x 8 methodologies; Figure 4: 30 x 200 prompts x 7 ABC sizes; Figure 9: Docstring, 50 prompts x 8;
# Figure 10: Sports Players, 200 prompts x 4) on random-weights stand-ins of the paper's models, each in its own
# process: wall time (load, compute, total) and peak resident memory. Writes a log and a Markdown table.
#
#   scripts/bench/paper-scale.sh                       # every figure on this machine's CPU
#   DEVICE=cuda scripts/bench/paper-scale.sh           # on a GPU (scripts/gpu/check.sh runs it with the GPU bundle)
#
# Environment (defaults in brackets):
#   FIGURES ["3 4 9 10"]        which figures
#   DEVICE [cpu]  DTYPE [float32]  HALF_FIGURES [10 on cuda]: figures also timed in bfloat16
#   PROMPTS []                 prompts per part instead of the paper's (a quick dry run: PROMPTS=2)
#   REUSE_COMPARISON [0]       1: also time Figure 3 without work sharing (--no-reuse), for the saving
#   PARTS_PER_ORDER []         IOI figures on the first N templates of each order only (a partial, quicker measurement)
#   NOTEBOOK [0]               1: also run notebooks/01-ioi.dib headless at paper scale (per-cell times in the log)
#   MIN_FREE_GB_PYTHIA [16]    Figure 10 (Pythia-2.8B shape) runs only with this much memory available (free -g)
#   OUT [scripts/bench/results]  results: paper-scale-<device>.log, paper-scale-<device>.md, one JSON file per run
#   HF_HUB_CACHE [${TMPDIR:-/tmp}/workbook-standins]  where the stand-ins are written (seed 0) and found
#   WORKBOOK []                the command to run (default: the Release build of lib/Workbook.Cli, built if needed)
#   STEP_TIMEOUT [5400]        seconds before one run is stopped
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
FIGURES="${FIGURES:-3 4 9 10}"
DEVICE="${DEVICE:-cpu}"
DTYPE="${DTYPE:-float32}"
if [[ "$DEVICE" == cuda* ]]; then HALF_FIGURES="${HALF_FIGURES-10}"; else HALF_FIGURES="${HALF_FIGURES-}"; fi
PROMPTS="${PROMPTS:-}"
REUSE_COMPARISON="${REUSE_COMPARISON:-0}"
NOTEBOOK="${NOTEBOOK:-0}"
MIN_FREE_GB_PYTHIA="${MIN_FREE_GB_PYTHIA:-16}"
STEP_TIMEOUT="${STEP_TIMEOUT:-5400}"
OUT="${OUT:-$root/scripts/bench/results}"
export HF_HUB_CACHE="${HF_HUB_CACHE:-${TMPDIR:-/tmp}/workbook-standins}"
mkdir -p "$OUT" "$HF_HUB_CACHE"
OUT="$(cd "$OUT" && pwd)"
tag="${DEVICE//:/}"
log="$OUT/paper-scale-$tag.log"
table="$OUT/paper-scale-$tag.md"

if [[ -z "${WORKBOOK:-}" ]]; then
  dll="$root/lib/Workbook.Cli/bin/Release/net10.0/Workbook.Cli.dll"
  [[ -f "$dll" ]] || dotnet build -c Release "$root/lib/Workbook.Cli" >&2 || { echo "error: the Release build failed" >&2; exit 1; }
  WORKBOOK="dotnet $dll"
fi
timer=()
[[ -x /usr/bin/time ]] && timer=(/usr/bin/time -v)

say() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$log" >&2; }
machine() { say "load: $(cut -d' ' -f1-3 /proc/loadavg); memory: $(free -g | awk '/^Mem:/ {print $7 " GB available of " $2 " GB"}')"; }

: > "$log"
say "paper-scale benchmarks on $(uname -n): device $DEVICE, dtype $DTYPE, figures $FIGURES${PROMPTS:+, $PROMPTS prompts per part, not the paper counts}"
say "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$log" >&2
say "stand-ins in $HF_HUB_CACHE (random weights, seed 0; not the real models)"

# The stand-ins each figure needs (written once; the cache keeps them).
declare -A need=([3]=gpt2 [4]=gpt2 [9]=attn-only-4l [10]=pythia-2.8b-deduped)
for f in $FIGURES; do
  like="${need[$f]:-}"
  [[ -n "$like" ]] || { say "unknown figure $f (3, 4, 9, 10)"; exit 1; }
  if ! $WORKBOOK models list --json 2>/dev/null | grep -q "\"alias\":\"$like\"[^}]*RANDOM WEIGHTS"; then
    if [[ "$like" == pythia* ]] && (( $(free -g | awk '/^Mem:/ {print $7}') < MIN_FREE_GB_PYTHIA )) && [[ "${FORCE:-0}" != 1 ]]; then
      continue # reported below, where Figure 10 is skipped
    fi
    say "writing the $like stand-in"
    $WORKBOOK models random --like "$like" --seed 0 --quiet >> "$log" 2>&1 || { say "could not write the $like stand-in"; exit 1; }
  fi
done

# table_row JSON NAME: one Markdown row from a `bench figure --json` result.
table_row() {
  python3 - "$1" "$2" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
model = r["model"] + (" (random weights)" if r["randomWeights"] else "")
print(f"| {sys.argv[2]} | {model}, {r['dType']} | {r['deviceName']} | {r['prompts']:,} x {r['methodologies']} | "
      f"{r['loadSeconds']:.1f} | {r['computeSeconds']:.1f} | {r['peakRssBytes'] / 2**30:.2f} |")
PY
}

rows=()
status=0
# run NAME ARGS...: one `workbook bench figure` in its own process, with /usr/bin/time -v around it.
run() {
  local name="$1"; shift
  machine
  say "== $name: workbook bench figure $*"
  local json="$OUT/paper-scale-$tag-$name.json" start=$SECONDS
  local parts=()
  [[ -n "${PARTS_PER_ORDER:-}" && ( "$1" == 3 || "$1" == 4 ) ]] && parts=(--parts-per-order "$PARTS_PER_ORDER")
  timeout --kill-after=10 "$STEP_TIMEOUT" "${timer[@]}" $WORKBOOK bench figure "$@" "${parts[@]}" --device "$DEVICE" --json ${PROMPTS:+--prompts $PROMPTS} \
    > "$json" 2> >(tee -a "$log" >&2)
  local rc=$?
  say "$name: exit $rc after $((SECONDS - start)) s"
  machine
  if (( rc != 0 )); then status=1; rows+=("| $name | failed (exit $rc) | | | | | |"); return; fi
  rows+=("$(table_row "$json" "$name")")
}

for f in $FIGURES; do
  if [[ "$f" == 10 ]] && (( $(free -g | awk '/^Mem:/ {print $7}') < MIN_FREE_GB_PYTHIA )) && [[ "${FORCE:-0}" != 1 ]]; then
    say "figure 10 skipped: the Pythia-2.8B shape needs ${MIN_FREE_GB_PYTHIA} GB available and $(free -g | awk '/^Mem:/ {print $7}') GB are (FORCE=1 runs it anyway)"
    rows+=("| figure 10 | skipped: less than ${MIN_FREE_GB_PYTHIA} GB available | | | | | |")
    continue
  fi
  run "figure$f" "$f" --dtype "$DTYPE"
  [[ " $HALF_FIGURES " == *" $f "* ]] && run "figure$f-bfloat16" "$f" --dtype bfloat16
  [[ "$f" == 3 && "$REUSE_COMPARISON" == 1 ]] && run "figure3-no-reuse" 3 --dtype "$DTYPE" --no-reuse
done

if [[ "$NOTEBOOK" == 1 ]]; then
  machine
  say "== notebooks/01-ioi.dib headless at the paper's scale"
  start=$SECONDS
  timeout --kill-after=10 "$STEP_TIMEOUT" "${timer[@]}" $WORKBOOK notebook run "$root/notebooks/01-ioi.dib" --device "$DEVICE" ${PROMPTS:+--prompts $PROMPTS} \
    --out "$OUT/paper-scale-$tag-01-ioi.html" >> "$log" 2>&1 || status=1
  say "01-ioi: $((SECONDS - start)) s"
fi

{
  echo "Paper-scale benchmarks, device $DEVICE ($(date -u +%Y-%m-%d)), random-weights stand-ins. Load: see $(basename "$log")."
  echo
  echo "| run | model, dtype | hardware | prompts x methodologies | load (s) | compute (s) | peak RSS (GiB) |"
  echo "|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
} > "$table"
cat "$table" | tee -a "$log"
exit $status
