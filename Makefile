# Switchyard — every target is listed by `make help` (the default goal).
.DEFAULT_GOAL := help
SHELL := /bin/bash

# One target directory shared by every checkout on this machine, so a fresh clone (CI) reuses
# what was built before. Override with CARGO_TARGET_DIR=... .
CACHE_DIR ?= $(HOME)/.cache/switchyard
export CARGO_TARGET_DIR ?= $(CACHE_DIR)/target
export CARGO_TERM_COLOR ?= never
VENV ?= $(CACHE_DIR)/venv
LISTEN ?= 127.0.0.1:8080
# Cargo features the tests and lints build with: the Kafka backend of the event log.
TEST_FEATURES := --features switchyard-log/kafka
# Lints also compile the ScyllaDB state store (untested: no ScyllaDB here), which the tests leave
# out of the workspace build so its dependents are not built twice; `make test-scylla` has it.
LINT_FEATURES := $(TEST_FEATURES) --features switchyard-store/scylla
ARGS ?=

.PHONY: help
help: ## List every target
	@awk 'BEGIN {FS = ":.*?## "} /^[a-zA-Z0-9_.-]+:.*?## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build the switchyard binary (debug)
	cargo build -p switchyard

.PHONY: release
release: ## Build the switchyard binary (release)
	cargo build -p switchyard --release

.PHONY: run
run: ## Start the single-node gateway on $(LISTEN) with the embedded log, store and demo provider
	cargo run -p switchyard -- serve --listen $(LISTEN) $(ARGS)

.PHONY: deps
deps: ## Install what the tests need (apt packages, Python venv, Node clients, Tansu), idempotent and cached
	@scripts/ensure-deps.sh "$(VENV)"

.PHONY: test
test: deps ## Run every test suite (Rust unit, contract (also on a Tansu Kafka broker), crash and end-to-end tests; SDK checks)
	@scripts/run-tests.sh "$(VENV)"

.PHONY: test-rust
test-rust: ## Run the Rust test suites only (starts a Tansu broker for the Kafka contract suite)
	@if cargo nextest --version >/dev/null 2>&1; then scripts/with-tansu.sh cargo nextest run --workspace --profile ci $(TEST_FEATURES); else scripts/with-tansu.sh cargo test --workspace $(TEST_FEATURES); fi

.PHONY: test-kafka
test-kafka: ## Run only the Kafka event-log contract suite, against a fresh Tansu broker
	@if cargo nextest --version >/dev/null 2>&1; then scripts/with-tansu.sh cargo nextest run --workspace --profile ci $(TEST_FEATURES) -E 'package(switchyard-log) & test(/^kafka::/)'; else scripts/with-tansu.sh cargo test --workspace $(TEST_FEATURES) --test it -- kafka::; fi

.PHONY: test-scylla
test-scylla: ## The ScyllaDB state store's tests: unit tests, and its contract suite if SCYLLA_URI=host:port is set (else skipped)
	cargo nextest run -p switchyard-store --features scylla

.PHONY: lint
lint: ## rustfmt --check and clippy on every target (with the Kafka and ScyllaDB backends) with warnings denied
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets $(LINT_FEATURES) -- -D warnings

.PHONY: fmt
fmt: ## Format the code
	cargo fmt --all

.PHONY: check-features
check-features: ## Check the workspace with all features and with no default features
	cargo check --workspace --all-targets --all-features
	cargo check --workspace --no-default-features

.PHONY: check-schemas
check-schemas: ## Schema compatibility (every adjacent version pair, both ways) and frozen samples
	cargo test -p switchyard-events

.PHONY: schemas
schemas: check-schemas ## Alias of check-schemas (the Rust types follow the newest .avsc; see schemas/README.md)

.PHONY: bench
bench: bench-log bench-codec bench-router ## Run every benchmark

.PHONY: bench-log
bench-log: ## Durable appends/s of the embedded log (1 and 8 producers, group commit)
	cargo bench -p switchyard-log --bench append

.PHONY: bench-codec
bench-codec: ## Encode/decode throughput of the Avro codec, per event kind
	cargo bench -p switchyard-events --bench codec

.PHONY: bench-router
bench-router: ## One routing decision with 20 candidates: decide, trace, sign (p50/p99 printed)
	cargo bench -p switchyard-router --bench decide

.PHONY: bench-export
bench-export: deps ## Parquet export rows/s (1M decisions); a 10M-row aggregate, DataFusion vs DuckDB
	SWITCHYARD_VENV="$(VENV)" cargo bench -p switchyard-sql --bench export

# The flags of the figures in the feedback-loop issue (see README, "The routing simulator").
SIM_FLAGS ?= --explore 0.2 --explore-until 200 --min-confidence 0.7 --window-hours 336 --rollback-threshold 5 --bucket-hours 6 --rollback-pin-hours 12

.PHONY: sim
sim: release ## The routing simulator (../shared/sim) against the real router and feedback loop
	python3 ../shared/sim/routing_sim.py run --world $(or $(WORLD),frugal10) \
	  --router-cmd "$(CARGO_TARGET_DIR)/release/switchyard sim $(SIM_FLAGS)" --router-name switchyard

.PHONY: bench-feedback
bench-feedback: ## Feedback accepted -> routing table applied at ingress, 1k feedback/s on serve (p50/p99)
	cargo build --release -p switchyard
	cargo run --release -p switchyard --example feedback_loop

.PHONY: bench-kafka
bench-kafka: ## Distributed mode on Kafka (Tansu): events/s one ingress publishes, request->processor lag p50/p99; vs single node
	cargo build --release -p switchyard $(TEST_FEATURES)
	scripts/with-tansu.sh cargo run --release -p switchyard $(TEST_FEATURES) --example kafka_pipeline

.PHONY: bench-gateway
bench-gateway: ## Gateway overhead vs direct, LiteLLM and Portkey (../shared/bench; ~6 min, installs peers)
	scripts/bench-gateway.sh

.PHONY: compose-check
compose-check: deps ## Validate docker-compose.kafka.yml without Docker
	"$(VENV)/bin/python" scripts/compose-check.py docker-compose.kafka.yml

.PHONY: ci
ci: lint test ## What CI runs (.ci/run)

.PHONY: clean
clean: ## Remove build outputs
	cargo clean
