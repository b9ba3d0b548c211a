# The two commands a user needs: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
PIP     = $(BIN)/python -m pip
STAMP   = $(VENV)/.installed
DEMO    = examples/breast_cancer

.PHONY: demo test test-all lint bench clean install example

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check -c constraints.txt -e ".[dev]" --config-settings editable_mode=strict
	$(PIP) install -q --disable-pip-version-check --no-deps -e examples/plugin
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)  ## create .venv, install, run the flagship audit, write the report
	$(BIN)/python $(DEMO)/prepare.py
	$(BIN)/auditkit run $(DEMO)/audit.yaml -o $(DEMO)/out; code=$$?; \
	  echo "report: $(DEMO)/out/report.pdf (exit code $$code)"; \
	  test $$code -le 1

example: $(STAMP)  ## make example EX=loan_approval: build an example's data, run its audit(s)
	@test -n "$(EX)" && test -d examples/$(EX) || { echo "usage: make example EX=<breast_cancer|loan_approval|digits|panel_wages|release_gate|edge_deploy|house_prices>"; exit 2; }
	@if [ -f examples/$(EX)/run.sh ]; then \
	  PATH="$(CURDIR)/$(BIN):$$PATH" PYTHON="$(CURDIR)/$(BIN)/python" bash examples/$(EX)/run.sh; \
	else \
	  $(BIN)/python examples/$(EX)/prepare.py || exit 2; \
	  specs=$$(ls examples/$(EX)/*.yaml); n=$$(echo $$specs | wc -w); rc=0; \
	  for spec in $$specs; do \
	    out=examples/$(EX)/out; [ $$n -gt 1 ] && out=$$out/$$(basename $$spec .yaml); \
	    $(BIN)/auditkit run $$spec -o $$out -q; c=$$?; echo "$$spec: exit code $$c (bundle: $$out)"; rc=$$c; \
	  done; exit $$rc; \
	fi

test: $(STAMP)  ## the test suite (slow tests deselected; a fast test covers each of their paths)
	$(BIN)/python -m pytest -q -p no:randomly --timeout=600

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m "slow or not slow" --timeout=1200

lint: $(STAMP)  ## what CI checks before the tests: ruff, ruff format, mypy (installs .venv if needed)
	$(BIN)/python -m ruff check .
	$(BIN)/python -m ruff format --check .
	$(BIN)/python -m mypy auditkit checks

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache examples/*/out examples/*/data
