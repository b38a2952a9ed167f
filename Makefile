# Two commands on a fresh machine: `make run` and `make test`. Everything goes into .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch==2.13.0 is the CPU build on our machines; a bare `torch` would pull GBs of CUDA wheels.
# Override on other platforms, e.g. `make run TORCH_SPEC=torch`.
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= test
PYTEST_ARGS ?=

.PHONY: install run embed test lint unit integration bench clean

install: $(VENV)/.installed-$(EXTRAS)

$(VENV)/.installed-$(EXTRAS): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

run: install
	$(BIN)/cachegate serve

embed: install
	$(BIN)/cachegate embed

lint: install
	$(BIN)/ruff check proxy embedding_service tests bench
	$(BIN)/mypy

test: install lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

unit: install
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

integration: install
	$(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m bench.exact_bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache data
