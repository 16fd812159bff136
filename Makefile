# robint-bench: `make run` (set up + demo evaluation + leaderboard.md) and `make test` (set up + tests).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV ?= .venv
BIN := $(VENV)/bin
N ?= 200
TEST_JOBS ?= 2
DB ?= sqlite:///results/robint.db
MODELS ?= submissions/fmnist_standard.py submissions/fmnist_pgd_linf.py submissions/fmnist_trades_linf.py
FMNIST_DEB := /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz

.PHONY: run test check setup data lint bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q -e ".[dev]"
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

run: setup data
	if compgen -G "results/archive/*.json" >/dev/null; then $(BIN)/robint-bench import results/archive --db $(DB); fi
	for m in $(MODELS); do $(BIN)/robint-bench run --model $$m --n-examples $(N) --db $(DB); done
	$(BIN)/robint-bench leaderboard --db $(DB) --out leaderboard.md
	$(BIN)/robint-bench results --db $(DB)

test: setup data
	$(BIN)/pytest -q -n $(TEST_JOBS) --dist loadfile

check: setup data
	$(BIN)/robint-bench check --quiet

lint: setup
	$(BIN)/ruff check harness metrics tests bench
	$(BIN)/ruff format --check harness metrics tests bench
	$(BIN)/lint-imports

bench: setup data
	$(BIN)/python bench/aa_overhead.py

clean:
	rm -rf $(VENV) results/robint.db results/robint.db-* results/runs
