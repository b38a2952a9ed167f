# Two commands on a fresh machine: `make run` and `make test`. Everything goes into .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch==2.13.0 is the CPU build on our machines; a bare `torch` would pull GBs of CUDA wheels.
# Override on other platforms, e.g. `make run TORCH_SPEC=torch`.
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= test
PYTEST_ARGS ?=

.PHONY: install run embed test lint unit integration bench clean browser haproxy prometheus postgres

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

# The tests start a few hundred proxy processes; with PYTHONDONTWRITEBYTECODE set (as on the CI machines) none
# of them could leave its compiled modules behind, so each compiled the project again (~0.2 s a start).
# compileall writes them once, whatever that variable says. PYTHONFAULTHANDLER: a crash after pytest's own
# handler is gone (at the interpreter's exit) still prints every thread's stack.
test: install lint browser haproxy prometheus postgres
	$(BIN)/python -m compileall -q -j 0 proxy embedding_service tests bench >/dev/null
	PYTHONFAULTHANDLER=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

# Headless Chromium for the dashboard tests: installed from Debian when missing and we are root. Without it
# those tests skip on a developer's machine and fail in CI (CI=true).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core; }; } \
		|| echo "chromium is not installed and cannot be installed here: the dashboard browser tests will skip"

# Debian's HAProxy for the test that puts it in front of two replicas (deploy/haproxy.cfg): installed when
# missing and we are root; without it that test skips on a developer's machine and fails in CI.
haproxy:
	@command -v haproxy >/dev/null 2>&1 || test -x /usr/sbin/haproxy || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy; }; } \
		|| echo "haproxy is not installed and cannot be installed here: the HAProxy test will skip"

# promtool and a real Prometheus for the alert tests (deploy/prometheus/alerts.yml): Debian's package, installed
# when missing and we are root, as chromium is. Without it those tests skip on a developer's machine and fail in CI.
prometheus:
	@command -v promtool >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; }; } \
		|| echo "prometheus is not installed and cannot be installed here: the alert tests will skip"

# PostgreSQL for the tests of DATABASE_URL (each session starts a throw-away cluster with initdb/pg_ctl):
# installed from Debian when missing and we are root. Without it those tests skip, and fail in CI.
postgres:
	@command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || \
		{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; }; } \
		|| echo "PostgreSQL is not installed and cannot be installed here: the DATABASE_URL tests will skip"

unit: install prometheus postgres
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

integration: install browser haproxy prometheus postgres
	$(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m bench.exact_bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache data
