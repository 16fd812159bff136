# robint-bench: `make run` (set up + evaluation + leaderboard.md and its HTML) and `make test` (set up + tests).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV ?= .venv
BIN := $(VENV)/bin
N ?= 50
DEMO_ATTACK ?= apgd-ce
# the demo's suite: the quick preset (the default metrics and methods, every fixed cost scaled with N: README, Usage)
DEMO_SUITE ?= --preset quick
HTML ?= results/html
FULL ?=
TEST_JOBS ?= 2
DB ?= sqlite:///results/robint.db
MODELS ?= submissions/fmnist_standard.py submissions/fmnist_pgd_linf.py submissions/fmnist_trades_linf.py
FMNIST_DEB := /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz

.PHONY: run test test-fast check setup data browser postgres lint bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q -e ".[dev]"
	# MetaQuantus, the reference the reliability tests compare with: it pins cachetools 5.3.1, which it never
	# imports and quantus 0.6.0 does not accept, so it is installed without its dependencies
	$(BIN)/python -m pip install -q --no-deps metaquantus==0.0.5
	touch $@

setup: $(VENV)/.installed

data:
	@if [ -f $(FMNIST_DEB) ] || [ -f data/FashionMNIST/raw/t10k-images-idx3-ubyte ]; then exit 0; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; \
	else \
	  echo "Fashion-MNIST is missing. Install it with: sudo apt-get install dataset-fashion-mnist"; \
	  echo "(or put the four *-ubyte.gz files in data/, or let torchvision download them: see README)"; exit 1; \
	fi

# With a GPU (or FULL=1): every shipped model at n=1000, AutoAttack standard, full suite: the leaderboard shows these
# fresh runs. On a CPU: the archived n=1000 evaluations are imported for the leaderboard, and a short fresh demo
# (first N test images, AutoAttack DEMO_ATTACK, the quick preset) is computed and listed next to them.
run: setup data
	if compgen -G "results/archive/*.json*" >/dev/null; then $(BIN)/robint-bench import results/archive --db $(DB); fi
	if [ -n "$(FULL)" ] || $(BIN)/python -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then \
	  echo "full evaluation: every shipped model on the first 1000 test images, AutoAttack standard"; \
	  for m in $(MODELS); do $(BIN)/robint-bench run --model $$m --n-examples 1000 --db $(DB); done; \
	else \
	  echo "no GPU: the leaderboard shows the archived n=1000 evaluations (results/archive); fresh demo runs on"; \
	  echo "the first $(N) test images with AutoAttack $(DEMO_ATTACK) follow (make run FULL=1: n=1000 here, ~3 h)"; \
	  for m in $(MODELS); do \
	    $(BIN)/robint-bench run --model $$m --n-examples $(N) --attack $(DEMO_ATTACK) $(DEMO_SUITE) --db $(DB); \
	  done; \
	fi
	$(BIN)/robint-bench leaderboard --db $(DB) --out leaderboard.md --html $(HTML)
	$(BIN)/robint-bench results --db $(DB)

# Debian's chromium and its driver for the HTML leaderboard's browser test (installed when root; else it is skipped)
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then exit 0; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver \
	    >/dev/null) || echo "could not install chromium: the HTML leaderboard's browser test will be skipped"; \
	else \
	  echo "chromium/chromium-driver missing: the HTML leaderboard's browser test will be skipped"; \
	  echo "(install them with: sudo apt-get install chromium chromium-driver)"; \
	fi

# the PostgreSQL server the tests start (initdb + pg_ctl in a temporary directory); without it they are skipped
postgres:
	@if compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null || command -v pg_ctl >/dev/null; then exit 0; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
	    || echo "could not install postgresql: the PostgreSQL tests will be skipped"; \
	else \
	  echo "PostgreSQL is not installed: its tests will be skipped (install it with: sudo apt-get install postgresql)"; \
	fi

test: setup data browser postgres
	$(BIN)/pytest -q -n $(TEST_JOBS) --dist loadfile

# the edit loop: every test but the slow ones (end-to-end runs in processes of their own); CI runs `make test`
test-fast: setup data
	$(BIN)/pytest -q -n $(TEST_JOBS) --dist loadfile -m "not slow"

check: setup data
	$(BIN)/robint-bench check --quiet

lint: setup
	$(BIN)/ruff check harness metrics tests bench
	$(BIN)/ruff format --check harness metrics tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy metrics harness/worker/protocol.py

bench: setup data
	$(BIN)/python bench/aa_overhead.py

clean:
	rm -rf $(VENV) results/robint.db results/robint.db-* results/runs
