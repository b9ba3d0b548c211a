#!/usr/bin/env bash
# The edge-deployment audit: the artifacts that ship pass (exit 0); the planted defect fails (exit 1).
# Usage: bash examples/edge_deploy/run.sh   (from the repo root, with auditkit[onnx] installed)
set -u
cd "$(dirname "$0")"
AUDITKIT=${AUDITKIT:-auditkit}
"${PYTHON:-python3}" prepare.py || exit 2
$AUDITKIT run audit.yaml -o out/audit -q; good=$?
echo "audit.yaml exit code: $good (expected 0; report: out/audit/report.pdf)"
$AUDITKIT run defect.yaml -o out/defect -q; bad=$?
echo "defect.yaml exit code: $bad (expected 1: the export with a wrong normalisation constant)"
test "$good" -eq 0 && test "$bad" -eq 1
