#!/usr/bin/env bash
# Formats every C++ source of the project with clang-format (.clang-format at the root);
# --check changes nothing and fails, naming the files, when one is not formatted.
#
#   bash tools/format.sh           # format in place
#   bash tools/format.sh --check   # what CI runs (tests/layout/format_test.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files --cached --others --exclude-standard -- '*.cc' '*.h' ':!:proto/' 2>/dev/null ||
                     find common services tools tests -name '*.cc' -o -name '*.h')
if [[ ${1:-} == --check ]]; then
  clang-format --dry-run --Werror "${files[@]}"
else
  clang-format -i "${files[@]}"
fi
