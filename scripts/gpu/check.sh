#!/usr/bin/env bash
# Issue 8's GPU checks in one command, for the lent GPU machine (Linux + PyTorch with CUDA in python3):
#
#   scripts/gpu/check.sh
#
# 1. every reference scenario of the bundled fixtures through `workbook patch --device $DEVICE`, compared with the
#    expected logits to 1e-4 (compare_logits.py); `run` on the device vs the CPU; `hooks` on the device;
# 2. `workbook selfcheck` (model and patching-engine identities, float32 matmul precision) on both fixture models,
#    and, on CUDA, what --allow-tf32 changes;
# 3. `workbook bench patching` (GPT-2-small shape, 16 tokens, 771-edge circuit's complement) at each batch size.
# Results go to $OUT: check.log, summary.json, summary.md (README-ready table) and steps.tar.gz (one JSON file per step).
# Exit code 1 when any check failed. Needs the bundle from scripts/gpu/publish.sh (gpu-bundle/, carried to the device).
#
# Environment (defaults in brackets):
#   DEVICE [cuda]            cpu exercises the whole flow on a machine without a GPU
#   OUT [out/gpu-check]      results folder (the device tool sets OUT to the folder it returns)
#   BENCH_BATCHES ["50 500 1000"]  BENCH_REPEAT [10]  BENCH_WARMUP [3]  BENCH_SEQ [16]
#   BENCH_TF32 [1 on cuda]   also time the largest batch with --allow-tf32
#   STEP_TIMEOUT [300]       seconds before a step is stopped
#   LIBTORCH_DIR, WORKBOOK_ARCHIVE, WORKBOOK_BUNDLE_DIR: see common.sh
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

DEVICE="${DEVICE:-cuda}"
OUT="${OUT:-$wb_root/out/gpu-check}"
BENCH_BATCHES="${BENCH_BATCHES-50 500 1000}"   # empty: no benchmark
BENCH_REPEAT="${BENCH_REPEAT:-10}"
BENCH_WARMUP="${BENCH_WARMUP:-3}"
BENCH_SEQ="${BENCH_SEQ:-16}"
if [[ "$DEVICE" == cuda* ]]; then BENCH_TF32="${BENCH_TF32:-1}"; else BENCH_TF32="${BENCH_TF32:-0}"; fi
STEP_TIMEOUT="${STEP_TIMEOUT:-300}"

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
scratch="$(mktemp -d)"
exec > >(tee "$OUT/check.log") 2>&1
tee_pid=$!
finish() {
  rm -rf "$scratch"
  exec >&- 2>&-
  wait "$tee_pid" 2>/dev/null
}
trap finish EXIT

: > "$OUT/steps.tsv"
# step NAME CMD...: runs one check with a timeout, records its exit code and duration, never stops the script.
step() {
  local name="$1"; shift
  local start=$SECONDS
  echo
  wb_log "== $name"
  timeout --kill-after=10 "$STEP_TIMEOUT" "$@"
  local rc=$?
  (( rc == 124 || rc == 137 )) && wb_log "$name: stopped after ${STEP_TIMEOUT}s"
  wb_log "$name: exit $rc after $((SECONDS - start))s"
  printf '%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - start))" >> "$OUT/steps.tsv"
}

wb_log "check.sh on $(uname -n) for device $DEVICE; results in $OUT"
uname -srm
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch; print('python3 torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())" 2>/dev/null \
  || echo "python3 has no torch (fine when LIBTORCH_DIR is set)"

wb_prepare
cat "$WB_HOME/../MANIFEST.txt" 2>/dev/null
wb="$WB_HOME/workbook"
fx="$WB_FIXTURES"
here="$wb_root/scripts/gpu"

for m in tiny-gpt2 tiny-neox; do
  step "patch-$m" bash -c "'$wb' patch --model '$fx/$m' --scenarios '$fx/$m-scenarios.json' --out '$scratch/$m-patched.json' --device '$DEVICE' \
    && python3 '$here/compare_logits.py' '$fx/$m-scenarios.json' '$scratch/$m-patched.json' --tol 1e-4 --json '$OUT/patch-$m.json'"
done

step "run-device-vs-cpu" bash -c "'$wb' run --model '$fx/tiny-neox' --tokens 3,141,59,265,358,97 --top 20 --json --device '$DEVICE' > '$OUT/run-device.json' \
  && '$wb' run --model '$fx/tiny-neox' --tokens 3,141,59,265,358,97 --top 20 --json --device cpu > '$scratch/run-cpu.json' \
  && python3 - '$scratch/run-cpu.json' '$OUT/run-device.json' <<'PY'
import json, sys
cpu, dev = (json.load(open(p))['top'] for p in sys.argv[1:3])
diff = max(abs(a['logit'] - b['logit']) for a, b in zip(cpu, dev))
same = [a['token'] for a in cpu] == [b['token'] for b in dev]
print(f\"run: top-20 tokens {'identical' if same else 'DIFFER'} on cpu and device; max logit difference {diff:.2e} (tol 1e-4)\")
sys.exit(0 if same and diff <= 1e-4 else 1)
PY"

step "hooks-device" bash -c "'$wb' hooks --model '$fx/tiny-gpt2' --device '$DEVICE' --json > '$OUT/hooks-device.json' \
  && python3 -c \"import json; h=json.load(open('$OUT/hooks-device.json'))['hooks']; print(len(h), 'hook points listed on the device')\""

for m in tiny-gpt2 tiny-neox; do
  step "selfcheck-$m" bash -c "'$wb' selfcheck --model '$fx/$m' --device '$DEVICE' --json > '$OUT/selfcheck-$m.json'"
done
if [[ "$DEVICE" == cuda* ]]; then
  # Informational: what TF32 does to a float32 matmul when asked for (the check passes either way).
  step "selfcheck-allow-tf32" bash -c "'$wb' selfcheck --model '$fx/tiny-gpt2' --device '$DEVICE' --allow-tf32 --checks float32-matmul --json > '$OUT/selfcheck-allow-tf32.json'"
fi

largest=0
for b in $BENCH_BATCHES; do
  (( b > largest )) && largest=$b
  step "bench-b$b" bash -c "'$wb' bench patching --device '$DEVICE' --batch $b --seq $BENCH_SEQ --repeat $BENCH_REPEAT --warmup $BENCH_WARMUP --json > '$OUT/bench-b$b.json'"
done
if [[ "$BENCH_TF32" == 1 && $largest -gt 0 ]]; then
  step "bench-b$largest-tf32" bash -c "'$wb' bench patching --device '$DEVICE' --batch $largest --seq $BENCH_SEQ --repeat $BENCH_REPEAT --warmup $BENCH_WARMUP --allow-tf32 --json > '$OUT/bench-b$largest-tf32.json'"
fi

echo
python3 "$here/summarize.py" "$OUT"
status=$?
# The device tool returns at most 8 files: keep check.log and the summaries loose, the per-step files in one archive.
# (The archive is built outside $OUT: tar refuses a folder that changes while it reads it.)
mapfile -t step_files < <(cd "$OUT" && find . -maxdepth 1 -type f ! -name check.log ! -name summary.md ! -name summary.json ! -name steps.tar.gz -printf '%f\n' | sort)
if (( ${#step_files[@]} > 0 )); then
  tar -C "$OUT" -czf "$scratch/steps.tar.gz" "${step_files[@]}" && mv "$scratch/steps.tar.gz" "$OUT/" && (cd "$OUT" && rm -f "${step_files[@]}")
fi
wb_log "check.sh finished in ${SECONDS}s with exit $status"
exit $status
