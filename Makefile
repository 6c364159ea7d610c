# Noetik: two entry points, each sets itself up from nothing but Python 3.11.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo demo-1k test test-ray lint typecheck bench clean

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (set PYTHON=...)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	bash scripts/demo.sh

# The whole pipeline at KuaiRand-1K's real size (4.37M videos; about 20 min, < 12 GB).
demo-1k: $(STAMP)
	$(BIN)/python benchmarks/bench_scale.py --workdir demo_1k

test: $(STAMP) lint typecheck
	$(BIN)/python -m pytest -q

# Ray's tests (a local instance and a two-node cluster on this machine; slow to start).
test-ray: $(STAMP)
	$(BIN)/python -m pytest -q -m ray tests

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_prepare.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache demo_out demo_1k
