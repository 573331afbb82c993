# libFuzzer targets: tests/fuzz/fuzz_NAME.c, each with a seed corpus in
# tests/fuzz/corpus/NAME/.  Built with clang, ASan and UBSan, against every
# source file of the project except the programs' main().
#
#   make -f tests/fuzz/fuzz.mk smoke SECONDS=10   each target briefly (make test)
#   make -f tests/fuzz/fuzz.mk run SECONDS=600    each target for longer
#   make -j2 -f tests/fuzz/fuzz.mk long SECONDS=1800
#                        each target for SECONDS of CPU, as many at once as -j says, then
#                        what it found that adds coverage merged into its committed corpus

FUZZ_BUILD ?= build/fuzz
SECONDS ?= 10
FCC := clang
PKGS := libuv libsodium openssl jansson inih
FCFLAGS := -g -O1 -std=c17 -D_GNU_SOURCE -fno-omit-frame-pointer \
	-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all \
	-Iinclude -Isrc $(shell pkg-config --cflags $(PKGS)) -MMD -MP
FLIBS := $(shell pkg-config --libs $(PKGS) libseccomp hiredis) -lpam -lpthread

LIB_SRC := $(wildcard src/common/*.c src/proto/*.c src/crypto/*.c src/legacy/*.c) \
	$(filter-out src/server/daemon/main.c,$(wildcard src/server/*/*.c)) \
	$(filter-out src/client/cli/%,$(wildcard src/client/*/*.c))
LIB_OBJ := $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(LIB_SRC))
TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
BINS := $(addprefix $(FUZZ_BUILD)/fuzz_,$(TARGETS))

# A header's change rebuilds the objects that include it.
-include $(LIB_OBJ:.o=.d) $(BINS:=.d)

.PHONY: all smoke run long
all: $(BINS)

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FCC) $(FCFLAGS) -c -o $@ $<

$(FUZZ_BUILD)/libfuzzed.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_BUILD)/libfuzzed.a
	$(FCC) $(FCFLAGS) -fsanitize=fuzzer -o $@ $(filter %.c,$^) $(filter %.a,$^) $(FLIBS)

# What the targets include from here: a change rebuilds them.
$(BINS): tests/fuzz/fuzz.h tests/fuzz/fuzz_random.h

# The session targets drive whole sessions through the in-process worker of tests/harness/.
$(FUZZ_BUILD)/fuzz_session $(FUZZ_BUILD)/fuzz_sealed_session: tests/harness/session_harness.c \
	tests/harness/session_harness.h

# The TLS targets' fixed certificates and keys.
$(FUZZ_BUILD)/fuzz_tls $(FUZZ_BUILD)/fuzz_client_tls: tests/fuzz/fuzz_tls_keys.h

# five agent's line parser lives with the five command, outside the fuzzed library.
$(FUZZ_BUILD)/fuzz_agentline: src/client/cli/agentline.c

# libfive-shim.so's configuration parser lives in src/shim/, outside the fuzzed library.
$(FUZZ_BUILD)/fuzz_shimconf: src/shim/conf.c src/shim/table.c

# five gateway's DNS responder lives in src/gateway/, with the shim's mapping, and uses ldns.
$(FUZZ_BUILD)/fuzz_gwdns: src/gateway/dns.c src/gateway/pool.c src/shim/conf.c src/shim/table.c
$(FUZZ_BUILD)/fuzz_gwdns: FLIBS += $(shell pkg-config --libs ldns)

# Each target of $(2) runs over a scratch copy of its corpus, so the committed seeds
# stay as they are.  An input that runs longer than UNIT_TIMEOUT seconds is a hang,
# and fails the run like a crash.
UNIT_TIMEOUT ?= 60
define run_target
	@set -e; for t in $(2); do \
		echo "== fuzz_$$t ($(1) s)"; \
		rm -rf $(FUZZ_BUILD)/work/$$t; mkdir -p $(FUZZ_BUILD)/work/$$t; \
		$(FUZZ_BUILD)/fuzz_$$t -max_total_time=$(1) -timeout=$(UNIT_TIMEOUT) -print_final_stats=0 \
			-artifact_prefix=$(FUZZ_BUILD)/work/$$t- \
			$(FUZZ_BUILD)/work/$$t tests/fuzz/corpus/$$t 2>&1 | tail -n 3; \
		test $${PIPESTATUS[0]} -eq 0; \
	done
endef

smoke: SHELL := /bin/bash
smoke: $(BINS)
	$(call run_target,$(SECONDS),$(TARGETS))

run: SHELL := /bin/bash
run: $(BINS)
	$(call run_target,$(SECONDS),$(TARGETS))

# The campaign: a target's run grows a scratch corpus from the committed one, and
# libFuzzer's merge then copies into the committed corpus only the inputs that add
# coverage.  A crash or a hang stops the target with its input saved beside the log.
LONG_DIR := $(FUZZ_BUILD)/long
long: $(addprefix long-,$(TARGETS))

long-%: $(FUZZ_BUILD)/fuzz_%
	@rm -rf $(LONG_DIR)/$*; mkdir -p $(LONG_DIR)/$*
	@echo "== fuzz_$* ($(SECONDS) s): $(LONG_DIR)/$*.log"
	@$(FUZZ_BUILD)/fuzz_$* -max_total_time=$(SECONDS) -timeout=$(UNIT_TIMEOUT) \
		-print_final_stats=1 -artifact_prefix=$(LONG_DIR)/$*- \
		$(LONG_DIR)/$* tests/fuzz/corpus/$* > $(LONG_DIR)/$*.log 2>&1
	@$(FUZZ_BUILD)/fuzz_$* -merge=1 -timeout=$(UNIT_TIMEOUT) \
		tests/fuzz/corpus/$* $(LONG_DIR)/$* >> $(LONG_DIR)/$*.log 2>&1
	@grep -E "^#[0-9]+ +DONE|^stat::number_of_executed_units|MERGE-OUTER: [0-9]+ new files" \
		$(LONG_DIR)/$*.log | sed "s/^/   $*: /"
