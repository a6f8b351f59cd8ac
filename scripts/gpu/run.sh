#!/usr/bin/env bash
# Runs the published workbook from the GPU bundle against an existing libtorch (PyTorch's, by default), e.g.
#
#   scripts/gpu/run.sh selfcheck --model "$(scripts/gpu/run.sh --fixtures)/tiny-gpt2" --device cuda
#   scripts/gpu/run.sh bench patching --device cuda --batch 50
#   LIBTORCH_DIR=~/.nuget/packages/libtorch-cpu-linux-x64/2.10.0/runtimes/linux-x64/native scripts/gpu/run.sh run ... --device cpu
#
# `--fixtures` prints the folder of the bundled reference fixtures. See common.sh for the environment variables.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
if [[ "${1:-}" == "--fixtures" ]]; then
  wb_unpack
  echo "$WB_FIXTURES"
  exit 0
fi
wb_prepare
exec "$WB_HOME/workbook" "$@"
