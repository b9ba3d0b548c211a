#!/usr/bin/env bash
# The release-gate workflow: v1 is approved, v2 is gated against it.
# Usage: bash examples/release_gate/run.sh   (from the repo root, with auditkit installed)
set -u
cd "$(dirname "$0")"
AUDITKIT=${AUDITKIT:-auditkit}
"${PYTHON:-python3}" prepare.py
$AUDITKIT run v1.yaml -o out/v1 -q; v1=$?
echo "v1 exit code: $v1 (expected 0)"
$AUDITKIT run v2.yaml -o out/v2 -q --baseline out/v1/results.json; v2=$?
echo "v2 exit code: $v2 (expected 1)"
$AUDITKIT diff out/v1/results.json out/v2/results.json --format markdown | tee out/diff.md
test "$v1" -eq 0 && test "$v2" -eq 1
