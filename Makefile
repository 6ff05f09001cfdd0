# Tierbook. Every target is thin: it builds the environment if needed and calls `python -m tierbook`.
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CLIENT ?=
DATA ?=
SECTION ?=
SET ?=
ID ?=

.PHONY: help env init report section check reveal test bench lab clean

help: ## list the targets (this page)
	@echo "Tierbook: customer tiering reports. Usage: make <target> [CLIENT=x] [SECTION=y] [SET=\"key=value ...\"]"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-9s %s\n", $$1, $$2}'

# Bytecode is compiled once here (uv does not by default, and a shell with PYTHONDONTWRITEBYTECODE=1 never writes it):
# without it every process compiles what it imports from source, and the sections' fork server took 10.6 s instead of
# 3.0 s to import its libraries (2026-12-03, this 2-core machine).
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "error: Tierbook needs Python 3.11+; found $$($(PYTHON) --version 2>&1). Run: make PYTHON=python3.11 ..."; exit 1; }
	@echo "building the environment in $(VENV) (once; again only when pyproject.toml changes)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check uv >/dev/null 2>&1 || echo "uv not available: installing with pip (slower)"
	@if test -x $(VENV)/bin/uv; then $(VENV)/bin/uv pip install -q --compile-bytecode --python $(PY) -e '.[dev]'; \
	 else $(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'; fi
	@$(PY) -m compileall -q src/tierbook >/dev/null
	@$(PY) -m tierbook fonts
	@touch $@

env: $(STAMP) ## build the environment (.venv) from pyproject.toml
	@true

init: $(STAMP) ## read a new client's exports in DATA=folder and draft params/CLIENT.yaml with a data-profile page
	@test -n "$(CLIENT)" -a -n "$(DATA)" || { echo "usage: make init CLIENT=acme DATA=~/Downloads/acme_exports"; exit 2; }
	@$(PY) -m tierbook init --client $(CLIENT) --data "$(DATA)" $(if $(FORCE),--force)

report: $(STAMP) ## run every section for CLIENT=x into a new reports/x/<run-id>/ (SET="demo.size=500" overrides params)
	@test -n "$(CLIENT)" || { echo "usage: make report CLIENT=demo   (clients: $$(ls params | grep -v default.yaml | sed 's/.yaml//' | tr '\n' ' '))"; exit 2; }
	@$(PY) -m tierbook report --client $(CLIENT) $(foreach s,$(SET),--set $(s))

section: $(STAMP) ## re-run SECTION=y of CLIENT=x's newest run on its upstream outputs
	@test -n "$(CLIENT)" -a -n "$(SECTION)" || { echo "usage: make section CLIENT=demo SECTION=data"; exit 2; }
	@$(PY) -m tierbook section --client $(CLIENT) --section $(SECTION)

check: $(STAMP) ## validate CLIENT=x's params and input file headers without running
	@test -n "$(CLIENT)" || { echo "usage: make check CLIENT=demo"; exit 2; }
	@$(PY) -m tierbook check --client $(CLIENT) $(foreach s,$(SET),--set $(s))

reveal: $(STAMP) ## the customer ids behind pseudonyms of CLIENT=x's pages: make reveal CLIENT=x ID="C-3f9a1c0b7e2d ..."
	@test -n "$(CLIENT)" -a -n "$(ID)" || { echo "usage: make reveal CLIENT=demo ID=C-3f9a1c0b7e2d"; exit 2; }
	@$(PY) -m tierbook reveal --client $(CLIENT) $(ID)

test: $(STAMP) ## run the test suite (unit, end-to-end on a small demo, real data from ../shared when present)
	@$(PY) -m pytest -q

bench: $(STAMP) ## make report at 10k/100k/1M customers (time, memory), the summary engines, CLV vs lifetimes/PyMC-Marketing, init on 10M rows (bench/)
	@$(PY) bench/scale.py --sizes 10000 100000 1000000 --runs 3
	@$(PY) bench/summary_time.py --runs 3
	@$(PY) bench/clv_time.py --runs 3
	@$(PY) bench/init_time.py --runs 3

lab: $(STAMP) ## open JupyterLab on the notebooks
	@$(VENV)/bin/jupyter lab notebooks/

clean: ## remove the environment and caches (reports/ and data/ are kept)
	rm -rf $(VENV) .pytest_cache build src/*.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
