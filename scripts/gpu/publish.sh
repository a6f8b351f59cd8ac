#!/usr/bin/env bash
# Builds the GPU bundle: the `workbook` CLI published self-contained for linux-x64 with the managed TorchSharp and its
# libLibTorchSharp.so only (no libtorch: on the GPU machine it comes from PyTorch, see run.sh), plus the reference
# fixtures the checks need (the repository's own tests/fixtures), as one compressed archive under gpu-bundle/
# (git-ignored; carry it to the device). Needs nothing outside the repository.
#
#   scripts/gpu/publish.sh            # writes gpu-bundle/workbook-linux-x64.tar.xz and gpu-bundle/MANIFEST.txt
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

limit_mb=64                        # what a device call may carry, working tree included
work="$root/artifacts/gpu-publish" # git-ignored scratch: build outputs and the staging folder
stage="$work/stage"
bundle="$root/gpu-bundle"
archive="$bundle/workbook-linux-x64.tar.xz"

fixtures="$root/tests/fixtures"
[[ -f "$fixtures/tiny-gpt2-scenarios.json" ]] || { echo "publish.sh: $fixtures/tiny-gpt2-scenarios.json is missing (a partial checkout?)" >&2; exit 1; }

echo "== publishing lib/Workbook.Cli (Release, linux-x64, self-contained, TorchBackend=none)"
rm -rf "$work"
mkdir -p "$stage/fixtures" "$bundle"
# A separate artifacts path keeps this restore (other packages, a runtime identifier) out of the normal obj/ folders.
dotnet publish lib/Workbook.Cli/Workbook.Cli.csproj -c Release -r linux-x64 --self-contained true \
  -p:TorchBackend=none -p:InvariantGlobalization=true -p:DebugType=none \
  --artifacts-path "$work/build" -o "$stage/workbook" -nologo -v:q

app="$stage/workbook"
[[ -f "$app/libLibTorchSharp.so" ]] || { echo "publish.sh: libLibTorchSharp.so is missing from the published folder" >&2; exit 1; }
unwanted="$(find "$app" -maxdepth 1 \( -name 'libtorch*.so*' -o -name 'libc10*.so*' -o -name 'libgomp*.so*' \) -printf '%f\n')"
[[ -z "$unwanted" ]] || { echo "publish.sh: CPU libtorch natives were published (expected none with TorchBackend=none): $unwanted" >&2; exit 1; }
# The command is `workbook`; the apphost finds Workbook.Cli.dll by the name it was built with, so renaming it is safe.
mv "$app/Workbook.Cli" "$app/workbook"

echo "== copying fixtures from tests/fixtures"
cp -r "$fixtures/tiny-gpt2" "$fixtures/tiny-neox" "$fixtures/README.md" \
      "$fixtures/tiny-gpt2-scenarios.json" "$fixtures/tiny-neox-scenarios.json" "$stage/fixtures/"

commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
dirty="$(git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo ' (with uncommitted changes)' || true)"
{
  echo "workbook GPU bundle"
  echo "commit: $commit$dirty"
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -sm)"
  echo "dotnet sdk: $(dotnet --version)"
  echo "torchsharp: $(sed -n 's:.*<TorchSharpVersion>\(.*\)</TorchSharpVersion>.*:\1:p' Directory.Build.props) (managed + libLibTorchSharp.so; libtorch comes from the target machine)"
  echo "published size: $(du -sb "$app" | cut -f1) bytes in $(find "$app" -type f | wc -l) files"
} > "$stage/MANIFEST.txt"

echo "== compressing (xz -9e)"
tmp="$archive.tmp.$$"
trap 'rm -f "$tmp"' EXIT
tar -C "$stage" -cf - MANIFEST.txt workbook fixtures | xz -9e -T1 > "$tmp"
mv -f "$tmp" "$archive"
trap - EXIT
cp "$stage/MANIFEST.txt" "$bundle/MANIFEST.txt"
(cd "$bundle" && sha256sum "$(basename "$archive")" > SHA256SUMS)

uncompressed=$(du -sb "$stage" | cut -f1)
compressed=$(stat -c %s "$archive")
tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 -r stat -c %s 2>/dev/null | awk '{s+=$1} END {print s+0}')
total=$((compressed + tree))
echo "published app: $(du -sb "$app" | cut -f1) bytes; with fixtures: $uncompressed bytes"
echo "archive: $archive ($compressed bytes, $(awk -v b="$compressed" 'BEGIN{printf "%.1f", b/1048576}') MiB)"
echo "device payload (working tree + gpu-bundle): $(awk -v b="$total" 'BEGIN{printf "%.1f", b/1048576}') MiB of $limit_mb MiB"
if (( total > limit_mb * 1048576 )); then
  echo "publish.sh: the bundle and the working tree exceed the $limit_mb MiB a device call may carry" >&2
  exit 1
fi
