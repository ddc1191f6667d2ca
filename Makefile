# sluice — make targets. `make run` and `make test` are the two commands a
# new machine needs (README.md).

GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
BIN       := bin/sluice
FUZZTIME  ?= 50000x
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
PREFIX    ?= /usr/local

.PHONY: all build run test race check vet fmt staticcheck fuzz cover bench gobench install clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/sluice

# run: start sluice on the example configuration, data in ./data,
# listening on 127.0.0.1:2525 (Ctrl-C stops it).
run: build
	./$(BIN) --config config.example.toml serve

# test: vet, then every test with the race detector in random order.
test: vet
	$(GO) test -race -shuffle=on -timeout 20m ./...

race: test

vet:
	$(GO) vet ./...

fmt:
	gofmt -s -w $$(git ls-files '*.go')

staticcheck:
	$(GO) run $(STATICCHECK) ./...

# check: what CI insists on besides the tests.
check: vet staticcheck
	@out=$$(gofmt -s -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt -s would change:"; echo "$$out"; exit 1; fi

# fuzz: every fuzz target for FUZZTIME each (one target per run, as go
# test -fuzz requires). Crashers land in the package's testdata/fuzz.
# The default is a count of executions, not a duration: with a duration,
# Go 1.26's fuzz coordinator can fail a target with "context deadline
# exceeded" when the time runs out while a worker is busy (golang/go#75804,
# fixed in Go 1.27; it failed CI once on FuzzParsePriority, no crasher).
# A count has no deadline to race. FUZZTIME=10m still works for a long run.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
		for t in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/^func //'); do \
			echo "== $$pkg $$t"; \
			$(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 3s $$pkg; \
		done; \
	done

cover:
	mkdir -p coverage
	$(GO) test -coverprofile=coverage/unit.out ./...
	$(GO) tool cover -func=coverage/unit.out | tail -1

# bench: sluice against Postfix and the no-relay bound on this machine,
# one table (tools/relaybench; docs/performance.md). Needs Postfix's
# smtp-source and smtp-sink; Postfix itself is measured when it can run
# (root). BENCHFLAGS passes options, e.g. BENCHFLAGS='-scale 0.2 -runs 1'.
BENCHFLAGS ?=
bench: build
	$(GO) run ./tools/relaybench -sluice $(BIN) $(BENCHFLAGS)

# gobench: the Go benchmarks that stay in the repository.
gobench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# install: the binary, a configuration (never over an existing one) with
# data_dir = /var/lib/sluice (the service's StateDirectory), the systemd
# unit and the sysusers file for the sluice user. See
# docs/README-operations.md for the steps after it.
install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/sluice
	test -e $(DESTDIR)/etc/sluice/sluice.toml || { \
		install -d -m 0755 $(DESTDIR)/etc/sluice && \
		sed 's|^data_dir = "./data"|data_dir = "/var/lib/sluice"|' config.example.toml > $(DESTDIR)/etc/sluice/sluice.toml && \
		chmod 0640 $(DESTDIR)/etc/sluice/sluice.toml; }
	sed 's|/usr/local/bin/sluice|$(PREFIX)/bin/sluice|g' contrib/systemd/sluice.service > sluice.service.tmp
	install -D -m 0644 sluice.service.tmp $(DESTDIR)$(PREFIX)/lib/systemd/system/sluice.service
	rm -f sluice.service.tmp
	install -D -m 0644 contrib/systemd/sluice.sysusers $(DESTDIR)$(PREFIX)/lib/sysusers.d/sluice.conf

clean:
	rm -rf bin coverage
