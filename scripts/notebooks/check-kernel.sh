#!/usr/bin/env bash
# Runs notebooks the way VS Code does — in the last Polyglot Notebooks kernel (through dotnet-repl 0.3.259, which can
# run a .dib headless), with the real first cell (#r "nuget: ..." and #load of artifacts/notebook/workbook.csx) —
# instead of the in-process runner, which replaces that cell. Exit code 0 when every cell of every notebook succeeds.
#
#   scripts/notebooks/check-kernel.sh [NOTEBOOK.dib ...]     (default: every notebook)
#
# By default the first cell's `#r "nuget: TorchSharp-cpu, 0.107.0"` is swapped for the Linux pair that the build has
# already restored (`TorchSharp` + `libtorch-cpu-linux-x64`), to avoid TorchSharp-cpu's 1.4 GB download; FULL=1 keeps
# the cell as written. Needs: a built repository (dotnet build Workbook.sln) and the NuGet registry for dotnet-repl.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
tools="${TMPDIR:-/tmp}/workbook-dotnet-repl"
[ -x "$tools/dotnet-repl" ] || dotnet tool install dotnet-repl --version 0.3.259 --tool-path "$tools" >/dev/null
[ -f "$root/artifacts/notebook/workbook.csx" ] || { echo "error: build first (dotnet build Workbook.sln) to write artifacts/notebook/workbook.csx" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/notebooks"
ln -s "$root/artifacts" "$work/artifacts"
status=0
notebooks=("$@")
[ ${#notebooks[@]} -gt 0 ] || notebooks=("$root"/notebooks/*.dib)
for nb in "${notebooks[@]}"; do
  name="$(basename "$nb")"
  if [ "${FULL:-0}" = 1 ]; then cp "$nb" "$work/notebooks/$name"
  else sed 's|#r "nuget: TorchSharp-cpu, 0.107.0"|#r "nuget: TorchSharp, 0.107.0"\n#r "nuget: libtorch-cpu-linux-x64, 2.10.0"|' "$nb" > "$work/notebooks/$name"; fi
  start=$SECONDS
  if (cd "$work/notebooks" && WORKBOOK_EMBEDDED_ONLY="${WORKBOOK_EMBEDDED_ONLY:-1}" "$tools/dotnet-repl" --run "$name" --exit-after-run \
        --output-path "$work/${name%.dib}.ipynb" > "$work/${name%.dib}.log" 2>&1); then
    echo "ok      $name ($((SECONDS - start)) s)"
  else
    echo "FAILED  $name ($((SECONDS - start)) s); last lines:"; tail -n 20 "$work/${name%.dib}.log"; status=1
  fi
done
exit $status
