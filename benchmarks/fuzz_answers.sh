#!/usr/bin/env bash
# The benchmark variant of the fuzz suite: 25,000 generated answers per task, 100,000 over the four tasks,
# each judged through env.step within 10 ms of CPU time and without an exception.
set -euo pipefail
cd "$(dirname "$0")/.."
HARNESS_FUZZ_EXAMPLES=${HARNESS_FUZZ_EXAMPLES:-25000} python -m pytest tests/reliability/test_fuzz_answers.py -q \
  -p no:cacheprovider -k generated "$@"
