# Thin wrapper around Meson + Ninja. See README.md.
#   make          build build/mailgate (optimised)
#   make check    install missing Debian packages, build with ASan+UBSan, run every test
#   make fuzz     run each libFuzzer target for FUZZ_RUNS iterations
#   make demo     start a local test stack and the gateway, run a real client session
#   make bench    logins/s, FETCH MiB/s, CPU per login and per MiB, RSS per IDLE session: mailgate
#                 vs direct vs an HAProxy TLS bridge (BENCH_ARGS=--quick: a 2-minute smoke run)
#   make install  build/mailgate to $(PREFIX)/bin, the unit file, the [gateway] user if missing
.PHONY: all deps check fuzz demo bench format clean install

BUILD      := build
TEST_BUILD := build-test
FUZZ_BUILD := build-fuzz
FUZZ_RUNS  ?= 1000000
CHECK_FUZZ_RUNS ?= 1000000
PYTHON     := /usr/bin/python3
PREFIX     ?= /usr/local
MG_USER    ?= mailgate

all: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

deps:
	@scripts/install-deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=release -Dtests=false

$(TEST_BUILD)/build.ninja:
	meson setup $(TEST_BUILD) --buildtype=debugoptimized -Db_sanitize=address,undefined \
		-Db_lundef=false -Dtests=true

$(FUZZ_BUILD)/build.ninja:
	CC=clang meson setup $(FUZZ_BUILD) --buildtype=debugoptimized -Dfuzz=true -Dtests=false \
		-Db_sanitize=address,undefined -Db_lundef=false

check: deps $(TEST_BUILD)/build.ninja $(FUZZ_BUILD)/build.ninja $(BUILD)/build.ninja
	ninja -C $(TEST_BUILD)
	ninja -C $(FUZZ_BUILD)
	ninja -C $(BUILD)
	$(PYTHON) scripts/check.py --build $(TEST_BUILD) --fuzz-build $(FUZZ_BUILD) \
		--release-build $(BUILD) \
		--fuzz-runs $(CHECK_FUZZ_RUNS)

fuzz: deps $(FUZZ_BUILD)/build.ninja
	ninja -C $(FUZZ_BUILD)
	$(PYTHON) scripts/check.py --only-fuzz --fuzz-build $(FUZZ_BUILD) --fuzz-runs $(FUZZ_RUNS)

demo: all
	scripts/demo.sh

bench: all
	$(PYTHON) bench/bench.py --mailgate $(BUILD)/mailgate $(BENCH_ARGS)

# The gateway runs as [gateway] user (default mailgate): the systemd unit starts it as that
# user, and `serve` started as root drops to it and refuses to start without it, so create it
# here (a system user, no login shell).
install: all
	install -D -m 755 $(BUILD)/mailgate $(DESTDIR)$(PREFIX)/bin/mailgate
	install -D -m 644 contrib/mailgate.service $(DESTDIR)/etc/systemd/system/mailgate.service
	install -D -m 644 README.md $(DESTDIR)$(PREFIX)/share/doc/mailgate/README.md
	id $(MG_USER) >/dev/null 2>&1 || \
		adduser --system --group --home /var/lib/mailgate --no-create-home $(MG_USER)

format:
	clang-format -i src/*.c src/*/*.c src/*/*.h tests/unit/*.c fuzz/*.c

clean:
	rm -rf $(BUILD) $(TEST_BUILD) $(FUZZ_BUILD)
