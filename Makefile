# drctl's commands. `make demo` and `make test` are the two set-up commands
# of the README: each installs what it needs on a fresh machine first.
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
TEMPORAL_CLI_VERSION := v1.5.1
TEMPORAL_SERVER_VERSION := v1.29.1
STATICCHECK_VERSION := v0.8.2
WORKFLOWCHECK_VERSION := v0.6.0
export DRCTL_TEMPORAL_BIN := $(BIN)/temporal

.PHONY: demo test check lint bench bench-fleet bench-sites bench-pg chaos histories fuzz build temporal cluster tools deps clean

## demo: fail the two-site lab over for real under write load (site-failover.yaml), report, then fail back
demo: deps temporal
	$(GO) run ./cmd/drctl demo --yes --failback

## test: every test (unit, workflow, real dev server, PostgreSQL, BIND, HAProxy, lab, chaos subset, replay), then lint
test: deps temporal cluster tools
	$(GO) test -count=1 -timeout 15m ./...
	$(MAKE) --no-print-directory check

## check: gofmt, go vet, staticcheck, workflowcheck
check: tools
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(BIN)/staticcheck ./...
	$(BIN)/workflowcheck ./workflows/...

## bench: per-step overhead table (tuned vs default dev server)
bench: temporal
	$(GO) run ./tests/bench

## bench-fleet: fleet figures (issue 15): 10/100/500 concurrent 5-step service runs, then the same fleet as one parent runbook (for_each, max_parallel 100), server vs worker CPU, dev server in memory and on SQLite, and the PostgreSQL-backed cluster (4 services, mutual TLS); per-step overhead of note vs activity steps
bench-fleet: temporal cluster
	$(GO) run ./tests/bench -fleet 10,100,500 -fleet-parallel 100 -fleet-db memory,sqlite,cluster

## bench-sites: site-loss figures (root: network namespaces): power cut -> proposed failover run (p50/max of 10 cuts), false proposals under 100 single-watcher partitions
bench-sites: deps temporal
	$(GO) run ./tests/bench -sites-cuts 10 -sites-partitions 100

## bench-pg: planned PostgreSQL switchover, drctl vs a bare psql script
bench-pg: deps temporal
	$(GO) run ./tests/pgbench

## chaos: the resilience suite and its figures: the worker SIGKILLed at every kill point of site-failover on the lab (a table), then the takeover, power-loss, restart, concurrency and drill-fault tests
chaos: deps temporal
	$(GO) run ./tests/chaos
	DRCTL_CI=1 $(GO) test -count=1 -v -run 'Killed|Takes|Restart|Concurrent|OneRunPerLock|PowerLoss|Chaos' ./tests/ ./workflows/ 2>&1 | grep -E '^(=== RUN|--- |ok|FAIL)|: (run finished|takeover|run completed|failover: run ended|data:)'

## histories: re-record the replay histories in tests/histories/
histories: temporal
	DRCTL_RECORD_HISTORIES=1 $(GO) test -count=1 -run TestRecordHistories ./tests/

## fuzz: fuzz the runbook parser for a minute
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 60s ./runbooks/

build:
	$(GO) build -o $(BIN)/drctl ./cmd/drctl

## deps: system packages the lab and the tests need (PostgreSQL 15, BIND 9, HAProxy, ...; apt when root); the list is internal/lab/deps.go
deps:
	@GO=$(GO) scripts/install-deps.sh

## temporal: the Temporal CLI (dev server), built from source into bin/
temporal: $(BIN)/temporal
$(BIN)/temporal:
	GOBIN=$(BIN) $(GO) install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_CLI_VERSION)

## cluster: the Temporal server and its SQL tool, built from the server's module into bin/ (the PostgreSQL-backed cluster of internal/tcluster; ~3 min cold)
cluster: $(BIN)/temporal-server $(BIN)/temporal-sql-tool
$(BIN)/temporal-server:
	GOBIN=$(BIN)/.server $(GO) install go.temporal.io/server/cmd/server@$(TEMPORAL_SERVER_VERSION)
	mv $(BIN)/.server/server $@ && rmdir $(BIN)/.server
# After the server (order-only): under make -j the two heavy builds never run at once.
$(BIN)/temporal-sql-tool: | $(BIN)/temporal-server
	GOBIN=$(BIN)/.sql $(GO) install go.temporal.io/server/cmd/tools/sql@$(TEMPORAL_SERVER_VERSION)
	mv $(BIN)/.sql/sql $@ && rmdir $(BIN)/.sql

tools: $(BIN)/staticcheck $(BIN)/workflowcheck
$(BIN)/staticcheck:
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
$(BIN)/workflowcheck:
	GOBIN=$(BIN) $(GO) install go.temporal.io/sdk/contrib/tools/workflowcheck@$(WORKFLOWCHECK_VERSION)

clean:
	rm -rf $(BIN) .drctl
