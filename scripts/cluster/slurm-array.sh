#!/usr/bin/env bash
# Runs a workbook sweep (eval, report, discover or roc) as a Slurm job array, one shard per array task, then merges
# the parts in a job that starts only when every shard succeeded. See README "Sharded sweeps on a cluster" and
# docs/cluster.md.
#
#   scripts/cluster/slurm-array.sh --shards 8 --dir runs/ioi-report [--partition gpu --gpus 1] -- \
#       report --model gpt2 --task ioi --device cuda --json
#
# It writes DIR/shard.sbatch and DIR/merge.sbatch, submits
#   sbatch --array=1-N ... DIR/shard.sbatch                  (task K runs: VERB ARGS --shard K/N --part DIR/parts/part-K-of-N.json)
#   sbatch --dependency=afterok:JOBID ... DIR/merge.sbatch   (workbook merge DIR/parts/part-*-of-N.json --out DIR/result.json)
# and the merged output lands in DIR/result.json (the JSON document), DIR/result.txt (what the verb prints) and, with
# --csv, DIR/rows.csv. --dry-run prints the scripts and the sbatch commands instead of submitting; --local runs the
# same job scripts here as background processes (no Slurm), then the merge.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: slurm-array.sh --shards N --dir DIR [options] -- VERB [VERB ARGUMENTS...]

  VERB                eval, report, discover or roc, with its arguments (not --shard, --part, --out or --csv)
  --shards N          number of shards = array tasks (each runs --shard K/N)
  --dir DIR           run folder: job scripts, parts/, logs/, result.json, result.txt (created; must hold no parts yet)
  --workbook CMD      how the nodes run the workbook (default: $WORKBOOK, else "workbook"), e.g.
                      "dotnet /opt/workbook/Workbook.Cli.dll" or "scripts/gpu/run.sh" (GPU bundle)
  --partition P       partition of the shard tasks (e.g. your GPU partition)
  --gpus G            GPUs per shard task, requested as --gres=gpu:G (default 0); pass --device cuda to the verb
  --time T            time limit of each shard task (sbatch --time)
  --max-parallel M    run at most M shards at once (--array=1-N%M)
  --merge-partition P partition of the merge job (default: the shards'; it never asks for a GPU)
  --sbatch-arg ARG    extra argument for both sbatch calls (repeatable), e.g. --sbatch-arg=--account=myproject
  --csv               also write the per-prompt rows to DIR/rows.csv (eval, report)
  --dry-run           write the job scripts, print the sbatch commands, submit nothing
  --local             no Slurm: run the shards here as background processes (at most --max-parallel at once), then merge
EOF
}

fail() { echo "slurm-array.sh: $*" >&2; exit 2; }

shards="" dir="" workbook="${WORKBOOK:-workbook}" partition="" gpus=0 time_limit="" max_parallel="" merge_partition=""
csv=0 dry_run=0 local_run=0 extra=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --shards) shards="${2:-}"; shift 2 ;;
        --shards=*) shards="${1#*=}"; shift ;;
        --dir) dir="${2:-}"; shift 2 ;;
        --dir=*) dir="${1#*=}"; shift ;;
        --workbook) workbook="${2:-}"; shift 2 ;;
        --workbook=*) workbook="${1#*=}"; shift ;;
        --partition) partition="${2:-}"; shift 2 ;;
        --partition=*) partition="${1#*=}"; shift ;;
        --gpus) gpus="${2:-}"; shift 2 ;;
        --gpus=*) gpus="${1#*=}"; shift ;;
        --time) time_limit="${2:-}"; shift 2 ;;
        --time=*) time_limit="${1#*=}"; shift ;;
        --max-parallel) max_parallel="${2:-}"; shift 2 ;;
        --max-parallel=*) max_parallel="${1#*=}"; shift ;;
        --merge-partition) merge_partition="${2:-}"; shift 2 ;;
        --merge-partition=*) merge_partition="${1#*=}"; shift ;;
        --sbatch-arg) extra+=("${2:-}"); shift 2 ;;
        --sbatch-arg=*) extra+=("${1#*=}"); shift ;;
        --csv) csv=1; shift ;;
        --dry-run) dry_run=1; shift ;;
        --local) local_run=1; shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; break ;;
        *) usage >&2; fail "unknown option '$1' (the verb and its arguments go after --)" ;;
    esac
done

[[ $# -gt 0 ]] || { usage >&2; fail "give the verb and its arguments after --"; }
verb="$1"; shift
case "$verb" in eval|report|discover|roc) ;; *) fail "'$verb' cannot be sharded; use eval, report, discover or roc" ;; esac
[[ "$shards" =~ ^[0-9]+$ && "$shards" -ge 1 && "$shards" -le 100000 ]] || fail "--shards must be a whole number from 1 to 100000, got '$shards'"
[[ -n "$dir" ]] || fail "give --dir DIR, the run folder"
[[ "$gpus" =~ ^[0-9]+$ ]] || fail "--gpus must be a whole number, got '$gpus'"
[[ -z "$max_parallel" || ( "$max_parallel" =~ ^[0-9]+$ && "$max_parallel" -ge 1 ) ]] || fail "--max-parallel must be a whole number of at least 1, got '$max_parallel'"
[[ -n "$workbook" ]] || fail "--workbook is empty"
[[ "$dry_run" -eq 0 || "$local_run" -eq 0 ]] || fail "choose --dry-run or --local, not both"
for a in "$@"; do
    case "$a" in
        --shard|--shard=*|--part|--part=*|--out|--out=*|-o|--csv|--csv=*)
            fail "do not pass $a to the verb: the script adds --shard/--part, and the merge writes --out/--csv (use --csv here)" ;;
    esac
done
if [[ "$csv" -eq 1 && "$verb" != eval && "$verb" != report ]]; then fail "--csv: only eval and report have per-prompt rows"; fi
device_cuda=0
for a in "$@"; do [[ "$a" == cuda* || "$a" == --device=cuda* ]] && device_cuda=1; done
if [[ "$gpus" -gt 0 && "$device_cuda" -eq 0 ]]; then echo "slurm-array.sh: note: --gpus $gpus but the verb has no --device cuda; the shards would run on the CPU" >&2; fi
if [[ "$device_cuda" -eq 1 && "$gpus" -eq 0 && "$local_run" -eq 0 ]]; then echo "slurm-array.sh: note: --device cuda but no --gpus; the tasks get no GPU unless your partition gives one by default" >&2; fi

mkdir -p "$dir/parts" "$dir/logs"
dir="$(cd "$dir" && pwd)"
if compgen -G "$dir/parts/part-*.json" > /dev/null; then fail "$dir/parts already holds part files; remove them or choose another --dir"; fi

# One quoted word per argument, so that the job scripts run exactly the arguments given here.
quote() { local out="" a; for a in "$@"; do out+=" $(printf '%q' "$a")"; done; printf '%s' "${out# }"; }
verb_args="$(quote "$verb" "$@")"
parts_list=""
for ((k = 1; k <= shards; k++)); do parts_list+=" $(quote "$dir/parts/part-$k-of-$shards.json")"; done
merge_outputs="--out $(quote "$dir/result.json")"
[[ "$csv" -eq 1 ]] && merge_outputs+=" --csv $(quote "$dir/rows.csv")"

cat > "$dir/shard.sbatch" <<EOF
#!/usr/bin/env bash
# One shard of a workbook $verb run, written by scripts/cluster/slurm-array.sh. Slurm sets SLURM_ARRAY_TASK_ID (1..$shards).
set -euo pipefail
cd $(quote "$PWD")
k="\${SLURM_ARRAY_TASK_ID:?run this as a task of a Slurm job array (or set SLURM_ARRAY_TASK_ID)}"
exec $workbook $verb_args --shard "\$k/$shards" --part $(quote "$dir/parts/part-")"\$k"$(quote "-of-$shards.json")
EOF
cat > "$dir/merge.sbatch" <<EOF
#!/usr/bin/env bash
# The merge of a workbook $verb run of $shards shards, written by scripts/cluster/slurm-array.sh; runs after every shard succeeded.
set -euo pipefail
cd $(quote "$PWD")
$workbook merge$parts_list $merge_outputs > $(quote "$dir/result.txt")
echo "merged $shards parts: $(quote "$dir/result.json")"
EOF
chmod +x "$dir/shard.sbatch" "$dir/merge.sbatch"

array="1-$shards${max_parallel:+%$max_parallel}"
shard_cmd=(sbatch --parsable "--array=$array" "--job-name=wb-$verb" "--output=$dir/logs/shard-%a.log")
[[ -n "$partition" ]] && shard_cmd+=("--partition=$partition")
[[ "$gpus" -gt 0 ]] && shard_cmd+=("--gres=gpu:$gpus")
[[ -n "$time_limit" ]] && shard_cmd+=("--time=$time_limit")
shard_cmd+=(${extra[@]+"${extra[@]}"} "$dir/shard.sbatch")
merge_cmd=(sbatch --parsable "--job-name=wb-$verb-merge" "--output=$dir/logs/merge.log")
merge_partition="${merge_partition:-$partition}"
[[ -n "$merge_partition" ]] && merge_cmd+=("--partition=$merge_partition")
merge_cmd+=(${extra[@]+"${extra[@]}"})

if [[ "$dry_run" -eq 1 ]]; then
    echo "# $dir/shard.sbatch"; cat "$dir/shard.sbatch"
    echo "# $dir/merge.sbatch"; cat "$dir/merge.sbatch"
    echo "# submit:"
    echo "$(quote "${shard_cmd[@]}")"
    echo "$(quote "${merge_cmd[@]}" "--dependency=afterok:JOBID" "$dir/merge.sbatch")"
    exit 0
fi

if [[ "$local_run" -eq 1 ]]; then
    limit="${max_parallel:-$shards}" failed=0 running=0
    declare -A pids=()
    for ((k = 1; k <= shards; k++)); do
        if [[ "$running" -ge "$limit" ]]; then wait -n || failed=1; running=$((running - 1)); fi
        SLURM_ARRAY_TASK_ID=$k bash "$dir/shard.sbatch" > "$dir/logs/shard-$k.log" 2>&1 &
        pids[$k]=$!; running=$((running + 1))
    done
    for k in "${!pids[@]}"; do wait "${pids[$k]}" 2>/dev/null || true; done
    for ((k = 1; k <= shards; k++)); do
        [[ -f "$dir/parts/part-$k-of-$shards.json" ]] || { echo "slurm-array.sh: shard $k/$shards failed; see $dir/logs/shard-$k.log" >&2; failed=1; }
    done
    [[ "$failed" -eq 0 ]] || exit 1
    bash "$dir/merge.sbatch" > "$dir/logs/merge.log" 2>&1 || { echo "slurm-array.sh: the merge failed: $(tail -n 1 "$dir/logs/merge.log")" >&2; exit 1; }
    echo "ran $shards shards here and merged them: $dir/result.json"
    exit 0
fi

command -v sbatch > /dev/null || fail "sbatch is not on PATH (use --dry-run to see the commands, or --local to run the shards here)"
job="$("${shard_cmd[@]}")" || fail "sbatch refused the shards (exit $?)"
job="${job%%;*}"   # --parsable prints "jobid" or "jobid;cluster"
[[ "$job" =~ ^[0-9]+$ ]] || fail "sbatch did not print a job id for the shards (got '$job')"
merge_job="$("${merge_cmd[@]}" "--dependency=afterok:$job" "$dir/merge.sbatch")" || fail "sbatch refused the merge job (exit $?; the shards are job $job)"
merge_job="${merge_job%%;*}"
echo "submitted $shards shards as job array $job, and the merge as job $merge_job (runs when every shard succeeded)"
echo "results: $dir/result.json and $dir/result.txt; logs: $dir/logs/"
