# tern: one Makefile for the daemon, the admin tool and every test.
#   make            build ternd and ternctl into $(B)/
#   make test       unit + protocol tests, then the same under ASan+UBSan
#   make asan       the test suite built with AddressSanitizer + UBSan
#   make run        quickstart server in ./tern-data
#   make fuzz       every libFuzzer target for FUZZ_SECONDS each
#   make unit-<m>   build and run the unit test of one module (fast loop)
# B=dir selects the build directory, so parallel builds do not collide.

B ?= build
CC ?= cc
MODULES := lib mime store auth smtp imap pop3 queue
CSTD := -std=c17 -D_GNU_SOURCE
WARN := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wformat=2 \
	-Wno-unused-parameter -Wmissing-prototypes -Wstrict-prototypes
OPT ?= -O2 -g
SAN ?=
# A sanitizer build is told so: the seccomp filter (src/lib/sandbox.c)
# then lets the sanitizers fork, exec and ptrace for their reports.
CFLAGS_ALL := $(CSTD) $(WARN) $(OPT) $(SAN) $(if $(SAN),-DTERN_SANITIZER_BUILD=1) \
	-Isrc -MMD -MP $(EXTRA_CFLAGS)
LDLIBS := -lssl -lcrypto -lsqlite3 -lsodium -lz -lcrypt -lcares -lpthread -lm

# Each module is one archive; later modules may use earlier ones only.
mod_srcs = $(wildcard src/$(1)/*.c)
mod_objs = $(patsubst src/%.c,$(B)/obj/%.o,$(call mod_srcs,$(1)))
mod_lib = $(B)/lib/libtern_$(1).a
# Link order: the module itself, then everything below it.
upto = $(if $(2),$(if $(filter $(1),$(firstword $(2))),$(firstword $(2)),$(firstword $(2)) $(call upto,$(1),$(wordlist 2,999,$(2)))))
rev = $(if $(1),$(call rev,$(wordlist 2,999,$(1))) $(firstword $(1)))
link_libs = $(foreach m,$(call rev,$(call upto,$(1),$(MODULES))),$(call mod_lib,$(m)))

ALL_LIBS := $(call link_libs,queue)

.SECONDARY:
.DELETE_ON_ERROR:
.PHONY: all test unit proto asan run fuzz clean deps bench docs format-check
all: $(B)/ternd $(B)/ternctl

deps:
	@sh scripts/deps.sh

$(B)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(foreach m,$(MODULES),$(eval $(call mod_lib,$(m)): $(call mod_objs,$(m)) ; @mkdir -p $$(dir $$@); rm -f $$@; ar rcs $$@ $$^))

$(B)/ternd: $(call mod_objs,ternd) $(ALL_LIBS)
	$(CC) $(OPT) $(SAN) -o $@ $(call mod_objs,ternd) $(ALL_LIBS) $(LDLIBS)

$(B)/ternctl: $(call mod_objs,ternctl) $(ALL_LIBS)
	$(CC) $(OPT) $(SAN) -o $@ $(call mod_objs,ternctl) $(ALL_LIBS) $(LDLIBS)

# Unit tests: tests/unit/test_<module>*.c, linked with the harness and the
# module plus everything below it.
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRCS))
unit_mod = $(firstword $(subst _, ,$(patsubst test_%,%,$(notdir $(1)))))

$(B)/obj/tests/%.o: tests/unit/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Itests/unit -c $< -o $@

.SECONDEXPANSION:
$(B)/tests/test_%: $(B)/obj/tests/test_%.o $(B)/obj/tests/harness.o $$(call link_libs,$$(call unit_mod,$$@))
	@mkdir -p $(dir $@)
	$(CC) $(OPT) $(SAN) -o $@ $< $(B)/obj/tests/harness.o \
		$(call link_libs,$(call unit_mod,$@)) $(LDLIBS)

# unit-lib builds and runs every tests/unit/test_lib*.c
unit-%:
	@bins="$(patsubst tests/unit/%.c,$(B)/tests/%,$(wildcard tests/unit/test_$**.c))"; \
	$(MAKE) --no-print-directory B=$(B) $$bins && \
	for t in $$bins; do $$t || exit 1; done

unit: $(UNIT_BINS)
	@sh tests/run-unit.sh $(B) $(UNIT_BINS)

proto: all
	@TERND=$(abspath $(B)/ternd) TERNCTL=$(abspath $(B)/ternctl) \
		sh tests/run-proto.sh

test:
	@sh scripts/deps.sh
	@sh tests/run-all.sh

ASAN_VARS = B=build-asan CC=clang OPT="-O1 -g -fno-omit-frame-pointer" \
	SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
asan:
	@sh scripts/deps.sh
	@$(MAKE) --no-print-directory $(ASAN_VARS) all unit proto

run: 
	@sh scripts/deps.sh
	@$(MAKE) --no-print-directory all
	$(B)/ternd --quickstart ./tern-data

FUZZ_SECONDS ?= 60
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
fuzz:
	@sh scripts/deps.sh
	@$(MAKE) --no-print-directory B=build-fuzz CC=clang OPT="-O1 -g" \
		SAN="-fsanitize=fuzzer-no-link,address,undefined" \
		$(foreach m,$(MODULES),build-fuzz/lib/libtern_$(m).a)
	@sh tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# Regenerate the key tables in docs/config.md after changing src/lib/cfg.c.
docs: all
	@sed -n '1,/^## Main keys/p' docs/config.md | sed '$$d' > docs/config.md.new
	@$(B)/ternd --config-doc >> docs/config.md.new && mv docs/config.md.new docs/config.md

bench: all
	@sh bench/run.sh

format-check:
	@sh scripts/check-banned.sh

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)
