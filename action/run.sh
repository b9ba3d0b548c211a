#!/usr/bin/env bash
# The steps of the auditkit GitHub Action (action.yml), one subcommand each:
#   install  pip-install torch (if missing) and auditkit
#   audit    run the audit; record exit code, decision and bundle in $GITHUB_OUTPUT; write the
#            Markdown summary to $GITHUB_STEP_SUMMARY. Always exits 0 so the bundle is uploaded
#            before the job fails.
#   gate     exit with the audit's exit code (the job fails on the gate)
# Inputs come as AK_* environment variables (see action.yml). Outside GitHub, set GITHUB_OUTPUT
# and GITHUB_STEP_SUMMARY to files; AK_PYTHON and AK_AUDITKIT pick the interpreter and command.
set -euo pipefail

PY=${AK_PYTHON:-python}
AUDITKIT=${AK_AUDITKIT:-auditkit}
: "${GITHUB_OUTPUT:=/dev/null}" "${GITHUB_STEP_SUMMARY:=/dev/null}"

output() { printf '%s=%s\n' "$1" "$2" >>"$GITHUB_OUTPUT"; }

install() {
  local pip_args=()
  read -r -a pip_args <<<"${AK_PIP_ARGS:-}"
  if [ -n "${AK_TORCH_INDEX:-}" ] && ! "$PY" -c "import torch" 2>/dev/null; then
    "$PY" -m pip install ${pip_args[@]+"${pip_args[@]}"} torch --index-url "$AK_TORCH_INDEX"
  fi
  local req=${AK_VERSION:-}
  if [ -z "$req" ]; then
    req=${AK_ACTION_PATH:?set AK_ACTION_PATH to the folder of the action (github.action_path)}
  elif [[ $req =~ ^[0-9] ]]; then
    req="auditkit==$req"
  fi
  "$PY" -m pip install ${pip_args[@]+"${pip_args[@]}"} "$req"
  "$AUDITKIT" --version
}

audit() {
  local spec=${AK_SPEC:-audit.yaml} out=${AK_OUTPUT:-audit-out} err extra=()
  local cmd=("$AUDITKIT" run "$spec" -o "$out" -q)
  [ -n "${AK_FAIL_ON:-}" ] && cmd+=(--fail-on "$AK_FAIL_ON")
  [ -n "${AK_BASELINE:-}" ] && cmd+=(--baseline "$AK_BASELINE")
  if [ -n "${AK_SIGN_KEY:-}" ]; then
    if [[ $AK_SIGN_KEY == *"-----BEGIN"* ]]; then
      # PEM text from a secret: a private file that is removed when this step ends
      KEY_FILE=$(umask 077 && mktemp "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/auditkit-key.XXXXXX")
      trap 'rm -f "$KEY_FILE"' EXIT
      printf '%s\n' "$AK_SIGN_KEY" >"$KEY_FILE"
      cmd+=(--sign "$KEY_FILE")
    else
      cmd+=(--sign "$AK_SIGN_KEY")
    fi
  fi
  read -r -a extra <<<"${AK_ARGS:-}"
  cmd+=(${extra[@]+"${extra[@]}"})
  err=$(mktemp)
  touch "$err.start"  # a bundle newer than this is this run's (an old one may stay on exit 2)
  local code=0
  "${cmd[@]}" >"$err.out" 2>"$err" || code=$?
  cat "$err.out"
  cat "$err" >&2
  output exit-code "$code"
  output gate-line "$(grep '^auditkit: ' "$err.out" "$err" -h | tail -n 1 | tr -d '\r')"
  if [ -f "$out/manifest.json" ] && [ "$out/results.json" -nt "$err.start" ]; then
    output bundle "$out"
    output decision "$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["gate"]["decision"])' "$out/results.json")"
    local summary=(-m auditkit.integrations.ci summary "$out/results.json")
    [ -n "${AK_BASELINE:-}" ] && summary+=(--baseline "$AK_BASELINE")
    "$PY" "${summary[@]}" >>"$GITHUB_STEP_SUMMARY" || echo "auditkit: the job summary could not be written" >&2
  else
    output bundle ""
    output decision ""
    {
      echo "### auditkit: the audit did not run (exit $code)"
      echo
      echo '```'
      grep '^auditkit: ' "$err" | head -n 20 || true
      echo '```'
    } >>"$GITHUB_STEP_SUMMARY"
  fi
  rm -f "$err" "$err.out" "$err.start"
}

gate() {
  local code=${AK_EXIT_CODE:-}
  if [ -z "$code" ]; then
    echo "::error title=auditkit::the audit step did not finish; no gate decision"
    exit 3
  fi
  if [ "$code" -ne 0 ]; then
    echo "::error title=auditkit gate::${AK_GATE_LINE:-auditkit exited with $code}"
  else
    echo "${AK_GATE_LINE:-auditkit: gate PASS}"
  fi
  exit "$code"
}

case "${1:-}" in
  install | audit | gate) "$1" ;;
  *)
    echo "usage: run.sh install|audit|gate" >&2
    exit 2
    ;;
esac
