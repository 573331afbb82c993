# fived: a session layer for TCP/IP.
#
#   make            build fived, five, libfive, libfive-shim.so
#   make deps       install the Debian packages the build and the tests need
#   make test       deps, then lint, unit, end-to-end and fuzz tests, then all again under ASan+UBSan,
#                   then the Debian packages built and checked
#   make run        deps, then build and start fived with its built-in configuration
#   make fuzz       run every libFuzzer target for FUZZ_SECONDS each
#   make fuzz-long  the campaign: every target for FUZZ_LONG_SECONDS (30 min) on every CPU,
#                   what adds coverage merged into tests/fuzz/corpus/ (to commit)
#   make bench      benchmarks (root), writes bench/REPORT.md
#   make soak       thousands of sessions for SOAK_SECONDS (default 600) under timed faults
#                   (root), writes bench/SOAK.md; not part of make test
#   make install    PREFIX=/usr/local DESTDIR= LIBDIR= USERUNITDIR=
#   make deb        the Debian packages, in build/deb/ (make test-package checks them)

PREFIX ?= /usr/local
DESTDIR ?=
LIBDIR ?= $(PREFIX)/lib
# five agent's systemd user units (systemd looks in /usr/local/lib/systemd/user too).
USERUNITDIR ?= $(PREFIX)/lib/systemd/user
VERSION := 0.1.0
BUILD ?= build
CC ?= cc
PYTHON ?= /usr/bin/python3
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 3
FUZZ_LONG_SECONDS ?= 1800
SOAK_SECONDS ?= 600

# Compiler jobs for test-build.
JOBS ?= $(shell nproc 2>/dev/null || echo 1)

PKGS := libuv libsodium openssl jansson inih
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# Only fived confines itself: the client and libfive do not link libseccomp.
SERVER_LIBS := $(shell pkg-config --libs libseccomp hiredis 2>/dev/null)
# systemd's notifications and socket activation, in fived alone, when libsystemd is there.
HAVE_SYSTEMD := $(shell pkg-config --exists libsystemd 2>/dev/null && echo 1)
ifeq ($(HAVE_SYSTEMD),1)
SERVER_LIBS += $(shell pkg-config --libs libsystemd)
SYSTEMD_CFLAGS := -DFIVE_HAVE_SYSTEMD $(shell pkg-config --cflags libsystemd)
endif

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wpointer-arith -Wformat=2 -Wvla -Wno-unused-parameter
OPT ?= -O2 -g
CFLAGS ?=
CFLAGS += $(OPT) -std=c17 -D_GNU_SOURCE -fPIC -fno-strict-aliasing -fstack-protector-strong \
	$(WARN) -Iinclude -Isrc $(PKG_CFLAGS) -MMD -MP
LDLIBS += $(PKG_LIBS) -lpam -lpthread

ifeq ($(SAN),1)
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
endif

CORE_SRC := $(wildcard src/common/*.c src/proto/*.c src/crypto/*.c src/legacy/*.c)
SERVER_SRC := $(filter-out src/server/daemon/main.c,$(wildcard src/server/*/*.c))
CLI_SRC := $(wildcard src/client/cli/*.c)
SHIM_SRC := $(wildcard src/shim/*.c)
GATEWAY_SRC := $(wildcard src/gateway/*.c)
CLIENT_SRC := $(filter-out $(CLI_SRC),$(wildcard src/client/*/*.c))
UNIT_SRC := $(wildcard tests/unit/test_*.c)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
HELPER_SRC := $(wildcard tests/helpers/*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

CORE_LIB := $(BUILD)/libcore.a
SERVER_LIB := $(BUILD)/libserver.a
FIVE_OBJ := $(call obj,$(CLIENT_SRC) $(CORE_SRC))
# libfive as installed: only include/five.h's functions are global in it.
FIVE_LIB := $(BUILD)/libfive.a
# The shared library under its SONAME, so that a program linked against build/ runs with
# LD_LIBRARY_PATH=build before make install; libfive.so, what the linker looks for, links to it.
FIVE_SONAME := libfive.so.0
FIVE_SO := $(BUILD)/$(FIVE_SONAME)
FIVE_SO_LINK := $(BUILD)/libfive.so
# The same objects, every symbol left as it is: for the five command and the tests.
FIVE_INTERNAL_LIB := $(BUILD)/libfive-internal.a
FIVED := $(BUILD)/fived
FIVE := $(BUILD)/five
FIVECTL := $(BUILD)/fivectl
# The LD_PRELOAD shim (five run), installed in SHIM_DIR, where five run looks for it.
SHIM := $(BUILD)/libfive-shim.so
SHIM_DIR := $(LIBDIR)/five
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
# five gateway's program (five-gateway(8)), installed beside the shim, where five looks for it.
GATEWAY := $(BUILD)/five-gateway
# The DNS library, for the gateway alone.
LDNS_CFLAGS := $(shell pkg-config --cflags ldns 2>/dev/null)
LDNS_LIBS := $(shell pkg-config --libs ldns 2>/dev/null)
HELPER_BIN := $(patsubst tests/helpers/%.c,$(BUILD)/helpers/%,$(HELPER_SRC))

.SECONDARY:
.PHONY: FORCE all deps test test-unit test-e2e test-fuzz test-asan run fuzz bench soak install \
	clean format lint deb test-package test-bins test-build
all: $(FIVED) $(FIVE) $(FIVECTL) $(FIVE_LIB) $(FIVE_SO) $(FIVE_SO_LINK) $(SHIM) $(GATEWAY)

ifeq ($(V),1)
Q :=
else
Q := @
endif

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(CORE_LIB): $(call obj,$(CORE_SRC))
	@rm -f $@
	$(AR) rcs $@ $^

$(SERVER_LIB): $(call obj,$(SERVER_SRC))
	@rm -f $@
	$(AR) rcs $@ $^

# Only five.h's FIVE_EXPORT functions keep default visibility in libfive's objects
# (made again when this file, and with it the flag, changes).
$(FIVE_OBJ): CFLAGS += -fvisibility=hidden
$(FIVE_OBJ): Makefile

# The files that use libsystemd, when it is there.
SYSTEMD_SRC := $(addprefix src/server/privsep/,notify.c activation.c logsink.c)
$(call obj,$(SYSTEMD_SRC)): CFLAGS += $(SYSTEMD_CFLAGS)
$(call obj,$(SYSTEMD_SRC)): Makefile

$(FIVE_INTERNAL_LIB): $(FIVE_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

# One relocatable object whose hidden symbols are made local: an application
# linking libfive.a statically sees five.h's names, and none of libfive's own
# (buf_init, log_init, ...) to collide with.
$(BUILD)/libfive.o: $(FIVE_OBJ)
	$(LD) -r -o $@ $^
	objcopy --localize-hidden $@

$(FIVE_LIB): $(BUILD)/libfive.o
	@rm -f $@
	$(AR) rcs $@ $^

$(FIVE_SO): $(FIVE_OBJ) src/client/libfive.map
	$(CC) -shared -Wl,-soname,$(FIVE_SONAME) -Wl,--version-script=src/client/libfive.map \
		$(LDFLAGS) -o $@ $(filter %.o,$^) $(LDLIBS)

$(FIVE_SO_LINK): $(FIVE_SO)
	ln -sf $(FIVE_SONAME) $@

# libfive-shim.so: its objects and libfive's (the internal archive, of which only what it
# uses is linked in), in one library that needs no libfive.so.0 at run time, so that
# LD_PRELOAD works for any program, linked against whatever libfive or none.  Only the
# interposed functions are global (shim.map): libfive's own names inside it stay local.
$(call obj,$(SHIM_SRC)): CFLAGS += -fvisibility=hidden
$(call obj,$(SHIM_SRC)): Makefile

SHIM_OBJ := $(call obj,$(SHIM_SRC) src/client/cli/agentline.c)
$(SHIM): $(SHIM_OBJ) $(FIVE_INTERNAL_LIB) src/shim/shim.map
	$(CC) -shared -Wl,--version-script=src/shim/shim.map -Wl,--as-needed $(LDFLAGS) -o $@ \
		$(SHIM_OBJ) $(FIVE_INTERNAL_LIB) $(LDLIBS) -ldl

# The gateway: its objects, the shim's mapping (conf.o, which checks rules against table.o's
# range) and requests (open.o), the five command's sessions (every cli object but main.o),
# libfive's internals.
$(call obj,$(GATEWAY_SRC)): CFLAGS += $(LDNS_CFLAGS)
GATEWAY_OBJ := $(call obj,$(GATEWAY_SRC) src/shim/conf.c src/shim/table.c src/shim/open.c \
	$(filter-out src/client/cli/main.c,$(CLI_SRC)))
$(GATEWAY): $(GATEWAY_OBJ) $(FIVE_INTERNAL_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(LDNS_LIBS)

# five run and five gateway fall back on SHIM_DIR: main.o is made again when it changes.
$(BUILD)/shim_dir: FORCE
	@mkdir -p $(dir $@)
	@echo '$(SHIM_DIR)' | cmp -s - $@ || echo '$(SHIM_DIR)' > $@
$(call obj,src/client/cli/main.c): $(BUILD)/shim_dir
$(call obj,src/client/cli/main.c): CFLAGS += -DFIVE_SHIM_DIR='"$(SHIM_DIR)"'

$(FIVED): $(call obj,src/server/daemon/main.c) $(SERVER_LIB) $(CORE_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(SERVER_LIBS)

$(FIVE): $(call obj,$(CLI_SRC)) $(FIVE_INTERNAL_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# fivectl speaks to fived's admin socket: the protocol's code, nothing of the server.
$(FIVECTL): $(call obj,src/fivectl/fivectl.c src/fivectl/merge.c) $(CORE_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Objects before the libraries, extra ones (see test_session) included.
$(BUILD)/tests/%: $(call obj,tests/unit/%.c) $(SERVER_LIB) $(FIVE_INTERNAL_LIB) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(filter %.a,$^) $(LDLIBS) $(SERVER_LIBS) -lcmocka

# The shim's pure parts (its configuration, its address table, its errors); not its hooks.
$(BUILD)/tests/test_shim: $(call obj,src/shim/conf.c src/shim/table.c src/shim/open.c \
	src/client/cli/agentline.c)

# The gateway's pool and DNS responder, with the shim's mapping, and ldns.
$(BUILD)/tests/test_gateway: $(call obj,src/gateway/dns.c src/gateway/pool.c src/shim/conf.c \
	src/shim/table.c)
$(BUILD)/tests/test_gateway: LDLIBS += $(LDNS_LIBS)
$(call obj,tests/unit/test_gateway.c): CFLAGS += $(LDNS_CFLAGS)

# Tests that drive whole sessions link the in-process worker of tests/harness/.
$(BUILD)/tests/test_session: $(call obj,tests/harness/session_harness.c)

# The helpers are applications of libfive: they link it as installed.
$(BUILD)/helpers/%: $(call obj,tests/helpers/%.c) $(FIVE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# --- tests -------------------------------------------------------------------

# The published test vectors the unit and end-to-end tests check against.
FIVE_VECTORS_DIR ?= $(abspath tests/vectors)
export FIVE_VECTORS_DIR

test-unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; ./$$t; done

test-e2e: all $(HELPER_BIN)
	FIVE_BUILD=$(abspath $(BUILD)) $(PYTHON) -m pytest -q -p no:cacheprovider tests/e2e

test-fuzz:
	$(MAKE) -f tests/fuzz/fuzz.mk smoke SECONDS=$(FUZZ_SMOKE_SECONDS)

test-asan:
	$(MAKE) BUILD=build/asan SAN=1 OPT="-O1 -g" test-unit test-e2e

# The programs and tests of a build, for test-build.
test-bins: all $(UNIT_BIN) $(HELPER_BIN)

# What every stage of make test needs, built first on every CPU: the
# stages themselves then run one after another, as their timings assume.
test-build:
	$(MAKE) -j$(JOBS) test-bins
	$(MAKE) -j$(JOBS) BUILD=build/asan SAN=1 OPT="-O1 -g" test-bins
	$(MAKE) -j$(JOBS) -f tests/fuzz/fuzz.mk all

test: deps
	$(MAKE) test-build
	$(MAKE) lint test-unit test-e2e test-fuzz test-asan test-package
	@echo "make test: all passed"

fuzz:
	$(MAKE) -f tests/fuzz/fuzz.mk run SECONDS=$(FUZZ_SECONDS)

fuzz-long:
	$(MAKE) -j$(JOBS) -f tests/fuzz/fuzz.mk long SECONDS=$(FUZZ_LONG_SECONDS)

# --- running, installing -----------------------------------------------------

run: deps
	$(MAKE) all
	@echo "starting fived with its built-in configuration; in another terminal try:"
	@echo "  echo hello | $(BUILD)/five 127.0.0.1 echo"
	exec $(FIVED)

bench: all
	bench/run.sh

soak: all $(SOAK_TOOLS) $(BUILD)/bench/benchtool
	$(PYTHON) tests/soak/soak.py --build $(BUILD) --seconds $(SOAK_SECONDS)

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(LIBDIR)/pkgconfig \
		$(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/share/man/man1 \
		$(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/man/man8 \
		$(DESTDIR)$(USERUNITDIR)
	install -m 755 $(FIVED) $(DESTDIR)$(PREFIX)/sbin/fived
	install -m 755 $(FIVE) $(DESTDIR)$(PREFIX)/bin/five
	install -m 755 $(FIVECTL) $(DESTDIR)$(PREFIX)/sbin/fivectl
	install -m 644 $(FIVE_LIB) $(DESTDIR)$(LIBDIR)/libfive.a
	install -m 644 $(FIVE_SO) $(DESTDIR)$(LIBDIR)/$(FIVE_SONAME)
	install -d $(DESTDIR)$(SHIM_DIR)
	install -m 644 $(SHIM) $(DESTDIR)$(SHIM_DIR)/libfive-shim.so
	install -m 755 $(GATEWAY) $(DESTDIR)$(SHIM_DIR)/five-gateway
	ln -sf $(FIVE_SONAME) $(DESTDIR)$(LIBDIR)/libfive.so
	# pkg-config's description of libfive where it is installed; its own libraries are private.
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@VERSION@|$(VERSION)|' \
		-e 's|@REQUIRES@|$(PKGS)|' src/client/libfive.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/libfive.pc
	chmod 644 $(DESTDIR)$(LIBDIR)/pkgconfig/libfive.pc
	install -m 644 include/five.h $(DESTDIR)$(PREFIX)/include/five.h
	install -m 644 docs/five.1 $(DESTDIR)$(PREFIX)/share/man/man1/five.1
	install -m 644 docs/fived.conf.5 $(DESTDIR)$(PREFIX)/share/man/man5/fived.conf.5
	install -m 644 docs/fived.8 $(DESTDIR)$(PREFIX)/share/man/man8/fived.8
	install -m 644 docs/fivectl.8 $(DESTDIR)$(PREFIX)/share/man/man8/fivectl.8
	install -m 644 docs/five-gateway.8 $(DESTDIR)$(PREFIX)/share/man/man8/five-gateway.8
	# The agent's user units, naming five where it is installed.
	sed -e 's|/usr/bin/five|$(PREFIX)/bin/five|' contrib/systemd/five-agent.service \
		> $(DESTDIR)$(USERUNITDIR)/five-agent.service
	install -m 644 contrib/systemd/five-agent.socket $(DESTDIR)$(USERUNITDIR)/five-agent.socket
	chmod 644 $(DESTDIR)$(USERUNITDIR)/five-agent.service
	@getent passwd fived >/dev/null || echo "make install: fived's worker needs an account" \
		"of its own (see fived(8)): useradd --system --no-create-home" \
		"--shell /usr/sbin/nologin fived"

# The packages are built from a copy of the tree in build/deb/, so that
# dpkg-buildpackage writes them there and not beside the source tree.
DEB_DIR := $(BUILD)/deb
deb:
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)/fived-$(VERSION)
	tar -c --exclude=./build --exclude=./.git . | tar -x -C $(DEB_DIR)/fived-$(VERSION)
	cd $(DEB_DIR)/fived-$(VERSION) && dpkg-buildpackage -us -uc -b
	@ls $(DEB_DIR)/*.deb

test-package: deb
	DEB_DIR=$(abspath $(DEB_DIR)) $(PYTHON) -m pytest -q -p no:cacheprovider tests/package

# --- maintenance -------------------------------------------------------------

DEB_BUILD := gcc make pkg-config clang libclang-rt-14-dev libuv1-dev libsodium-dev \
	libssl-dev libjansson-dev libinih-dev libcmocka-dev libpam0g-dev libseccomp-dev libsystemd-dev \
	libldns-dev libhiredis-dev cppcheck
DEB_TEST := python3 python3-pytest python3-cryptography python3-nacl socat netcat-openbsd xinetd \
	openssh-server openssh-client curl openssl libpam-wrapper libnss-wrapper haproxy stunnel4 procps \
	iproute2 nftables systemd logrotate util-linux python3-prometheus-client redis-server
DEB_PACKAGE := dpkg-dev debhelper fakeroot lintian

deps:
	@missing=$$(for p in $(DEB_BUILD) $(DEB_TEST) $(DEB_PACKAGE); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' \
		|| echo $$p; done); \
	if [ -z "$$missing" ]; then echo "make deps: nothing missing"; exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update && apt-get install -y --no-install-recommends $$missing; \
	else \
		echo "make deps: missing packages; run as root:"; \
		echo "  apt-get update && apt-get install -y $$missing"; exit 1; \
	fi

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

# The benchmark's tools are built here too (make bench builds its own copies), so that
# they keep compiling against libfive's internals as those change.
BENCH_TOOLS := $(BUILD)/bench/benchtool $(BUILD)/bench/delayline $(BUILD)/bench/aeadspeed
# The soak's load, on libfive's public interface only.
SOAK_TOOLS := $(BUILD)/soak/soakload

$(BUILD)/bench/benchtool: bench/benchtool.c bench/clock.h $(FIVE_INTERNAL_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ bench/benchtool.c $(FIVE_INTERNAL_LIB) $(LDFLAGS) $(LDLIBS)

$(BUILD)/bench/aeadspeed: bench/aeadspeed.c $(FIVE_INTERNAL_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ bench/aeadspeed.c $(FIVE_INTERNAL_LIB) $(LDFLAGS) $(LDLIBS)

$(BUILD)/bench/delayline: bench/delayline.c bench/clock.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ bench/delayline.c $(LDFLAGS)

$(BUILD)/soak/soakload: tests/soak/soakload.c $(FIVE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Ibench -o $@ tests/soak/soakload.c $(FIVE_LIB) $(LDFLAGS) $(LDLIBS)

lint: all $(BENCH_TOOLS) $(SOAK_TOOLS)
	$(PYTHON) tools/layers.py $(BUILD)
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
		--inline-suppr --std=c11 -Iinclude -Isrc src

clean:
	rm -rf build
