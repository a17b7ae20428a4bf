#!/usr/bin/env bash
# Every C++ file of the project is as clang-format writes it (.clang-format: Google style,
# 100 columns). To fix: tools/format.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tools/format.sh --check
