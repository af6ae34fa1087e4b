#!/usr/bin/env bash
# The benchmark variant of the record and board fuzzing: 10,000 generated files per target (run records
# with their samples lines; board TOMLs with published tables), each through the index, `runs list`, a
# board and every renderer, without an exception other than the ones that carry a message for the user.
set -euo pipefail
cd "$(dirname "$0")/.."
HARNESS_FUZZ_FILES=${HARNESS_FUZZ_FILES:-10000} python -m pytest tests/reliability/test_fuzz_records.py -q -s \
  -p no:cacheprovider "$@"
