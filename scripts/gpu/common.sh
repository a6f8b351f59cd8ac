# Shared by run.sh and check.sh (source it): unpacks the GPU bundle, finds a libtorch, makes TorchSharp loadable.
#
# Environment:
#   WORKBOOK_ARCHIVE     the bundle (default: gpu-bundle/workbook-linux-x64.tar.xz in this checkout; scripts/gpu/publish.sh)
#   WORKBOOK_BUNDLE_DIR  where to unpack it (default: ${TMPDIR:-/tmp}/workbook-gpu-<first 12 hex of its sha256>)
#   LIBTORCH_DIR         a folder holding libtorch*.so (default: the lib/ folder of python3's installed PyTorch)

wb_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

wb_log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
wb_die() { echo "error: $*" >&2; exit 1; }

# Unpacks the archive once (reused while its checksum is unchanged); sets WB_HOME to the published app folder and
# WB_FIXTURES to the bundled reference fixtures.
wb_unpack() {
  local archive="${WORKBOOK_ARCHIVE:-$wb_root/gpu-bundle/workbook-linux-x64.tar.xz}"
  [[ -f "$archive" ]] || wb_die "no GPU bundle at $archive: run scripts/gpu/publish.sh first (and carry gpu-bundle to the device)"
  local sum
  sum="$(sha256sum "$archive" | cut -c1-12)"
  local dest="${WORKBOOK_BUNDLE_DIR:-${TMPDIR:-/tmp}/workbook-gpu-$sum}"
  if [[ ! -f "$dest/.unpacked-$sum" ]]; then
    wb_log "unpacking $(basename "$archive") ($(stat -c %s "$archive") bytes) into $dest"
    rm -rf "$dest.partial"
    mkdir -p "$dest.partial"
    if command -v xz >/dev/null 2>&1; then
      tar -C "$dest.partial" -xJf "$archive"
    else
      # Minimal images may lack xz; Python's tarfile reads .tar.xz by itself (lzma module).
      python3 - "$archive" "$dest.partial" <<'PY'
import sys, tarfile
with tarfile.open(sys.argv[1], "r:xz") as t:
    if hasattr(tarfile, "tar_filter"):
        t.extractall(sys.argv[2], filter="tar")
    else:
        t.extractall(sys.argv[2])
PY
    fi
    touch "$dest.partial/.unpacked-$sum"
    rm -rf "$dest"
    mv "$dest.partial" "$dest"
  fi
  WB_HOME="$dest/workbook"
  WB_FIXTURES="$dest/fixtures"
  [[ -x "$WB_HOME/workbook" ]] || wb_die "$WB_HOME/workbook is missing from the bundle"
}

# Sets WB_LIBTORCH to a folder with libtorch's shared libraries.
wb_find_libtorch() {
  if [[ -n "${LIBTORCH_DIR:-}" ]]; then
    WB_LIBTORCH="$LIBTORCH_DIR"
    WB_LIBTORCH_FROM="LIBTORCH_DIR"
  else
    command -v python3 >/dev/null 2>&1 || wb_die "python3 not found: install PyTorch or set LIBTORCH_DIR to a folder holding libtorch*.so"
    WB_LIBTORCH="$(python3 -c "import torch, os; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))" 2>/dev/null)" \
      || wb_die "python3 cannot import torch: install PyTorch or set LIBTORCH_DIR to a folder holding libtorch*.so"
    WB_LIBTORCH_FROM="PyTorch $(python3 -c "import torch; print(torch.__version__)" 2>/dev/null)"
  fi
  [[ -f "$WB_LIBTORCH/libtorch_cpu.so" || -f "$WB_LIBTORCH/libtorch.so" ]] \
    || wb_die "$WB_LIBTORCH holds no libtorch_cpu.so / libtorch.so"
}

# libLibTorchSharp.so 0.107.0 requires GLIBCXX_3.4.32 (GCC 13's libstdc++). Where the libstdc++ the loader would use
# lacks it, mark that one requirement weak in the unpacked copy (see weaken_glibcxx.py); elsewhere change nothing.
wb_fix_glibcxx() {
  local lib="$WB_HOME/libLibTorchSharp.so" stdcxx
  stdcxx="$(LD_LIBRARY_PATH="$WB_LIBTORCH${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ldd "$lib" 2>/dev/null \
    | awk '$1 == "libstdc++.so.6" && $2 == "=>" { print $3; exit }')"
  [[ -n "$stdcxx" && -f "$stdcxx" ]] || wb_die "cannot tell which libstdc++.so.6 would load $lib (ldd found none)"
  if ! grep -aq 'GLIBCXX_3\.4\.32' "$stdcxx"; then
    wb_log "$stdcxx lacks GLIBCXX_3.4.32"
    python3 "$wb_root/scripts/gpu/weaken_glibcxx.py" "$lib" >&2
  fi
}

# Everything run.sh and check.sh need before starting the workbook.
wb_prepare() {
  wb_unpack
  wb_find_libtorch
  wb_fix_glibcxx
  export LD_LIBRARY_PATH="$WB_LIBTORCH${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
  wb_log "workbook: $WB_HOME/workbook; libtorch: $WB_LIBTORCH ($WB_LIBTORCH_FROM)"
}
