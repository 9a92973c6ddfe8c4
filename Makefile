# banger — build, test, bench and demo entry points.
#
#   make                 build build/bangerd and build/banger
#   make test            install missing packages (as root), build, run every test
#   make SANITIZE=1 test the same with ASan + UBSan (separate build dir)
#   make bench           benchmarks with a baseline measured in the same run
#   make guest-image     build/guest/{bzImage,rootfs.ext4} from Debian packages
#   make demo            the controller on specs/examples, booting real guests

CC ?= cc
PKGS := sqlite3 yaml-0.1 json-c libnl-3.0 libnl-route-3.0 devmapper libcurl libnftables

ifeq ($(SANITIZE),1)
BUILD ?= build/san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT := -O1
else
BUILD ?= build
SANFLAGS :=
OPT := -O2
endif

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
	-Wno-unused-parameter -Wno-format-nonliteral
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -linotifytools -lpthread
CFLAGS ?= $(OPT) -g
CFLAGS += -std=gnu11 $(WARN) -D_GNU_SOURCE -Icontroller $(PKG_CFLAGS) $(SANFLAGS) -MMD -MP
LDFLAGS += $(SANFLAGS)

MAINS := controller/daemon/bangerd.c controller/cli/banger.c
LIB_SRC := $(filter-out $(MAINS),$(shell find controller -name '*.c' | sort))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
HELPER_SRC := $(sort $(wildcard tests/helpers/*.c))
HELPER_BIN := $(HELPER_SRC:tests/helpers/%.c=$(BUILD)/tests/%)
BENCH_SRC := $(sort $(wildcard bench/*.c))
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

.PHONY: all deps test unit integration bench demo guest-image clean format check-format

all: $(BUILD)/bangerd $(BUILD)/banger

deps:
	@scripts/install-deps.sh build

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libbanger.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/bangerd: $(BUILD)/obj/controller/daemon/bangerd.o $(BUILD)/libbanger.a
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/banger: $(BUILD)/obj/controller/cli/banger.o $(BUILD)/libbanger.a
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/tap.h $(BUILD)/libbanger.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(BUILD)/libbanger.a $(LDFLAGS) $(PKG_LIBS)

$(BUILD)/tests/%: tests/helpers/%.c $(BUILD)/libbanger.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libbanger.a $(LDFLAGS) $(PKG_LIBS)

$(BUILD)/bench/%: bench/%.c $(BUILD)/libbanger.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libbanger.a $(LDFLAGS) $(PKG_LIBS)

test: deps
	@scripts/install-deps.sh test guest
	$(MAKE) guest-image
	$(MAKE) all-tests
	BUILD=$(BUILD) tests/run.sh

all-tests: all $(UNIT_BIN) $(HELPER_BIN)

unit: all-tests
	BUILD=$(BUILD) tests/run.sh unit

integration: all-tests
	BUILD=$(BUILD) tests/run.sh integration

bench: deps
	@scripts/install-deps.sh bench
	$(MAKE) guest-image
	$(MAKE) all $(BENCH_BIN)
	BUILD=$(BUILD) bench/run.sh

guest-image:
	@scripts/install-deps.sh guest
	guest/build.sh build/guest

demo: deps all guest-image
	@scripts/install-deps.sh demo
	scripts/demo.sh

format:
	clang-format -i $$(find controller tests bench -name '*.[ch]')

clean:
	rm -rf build

# Only our own dependency files: build/guest holds a kernel tree whose *.d
# entries (even directories) must not be read as make rules.
-include $(shell find $(BUILD)/obj $(BUILD)/tests $(BUILD)/bench -name '*.d' -type f 2>/dev/null)
