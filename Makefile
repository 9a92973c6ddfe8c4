# banger — build, test, bench and demo entry points.
#
#   make                 build build/bangerd and build/banger
#   make test            install missing packages (as root), build, run every test
#   make SANITIZE=1 test the same with ASan + UBSan (separate build dir)
#   make bench           benchmarks with a baseline measured in the same run
#   make guest-image     build/guest/{bzImage,rootfs.ext4} from Debian packages
#   make demo            the controller on specs/examples, booting real guests
#   make install         bangerd, banger, unit, man pages, completion, schema
#                        (PREFIX=/usr/local, DESTDIR=); make uninstall
#   make install-guest-image   the test guest into /var/lib/banger/images
#
# make, make test, make demo, make bench and make install first install the
# Debian packages they need (scripts/install-deps.sh), then re-enter make:
# this file asks pkg-config for flags when it is read, which must happen after
# the -dev packages are there, or a fresh host's first build fails.

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

# The version: a release tarball's VERSION file, else git describe.
VERSION := $(shell cat VERSION 2>/dev/null || git describe --tags --always --dirty 2>/dev/null || echo unknown)
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man
# systemd reads units from /usr/local/lib/systemd/system and /lib/systemd/system.
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions
IMAGEDIR ?= /var/lib/banger/images
MAN_SRC := $(sort $(wildcard docs/man/*.scd))
MAN_OUT := $(MAN_SRC:docs/man/%.scd=$(BUILD)/man/%)
BUILD_OUT := $(BUILD)/bangerd $(BUILD)/banger $(MAN_OUT) $(BUILD)/banger.bash-completion

MAINS := controller/daemon/bangerd.c controller/cli/banger.c
# version.o changes with every commit: only the two programs link it, so a
# commit does not relink every test.
VERSION_OBJ := $(BUILD)/obj/controller/util/version.o
LIB_SRC := $(filter-out $(MAINS) controller/util/version.c,$(shell find controller -name '*.c' | sort))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
HELPER_SRC := $(sort $(wildcard tests/helpers/*.c))
HELPER_BIN := $(HELPER_SRC:tests/helpers/%.c=$(BUILD)/tests/%)
BENCH_SRC := $(sort $(wildcard bench/*.c))
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

.PHONY: all deps test unit integration bench demo guest-image clean format check-format \
	install uninstall install-guest-image dist man FORCE

DEPS_all := build
DEPS_install := build
DEPS_test := build test guest
DEPS_demo := build demo guest
DEPS_bench := build bench guest

ifndef BANGER_DEPS_READY
# First entry: packages, then the same target with the real rules below, on
# every online CPU unless make was given -j (the README's commands are plain
# `make test` and `make demo`; a serial build of the controller took a
# minute of CI's half hour).
all install test demo bench:
	@scripts/install-deps.sh $(DEPS_$@)
	@$(MAKE) --no-print-directory $(if $(filter -j%,$(MAKEFLAGS)),,-j$(shell nproc)) \
		BANGER_DEPS_READY=1 $@
else
all: $(BUILD_OUT)

# The test programs build while the guest image's kernel source downloads
# and unpacks (mostly waiting, one core); their output follows the image's.
test:
	@mkdir -p $(BUILD)
	@$(MAKE) all-tests >$(BUILD)/all-tests.log 2>&1 & pid=$$!; \
	$(MAKE) guest-image; g=$$?; \
	wait $$pid; t=$$?; cat $(BUILD)/all-tests.log; \
	[ $$g = 0 ] && [ $$t = 0 ]
	BUILD=$(BUILD) BANGER_SANITIZE=$(SANITIZE) tests/run.sh

bench:
	$(MAKE) guest-image
	$(MAKE) all $(BENCH_BIN) $(FC_DOUBLE_LITE)
	BUILD=$(BUILD) bench/run.sh

demo: all
	$(MAKE) guest-image
	scripts/demo.sh

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(SYSTEMDUNITDIR) \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(DATADIR)/banger/examples
	install -m 0755 $(BUILD)/banger $(DESTDIR)$(BINDIR)/banger
	install -m 0755 $(BUILD)/bangerd $(DESTDIR)$(SBINDIR)/bangerd
	sed 's|@SBINDIR@|$(SBINDIR)|g' packaging/bangerd.service.in \
		>$(DESTDIR)$(SYSTEMDUNITDIR)/bangerd.service
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/bangerd.service
	install -m 0644 $(BUILD)/man/banger.1 $(DESTDIR)$(MANDIR)/man1/banger.1
	install -m 0644 $(BUILD)/man/banger-spec.5 $(DESTDIR)$(MANDIR)/man5/banger-spec.5
	install -m 0644 $(BUILD)/man/bangerd.8 $(DESTDIR)$(MANDIR)/man8/bangerd.8
	install -m 0644 $(BUILD)/banger.bash-completion $(DESTDIR)$(BASHCOMPDIR)/banger
	install -m 0644 schema/vm.schema.json $(DESTDIR)$(DATADIR)/banger/vm.schema.json
	install -m 0644 specs/examples/*.yaml $(DESTDIR)$(DATADIR)/banger/examples/
endif

deps:
	@scripts/install-deps.sh build

# Exactly what install put there, then the directories it made if empty.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/banger $(DESTDIR)$(SBINDIR)/bangerd \
		$(DESTDIR)$(SYSTEMDUNITDIR)/bangerd.service \
		$(DESTDIR)$(MANDIR)/man1/banger.1 $(DESTDIR)$(MANDIR)/man5/banger-spec.5 \
		$(DESTDIR)$(MANDIR)/man8/bangerd.8 $(DESTDIR)$(BASHCOMPDIR)/banger \
		$(DESTDIR)$(DATADIR)/banger/vm.schema.json \
		$(addprefix $(DESTDIR)$(DATADIR)/banger/examples/,$(notdir $(wildcard specs/examples/*.yaml)))
	-rmdir $(DESTDIR)$(DATADIR)/banger/examples $(DESTDIR)$(DATADIR)/banger 2>/dev/null

# The test guest where the examples look (bzImage, rootfs.ext4; vmlinux for
# Firecracker). VM disks are copies, so replacing these never touches a VM.
install-guest-image: guest-image
	install -d -m 0755 $(DESTDIR)$(IMAGEDIR)
	install -m 0644 build/guest/bzImage build/guest/rootfs.ext4 $(DESTDIR)$(IMAGEDIR)/
	if [ -f build/guest/vmlinux ]; then install -m 0644 build/guest/vmlinux $(DESTDIR)$(IMAGEDIR)/; fi

# A release tarball carries a VERSION file, since it has no .git to describe.
dist:
	@mkdir -p $(BUILD)/dist
	echo '$(VERSION)' >$(BUILD)/dist/VERSION
	git archive --prefix=banger-$(VERSION)/ --add-file=$(BUILD)/dist/VERSION \
		-o $(BUILD)/banger-$(VERSION).tar.gz HEAD

# Rewritten only when the version changes, so only version.o rebuilds.
$(BUILD)/gen/build-version.h: FORCE
	@mkdir -p $(dir $@)
	@echo '#define BANGER_VERSION_STRING "$(VERSION)"' >$@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv -f $@.tmp $@; fi
$(VERSION_OBJ): $(BUILD)/gen/build-version.h
$(VERSION_OBJ): CFLAGS += -I$(BUILD)/gen

man: $(MAN_OUT)
$(BUILD)/man/%: docs/man/%.scd
	@mkdir -p $(dir $@)
	scdoc <$< >$@

$(BUILD)/banger.bash-completion: $(BUILD)/banger
	$(BUILD)/banger completion bash >$@

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libbanger.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/bangerd: $(BUILD)/obj/controller/daemon/bangerd.o $(VERSION_OBJ) $(BUILD)/libbanger.a
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/banger: $(BUILD)/obj/controller/cli/banger.o $(VERSION_OBJ) $(BUILD)/libbanger.a
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

# The light C Firecracker test double (tests/fc-double/README.md): only json-c.
FC_DOUBLE_LITE := $(BUILD)/fc-double-lite
$(FC_DOUBLE_LITE): tests/fc-double/fc-double-lite.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LDFLAGS) $$(pkg-config --libs json-c)

all-tests: $(BUILD_OUT) $(UNIT_BIN) $(HELPER_BIN) $(FC_DOUBLE_LITE)

unit: all-tests
	BUILD=$(BUILD) BANGER_SANITIZE=$(SANITIZE) tests/run.sh unit

integration: all-tests
	BUILD=$(BUILD) BANGER_SANITIZE=$(SANITIZE) tests/run.sh integration

guest-image:
	@scripts/install-deps.sh guest
	guest/build.sh build/guest

FORMAT_SRC = $$(find controller tests bench -name '*.[ch]' | sort)

# clang-format 14 (Debian 12's) is the reference: tables aligned by hand sit
# between /* clang-format off */ and /* clang-format on */.
format:
	@scripts/install-deps.sh format
	clang-format -i $(FORMAT_SRC)

# Fails, naming each file and line, when a source is not as .clang-format says.
check-format:
	@scripts/install-deps.sh format
	clang-format --dry-run --Werror $(FORMAT_SRC)

clean:
	rm -rf build

# Only our own dependency files: build/guest holds a kernel tree whose *.d
# entries (even directories) must not be read as make rules.
-include $(shell find $(BUILD)/obj $(BUILD)/tests $(BUILD)/bench -name '*.d' -type f 2>/dev/null)
