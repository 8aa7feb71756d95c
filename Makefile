# vserver: non-recursive GNU make.  `make`, `make check`, `make demo`,
# `make bench`, `make install`, `make lint`; SAN=1 builds with ASan+UBSan.
VERSION := 0.1.0
PREFIX ?= /usr/local
DESTDIR ?=
CC ?= gcc
PYTHON ?= /usr/bin/python3

SAN ?= 0
FUZZ ?= 0
ifeq ($(FUZZ),1)
# libFuzzer targets (tests/fuzz/): everything built by clang with the fuzzer's
# coverage, ASan and UBSan
B ?= build-fuzz
CC := clang
OPT := -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined
SANLD := -fsanitize=address,undefined
else ifeq ($(SAN),1)
B ?= build-san
OPT := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
SANLD := -fsanitize=address,undefined
else
B ?= build
OPT := -O2 -g
SANLD :=
endif

PKGS := libseccomp libmnl inih json-c libarchive libbpf libxxhash fuse3
WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wformat-security -Wstrict-prototypes \
	-Wmissing-prototypes -Wpointer-arith -Wundef -Wvla -Wwrite-strings -Wcast-qual \
	-Werror=implicit-function-declaration -Werror=return-type -Werror=incompatible-pointer-types \
	-Werror=int-conversion -Werror=missing-include-dirs -Wno-missing-field-initializers
# gcc only (clang has no such warning, and -Werror refuses unknown ones)
WARN += $(shell $(CC) -Werror -Wno-format-truncation -E -x c /dev/null >/dev/null 2>&1 && \
	echo -Wno-format-truncation)
HARDEN := -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fstack-clash-protection -fPIE \
	-fno-strict-aliasing -fno-common
CFLAGS_ALL := -std=gnu17 -D_GNU_SOURCE -DVS_VERSION='"$(VERSION)"' $(OPT) $(WARN) $(HARDEN) \
	$(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(CFLAGS)
LDFLAGS_ALL := -pie -Wl,-z,relro,-z,now $(SANLD) $(LDFLAGS)
# libarchive: headers only; tree.c dlopens it for tarballs (linked, it brings
# libxml2, ICU and libstdc++ into every exec: milliseconds per start).
# libnftables (libnftables-dev): headers only as well; nat.c dlopens it for
# guests with nat = yes.
LIBS := $(shell pkg-config --libs $(filter-out libarchive,$(PKGS)) 2>/dev/null)
# The vserver binary itself carries these libraries (where the static archive
# is installed, as the -dev packages do): start, run and exec each exec it
# twice (the sealed re-exec), and loading ten shared libraries took about
# 0.6 ms a time (bench/WHERE.md).  libc and libmnl (no archive in Debian) stay
# shared.  DYNAMIC=1 links every library shared (a distribution that rebuilds
# dependents on a library's security update may prefer either; with the
# archives, rebuild vserver after such an update).
DYNAMIC ?= 0
STATIC_WANT := bpf elf z fuse3 seccomp json-c inih xxhash
ifeq ($(DYNAMIC)$(SAN)$(FUZZ),000)
STATIC_HAVE := $(foreach l,$(STATIC_WANT),$(if $(filter /%,$(shell $(CC) -print-file-name=lib$(l).a)),$(l)))
VS_LIBS := -Wl,-Bstatic $(addprefix -l,$(STATIC_HAVE)) -Wl,-Bdynamic \
	$(filter-out $(addprefix -l,$(STATIC_HAVE)),$(shell pkg-config --libs --static \
	$(filter-out libarchive,$(PKGS)) 2>/dev/null))
else
VS_LIBS := $(LIBS)
endif

LIB_SRC := $(wildcard src/lib/*.c)
CLI_SRC := $(wildcard src/cli/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(B)/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(B)/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(B)/fuzz/%)

.PHONY: all deps check check-vm unit unit-bins fuzz fuzz-bins demo bench install lint clean
all: $(B)/vserver $(B)/vserver-runc $(B)/vserver.8

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

# BPF programs (src/bpf/*.bpf.c): clang against the running kernel's BTF,
# embedded through bpftool's generated skeletons.
BPF_CLANG ?= clang
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux
$(B)/bpf/vmlinux.h:
	@mkdir -p $(dir $@)
	@test -r $(VMLINUX_BTF) || { echo "$(VMLINUX_BTF) missing: the kernel needs CONFIG_DEBUG_INFO_BTF" >&2; exit 1; }
	bpftool btf dump file $(VMLINUX_BTF) format c > $@.tmp && mv $@.tmp $@

$(B)/bpf/%.bpf.o: src/bpf/%.bpf.c src/bpf/isolate.h src/bpf/shared.bpf.h $(B)/bpf/vmlinux.h
	$(BPF_CLANG) -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_x86 -I$(B)/bpf -Isrc/bpf -c $< -o $@

$(B)/bpf/%.skel.h: $(B)/bpf/%.bpf.o
	bpftool gen skeleton $< name vs_$* > $@.tmp && mv $@.tmp $@

$(B)/src/lib/net_bpf.o: $(B)/bpf/isolate.skel.h $(B)/bpf/shared.skel.h
$(B)/src/lib/net_bpf.o: CFLAGS_ALL += -I$(B)/bpf

$(B)/libvserver.a: $(LIB_OBJ)
	ar rcs $@ $^

# The default seccomp filters, compiled once at build time (see src/lib/seccomp.c).
$(B)/gen-seccomp: tools/gen-seccomp.c $(B)/libvserver.a
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< $(B)/libvserver.a $(LIBS)

$(B)/seccomp-prebuilt.c: $(B)/gen-seccomp
	$< > $@.tmp && mv $@.tmp $@

$(B)/seccomp-prebuilt.o: $(B)/seccomp-prebuilt.c
	$(CC) $(CFLAGS_ALL) -Wno-missing-variable-declarations -c $< -o $@

# Debug info goes beside the binary (vserver.debug, found by gdb through the
# debuglink): every start copies the binary into a sealed memfd, and 1.7 MB
# of DWARF less to copy is about 1 ms less a start or exec.
$(B)/vserver: $(CLI_OBJ) $(B)/seccomp-prebuilt.o $(B)/libvserver.a
	$(CC) $(LDFLAGS_ALL) -o $@.tmp $(CLI_OBJ) $(B)/seccomp-prebuilt.o $(B)/libvserver.a $(VS_LIBS)
	objcopy --only-keep-debug $@.tmp $@.debug
	objcopy --strip-debug --add-gnu-debuglink=$@.debug $@.tmp
	mv $@.tmp $@

# the OCI runtime: the same binary, picked by its name
$(B)/vserver-runc: $(B)/vserver
	ln -sf vserver $@

$(B)/vserver.8: docs/man/vserver.8.scd
	@mkdir -p $(B)
	@if command -v scdoc >/dev/null; then scdoc < $< > $@; else echo "scdoc missing (make deps)"; exit 1; fi

$(B)/tests/%: tests/unit/%.c $(B)/libvserver.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< $(B)/libvserver.a $(LIBS) -lcmocka

unit-bins: $(UNIT_BIN)

$(B)/fuzz/%: tests/fuzz/%.c tests/fuzz/memfile.c tests/fuzz/fuzz.h $(B)/libvserver.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -fsanitize=fuzzer -o $@ $< tests/fuzz/memfile.c \
		$(B)/libvserver.a $(LIBS)

fuzz-bins: $(FUZZ_BIN)

# Every libFuzzer target for FUZZ_S seconds (default 60) on its corpus
# (tests/fuzz/corpus/TARGET), new finds merged in; FUZZ_S=0: the corpus once.
fuzz: deps
	@$(MAKE) --no-print-directory FUZZ=1 fuzz-bins
	@tools/fuzz.sh

unit: $(UNIT_BIN)
	@for t in $(UNIT_BIN); do $$t || exit 1; done

deps:
	@tools/deps.sh

# Unit tests plain and under ASan/UBSan, then the integration suite as root.
check: deps
	@tools/check.sh

# Disk limits by project quota on Debian's own kernel, booted under qemu
# (this machine's kernel has no quota formats): tools/check-vm.sh.
check-vm: deps
	@$(MAKE) --no-print-directory all
	@tools/check-vm.sh

# The flags and libraries come from pkg-config when make reads this file: on
# a fresh machine that is before deps installed them, so build in a make of
# its own that starts after deps.
demo: deps
	@$(MAKE) --no-print-directory all
	@tools/demo.sh

bench: deps
	@$(MAKE) --no-print-directory all
	@$(if $(PARTS),PARTS="$(PARTS)") bench/run.sh $(if $(QUICK),--quick)

install: all
	install -D -m 0755 $(B)/vserver $(DESTDIR)$(PREFIX)/sbin/vserver
	ln -sf vserver $(DESTDIR)$(PREFIX)/sbin/vserver-runc
	install -D -m 0644 $(B)/vserver.8 $(DESTDIR)$(PREFIX)/share/man/man8/vserver.8
	install -d $(DESTDIR)/etc/systemd/system
	sed 's|@SBINDIR@|$(PREFIX)/sbin|g' dist/vserver.service > $(DESTDIR)/etc/systemd/system/vserver.service
	chmod 0644 $(DESTDIR)/etc/systemd/system/vserver.service

lint:
	@tools/lint.sh

clean:
	rm -rf build build-san build-fuzz

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)
