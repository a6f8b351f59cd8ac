#!/usr/bin/env bash
# Runs notebooks the way VS Code does — in the last Polyglot Notebooks kernel (through dotnet-repl 0.3.259, which can
# run a .dib headless), with the real parameters and setup cells (#load of artifacts/notebook/workbook.csx, then
# TorchBackend.Load(Device), which loads the libtorch the build restored) — instead of the in-process runner, which
# replaces the setup cell. Exit code 0 when every cell of every notebook succeeds.
#
#   scripts/notebooks/check-kernel.sh [NOTEBOOK.dib ...]     (default: every notebook)
#
# Needs: a built repository (dotnet build Workbook.sln) and the NuGet registry for dotnet-repl.
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
  cp "$nb" "$work/notebooks/$name"
  start=$SECONDS
  if (cd "$work/notebooks" && WORKBOOK_EMBEDDED_ONLY="${WORKBOOK_EMBEDDED_ONLY:-1}" "$tools/dotnet-repl" --run "$name" --exit-after-run \
        --output-path "$work/${name%.dib}.ipynb" > "$work/${name%.dib}.log" 2>&1); then
    echo "ok      $name ($((SECONDS - start)) s)"
  else
    echo "FAILED  $name ($((SECONDS - start)) s); last lines:"; tail -n 20 "$work/${name%.dib}.log"; status=1
  fi
done
exit $status
