# eks-access-sync: build, deploy, test and demo.
#
#   make demo     local story on the sandbox (installs tools, builds, starts and stops the sandbox)
#   make test     release builds of the two functions (the Runtime-API test runs them), cargo
#                 test --workspace, then the template/event tests (installs tools first)
#   make invoke-local EVENT=events/x.json   one event through a function's release binary,
#                 as Lambda runs it, on the local sandbox
#   make verify-arm64   the arm64 artifacts that deploy, the same way under qemu-user
#   make lint     rustfmt, clippy, cfn-lint, sam validate --lint
#   make deploy   sam build + sam deploy (guided the first time)
#
# Every tool comes from a package registry, pinned, into .tools/ (git-ignored):
#   .tools/venv    moto[server], awscli v1, cfn-lint, pytest   (tests/requirements.txt)
#   .tools/sam     aws-sam-cli                                 (tests/requirements-sam.txt)
#   .tools/lambda  cargo-lambda + ziglang                      (tests/requirements-lambda.txt)
# kubectl is not installed here: it must be on PATH (it is on the project's machine image);
# the demo and the end-to-end tests use it.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON ?= python3
TOOLS := $(CURDIR)/.tools
VENV := $(TOOLS)/venv
SAM_VENV := $(TOOLS)/sam
LAMBDA_VENV := $(TOOLS)/lambda
SAM := $(SAM_VENV)/bin/sam
AWS := $(VENV)/bin/aws

# The test venv first on PATH: moto_server (started by the sandbox), aws, pytest, cfn-lint.
export PATH := $(VENV)/bin:$(PATH)
export SAM_CLI_TELEMETRY := 0

CARGO ?= cargo
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
SANDBOX_DIR := $(CURDIR)/.sandbox

# Deployed stack (deploy, invoke-*, repair, bootstrap).
STACK ?= eks-access-sync
REGION ?= us-east-1
# Architecture of `make build`. The stack runs on arm64 (Graviton); building
# for it needs the Rust std for aarch64 (`rustup target add aarch64-unknown-linux-gnu`),
# which a new machine lacks, so the default is x86_64: `make build ARCH=arm64`
# for the deployable artifact. `make deploy` always builds arm64 (through sam build).
ARCH ?= x86_64

EVENTS := $(basename $(notdir $(wildcard events/*.json)))

.PHONY: help tools check-kubectl build deploy rust-target-arm64 lint test demo \
        sandbox-up sandbox-down repair repair-dry-run bootstrap $(addprefix invoke-,$(EVENTS)) \
        release-functions invoke-local check-event verify-arm64

help:
	@echo "make demo | test | lint | tools | build [ARCH=arm64] | deploy"
	@echo "make invoke-<event> (events/*.json) | repair | repair-dry-run   [STACK=$(STACK) REGION=$(REGION)]"
	@echo "make invoke-local EVENT=events/<name>.json | verify-arm64   (local Lambda Runtime API + sandbox)"
	@echo "make bootstrap CLUSTER=name [CLUSTER_REGION=r]   (run once per cluster, as a cluster admin)"
	@echo "make sandbox-up | sandbox-down | bench | bench-cold | soak | soak-quick"
	@echo "events: $(EVENTS)"

# ---------------------------------------------------------------- tools ----

tools: $(VENV)/.installed $(SAM_VENV)/.installed $(LAMBDA_VENV)/.installed
	@if command -v kubectl >/dev/null; then \
	  echo "tools ready in .tools/ (kubectl: $$(command -v kubectl))"; \
	else \
	  echo "tools ready in .tools/; WARNING: kubectl not found on PATH: 'make demo' and 'make test' need it."; \
	  echo "  Install kubectl >= 1.28 (the Kubernetes project's apt repository, or your OS package manager)."; \
	fi

$(VENV)/.installed: tests/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r $<
	touch $@

$(SAM_VENV)/.installed: tests/requirements-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check -r $<
	touch $@

$(LAMBDA_VENV)/.installed: tests/requirements-lambda.txt
	$(PYTHON) -m venv $(LAMBDA_VENV)
	$(LAMBDA_VENV)/bin/pip install --quiet --disable-pip-version-check -r $<
	touch $@

check-kubectl:
	@command -v kubectl >/dev/null || { \
	  echo "kubectl is not on PATH. Install kubectl >= 1.28 (the Kubernetes project's apt"; \
	  echo "repository, or your OS package manager), then run this target again."; exit 1; }

# ---------------------------------------------------------------- build ----

# cargo-lambda finds zig through `python3 -m ziglang`: its venv goes first on PATH.
build: $(LAMBDA_VENV)/.installed $(if $(filter arm64 aarch64,$(ARCH)),rust-target-arm64)
	PATH="$(LAMBDA_VENV)/bin:$$PATH" $(CARGO) lambda build --release \
	  $(if $(filter arm64 aarch64,$(ARCH)),--arm64,--x86-64) \
	  --package iam-events --package reconcile
	@echo "bootstrap binaries: $(TARGET_DIR)/lambda/{iam-events,reconcile}/bootstrap"

rust-target-arm64:
	@rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu || \
	  rustup target add aarch64-unknown-linux-gnu

# sam build runs `cargo lambda build --release --arm64 --bin <Binary>` in each
# function's crate (see infra/template.yaml); samconfig.toml is written by the
# first, guided, deploy and reused afterwards.
deploy: $(SAM_VENV)/.installed $(LAMBDA_VENV)/.installed rust-target-arm64
	cd infra && PATH="$(LAMBDA_VENV)/bin:$$PATH" $(SAM) build --template template.yaml
	cd infra && if [ -f samconfig.toml ]; then \
	  $(SAM) deploy; \
	else \
	  $(SAM) deploy --guided --stack-name $(STACK) --region $(REGION) \
	    --capabilities CAPABILITY_IAM CAPABILITY_NAMED_IAM; \
	fi

# ------------------------------------------------------ deployed stack ----

# $(call stack_output,OutputKey)
stack_output = $(AWS) cloudformation describe-stacks --region $(REGION) --stack-name $(STACK) \
  --query "Stacks[0].Outputs[?OutputKey=='$(1)'].OutputValue" --output text

# iam-*.json go to iam-events; everything else (eks-*, schedule, reconcile-*) to reconcile.
$(addprefix invoke-,$(EVENTS)): invoke-%: events/%.json $(VENV)/.installed
	@key=$(if $(filter iam-%,$*),IamEventsFunctionName,ReconcileFunctionName); \
	fn=$$($(call stack_output,$$key)); \
	[ -n "$$fn" ] && [ "$$fn" != None ] || { echo "stack $(STACK) in $(REGION) has no output $$key: deploy first"; exit 1; }; \
	out=$$(mktemp); trap 'rm -f "$$out"' EXIT; \
	echo "invoking $$fn with $<"; \
	err=$$($(AWS) lambda invoke --region $(REGION) --function-name "$$fn" \
	  --payload fileb://$< --query FunctionError --output text "$$out"); \
	cat "$$out"; echo; \
	[ "$$err" = None ] || { echo "function error: $$err (see its log group)"; exit 1; }

repair: invoke-reconcile-apply
repair-dry-run: invoke-reconcile-dry-run

# Maps the functions' role on one cluster (aws-auth + RBAC narrowed to the
# aws-auth ConfigMap, or an access entry on API-mode clusters). Run it once per
# tagged cluster with credentials that are cluster-admin there.
CLUSTER_REGION ?= $(REGION)
bootstrap: $(VENV)/.installed
	@[ -n "$(CLUSTER)" ] || { echo "usage: make bootstrap CLUSTER=name [CLUSTER_REGION=region]"; exit 1; }
	role=$$($(call stack_output,FunctionRoleArn)); \
	$(CARGO) run --quiet -p eks-access-sync-cli --bin eks-access-sync -- \
	  bootstrap --cluster "$(CLUSTER)" --region "$(CLUSTER_REGION)" --role-arn "$$role"

# ------------------------------------------------------------ quality ----

lint: tools
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(VENV)/bin/cfn-lint infra/template.yaml
	$(VENV)/bin/cfn-lint infra/member.yaml
	$(SAM) validate --lint --region us-east-1 -t infra/template.yaml

# The release binaries that ship, for the Runtime-API test (tests/runtime/tests/shipped.rs),
# which runs target/release/{iam-events,reconcile} as processes. Same target directory as
# `cargo test`, `make bench` and `make invoke-local`, so each is built once.
release-functions:
	$(CARGO) build --release -p iam-events -p reconcile

test: tools check-kubectl release-functions
	$(CARGO) test --workspace
	$(VENV)/bin/pytest -q tests/infra

# ------------------------------------------------- as Lambda runs them ----

# One payload through a function's release binary against a local Lambda Runtime API
# (tests/runtime: `lambda-invoke`) and the local sandbox, which is started and seeded
# if it is not running (`make sandbox-down` stops it). iam-*.json go to iam-events,
# everything else to reconcile (as invoke-<event> routes them). Prints the response,
# or the structured error (`errorType`, `errorMessage`) and the function's log.
INVOKE_FN = $(if $(filter iam-%,$(notdir $(EVENT))),iam-events,reconcile)
invoke-local: check-event release-functions sandbox-up
	$(CARGO) build --quiet -p lambda-runtime-api --bin lambda-invoke
	$(TARGET_DIR)/debug/eks-sandbox seed --dir $(SANDBOX_DIR) >/dev/null
	$(TARGET_DIR)/debug/lambda-invoke --bin $(TARGET_DIR)/release/$(INVOKE_FN) \
	  --env-file $(SANDBOX_DIR)/env --env ADMIN_ROLE_NAME=eks-admin $(EVENT)

check-event:
	@[ -n "$(EVENT)" ] && [ -f "$(EVENT)" ] || { echo "usage: make invoke-local EVENT=events/<name>.json"; exit 1; }

# The arm64 artifacts that deploy: `cargo lambda build --release --arm64` (what `sam build`
# runs for each function; target/lambda/<name>/bootstrap) through the same Runtime-API
# test as `make test`, under qemu-user. Needs `apt-get install qemu-user-static
# libc6-arm64-cross` and the aarch64 Rust target (installed here). About 7 minutes of
# build on 2 cores: not part of `make test`.
ARM64_RUNNER ?= qemu-aarch64-static -L /usr/aarch64-linux-gnu
verify-arm64: tools check-kubectl
	@command -v qemu-aarch64-static >/dev/null && [ -d /usr/aarch64-linux-gnu ] || { \
	  echo "verify-arm64 needs qemu-user: apt-get install qemu-user-static libc6-arm64-cross"; exit 1; }
	$(MAKE) build ARCH=arm64
	file $(TARGET_DIR)/lambda/iam-events/bootstrap $(TARGET_DIR)/lambda/reconcile/bootstrap
	LAMBDA_BIN_DIR=$(TARGET_DIR)/lambda LAMBDA_RUNNER="$(ARM64_RUNNER)" \
	  $(CARGO) test -p lambda-runtime-api --test shipped -- --nocapture

# ------------------------------------------------------------ sandbox ----

sandbox-up: $(VENV)/.installed
	$(CARGO) build -p eks-access-sync-cli -p eks-sandbox
	@mkdir -p $(SANDBOX_DIR)
	@if [ -f $(SANDBOX_DIR)/sandbox.pid ] && kill -0 "$$(cat $(SANDBOX_DIR)/sandbox.pid)" 2>/dev/null \
	    && [ -s $(SANDBOX_DIR)/env ]; then \
	  echo "sandbox already running (pid $$(cat $(SANDBOX_DIR)/sandbox.pid))"; exit 0; \
	fi; \
	rm -f $(SANDBOX_DIR)/env $(SANDBOX_DIR)/sandbox.pid; \
	setsid nohup $(TARGET_DIR)/debug/eks-sandbox up --dir $(SANDBOX_DIR) \
	  >$(SANDBOX_DIR)/sandbox.log 2>&1 </dev/null & \
	pid=$$!; \
	for _ in $$(seq 1 120); do \
	  [ -s $(SANDBOX_DIR)/env ] && break; \
	  kill -0 $$pid 2>/dev/null || { echo "sandbox exited; its log:"; cat $(SANDBOX_DIR)/sandbox.log; exit 1; }; \
	  sleep 0.5; \
	done; \
	[ -s $(SANDBOX_DIR)/env ] || { echo "sandbox did not write $(SANDBOX_DIR)/env in 60 s"; kill $$pid; exit 1; }; \
	echo "sandbox up (pid $$pid); 'source $(SANDBOX_DIR)/env' to use it"

# The sandbox runs in its own session (setsid), so its moto_server child goes with it.
define sandbox_down
if [ -f $(SANDBOX_DIR)/sandbox.pid ]; then \
  pid=$$(cat $(SANDBOX_DIR)/sandbox.pid); \
  kill -TERM -- -$$pid 2>/dev/null || kill -TERM $$pid 2>/dev/null || true; \
  for _ in $$(seq 1 20); do kill -0 $$pid 2>/dev/null || break; sleep 0.25; done; \
  kill -0 $$pid 2>/dev/null && kill -KILL -- -$$pid 2>/dev/null || true; \
  rm -f $(SANDBOX_DIR)/sandbox.pid $(SANDBOX_DIR)/env; \
  echo "sandbox stopped (pid $$pid)"; \
else \
  echo "no sandbox running"; \
fi
endef

sandbox-down:
	@$(sandbox_down)

demo: tools check-kubectl
	$(CARGO) build -p eks-access-sync-cli -p eks-sandbox
	$(MAKE) sandbox-up
	status=0; \
	{ $(TARGET_DIR)/debug/eks-sandbox seed --dir $(SANDBOX_DIR) \
	  && BIN_DIR=$(TARGET_DIR)/debug SANDBOX_DIR=$(SANDBOX_DIR) bash tests/demo.sh; } || status=$$?; \
	$(sandbox_down); \
	exit $$status

# ------------------------------------------------------------ bench ----

# Benchmarks (issue 6): release builds of everything measured, then the bench
# program against an in-process sandbox; writes BENCHMARKS.md. Needs moto_server
# (the test venv), aws and kubectl on PATH. About 15 minutes on 2 cores once built.
# The functions' metric lines (EMF, stdout) are dropped; progress is on stderr.
.PHONY: bench
bench: $(VENV)/.installed
	$(CARGO) build --release -p iam-events -p reconcile -p eks-access-sync-cli -p bench-hello -p bench
	$(TARGET_DIR)/release/bench --bin-dir $(TARGET_DIR)/release --out BENCHMARKS.md $(BENCH_ARGS) >/dev/null

# Section 1 alone (cold start to the first `next`, cold and warm invoke): replaces it and
# the cold-start marks in BENCHMARKS.md, the other sections untouched. A minute once built.
# BENCH_ARGS='--extra-bin LABEL=PATH' measures another build of iam-events beside it.
.PHONY: bench-cold
bench-cold: $(VENV)/.installed
	$(CARGO) build --release -p iam-events -p reconcile -p eks-access-sync-cli -p bench-hello -p bench
	$(TARGET_DIR)/release/bench --bin-dir $(TARGET_DIR)/release --out BENCHMARKS.md --cold-only $(BENCH_ARGS) >/dev/null

# ------------------------------------------------------------- soak ----

# Reliability (RELIABILITY.md): the soak program (tests/soak) against in-process
# sandboxes: aws-auth races, IAM events at once through the lease, the fault matrix
# (every AWS and Kubernetes call failing once and always: throttling, 500, hang,
# reset). `make soak` first runs the other producers and reads their outputs: the
# fuzzers (`make fuzz`, if the Makefile has it; SOAK_SKIP_FUZZ=1 skips it), the
# aws-auth corpus test and the secrets test (a missing producer gives a "not run"
# row). `make soak-quick` is the short version CI runs (a few minutes). Both exit
# non-zero when anything was lost. SOAK_ARGS passes more flags (--guard-secs, --parallel).
SOAK_CORPUS_TEST ?= aws_auth_corpus
SOAK_SECRETS_TEST ?= secrets
SOAK_CORPUS_DOCS ?= 100000
SOAK_LOGS := $(TARGET_DIR)/soak-logs
SOAK_SKIP_FUZZ ?= 0

.PHONY: soak soak-quick soak-inputs
soak-inputs:
	@mkdir -p $(SOAK_LOGS)
	@if [ "$(SOAK_SKIP_FUZZ)" != 1 ] && $(MAKE) -n fuzz >/dev/null 2>&1; then \
	  $(MAKE) fuzz || echo "soak: make fuzz failed; the fuzzing row reads what it left"; \
	else echo "soak: fuzzing skipped (SOAK_SKIP_FUZZ=1 or no fuzz target)"; fi
	AWSAUTH_CORPUS_DOCS=$(SOAK_CORPUS_DOCS) $(CARGO) test -p eks-access-sync --test it $(SOAK_CORPUS_TEST):: \
	  -- --nocapture >$(SOAK_LOGS)/corpus.log 2>&1 || echo "soak: corpus test failed (see $(SOAK_LOGS)/corpus.log)"
	$(CARGO) test -p e2e --test it $(SOAK_SECRETS_TEST):: \
	  -- --nocapture >$(SOAK_LOGS)/secrets.log 2>&1 || echo "soak: secrets test failed (see $(SOAK_LOGS)/secrets.log)"

soak: $(VENV)/.installed soak-inputs
	$(CARGO) build -p soak
	$(TARGET_DIR)/debug/soak --out RELIABILITY.md \
	  --corpus-log $(SOAK_LOGS)/corpus.log --secrets-log $(SOAK_LOGS)/secrets.log $(SOAK_ARGS)

soak-quick: $(VENV)/.installed
	$(CARGO) build -p soak
	$(TARGET_DIR)/debug/soak --quick --out RELIABILITY.md $(SOAK_ARGS)

# ------------------------------------------------------------- fuzzing ----

# cargo-fuzz targets in tests/fuzz (its own workspace and target dir, nightly only; never
# part of `make test`). `make fuzz` runs each target for FUZZ_RUNS executions (capped at
# FUZZ_SECONDS seconds when set: whichever comes first), one after the other, and writes one line per target to
# tests/fuzz/summary.tsv (target, executions, seconds, exec/s, crashes) for the soak
# report. Crashes land in tests/fuzz/artifacts/<target>/. `make fuzz-smoke`: 20,000 runs each.
# FUZZ_SANITIZER=address for ASan (about 2x slower; our code has no unsafe).
.PHONY: fuzz fuzz-smoke fuzz-tools fuzz-build
FUZZ_DIR := tests/fuzz
FUZZ_TARGETS ?= event_classifier trust_policy aws_auth config arn_token
FUZZ_RUNS ?= 10000000
FUZZ_SECONDS ?=
FUZZ_SANITIZER ?= none
FUZZ_SUMMARY ?= $(FUZZ_DIR)/summary.tsv
CARGO_FUZZ_VERSION := 0.13.2
FUZZ_CARGO := CARGO_TARGET_DIR=$(CURDIR)/$(FUZZ_DIR)/target cargo +nightly fuzz
FUZZ_FLAGS := --fuzz-dir $(FUZZ_DIR) --sanitizer $(FUZZ_SANITIZER) --debug-assertions

fuzz-tools:
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@cargo +nightly fuzz --version 2>/dev/null | grep -q ' $(CARGO_FUZZ_VERSION)$$' || \
	  cargo install cargo-fuzz --version $(CARGO_FUZZ_VERSION) --locked

fuzz-build: fuzz-tools
	$(FUZZ_CARGO) build $(FUZZ_FLAGS)

fuzz: fuzz-build
	$(PYTHON) $(FUZZ_DIR)/seed.py $(FUZZ_DIR)/corpus
	@printf 'target\texecutions\tseconds\texec_per_s\tcrashes\n' > $(FUZZ_SUMMARY)
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_DIR)/artifacts/$$t $(FUZZ_DIR)/corpus/$$t; \
	  log=$(FUZZ_DIR)/artifacts/$$t.log; \
	  limit="-runs=$(FUZZ_RUNS)$(if $(FUZZ_SECONDS), -max_total_time=$(FUZZ_SECONDS))"; \
	  dict=; [ ! -f $(FUZZ_DIR)/dicts/$$t.dict ] || dict=-dict=$(FUZZ_DIR)/dicts/$$t.dict; \
	  echo "fuzz $$t ($$limit)"; \
	  before=$$(ls $(FUZZ_DIR)/artifacts/$$t | wc -l); \
	  start=$$(date +%s.%N); status=0; \
	  $(FUZZ_CARGO) run $(FUZZ_FLAGS) $$t $(FUZZ_DIR)/corpus/$$t -- \
	    $$limit $$dict -print_final_stats=1 -print_pcs=0 \
	    -artifact_prefix=$(FUZZ_DIR)/artifacts/$$t/ >$$log 2>&1 || status=$$?; \
	  end=$$(date +%s.%N); \
	  runs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $$log | tail -1); \
	  crashes=$$(( $$(ls $(FUZZ_DIR)/artifacts/$$t | wc -l) - before )); \
	  [ $$status -eq 0 ] || [ $$crashes -gt 0 ] || crashes=1; \
	  awk -v t=$$t -v r="$${runs:-0}" -v s=$$start -v e=$$end -v c=$$crashes \
	    'BEGIN { d = e - s; printf "%s\t%d\t%.1f\t%.0f\t%d\n", t, r, d, (d > 0 ? r / d : 0), c }' \
	    >> $(FUZZ_SUMMARY); \
	  tail -1 $(FUZZ_SUMMARY); \
	done
	@column -t $(FUZZ_SUMMARY)
	@! awk -F'\t' 'NR > 1 && $$5 > 0 { found = 1 } END { exit !found }' $(FUZZ_SUMMARY) || \
	  { echo "fuzzing found crashes: see $(FUZZ_DIR)/artifacts/"; exit 1; }

fuzz-smoke:
	$(MAKE) fuzz FUZZ_RUNS=20000 FUZZ_SECONDS= FUZZ_SUMMARY=$(FUZZ_DIR)/summary-smoke.tsv
