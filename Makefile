# SPDX-License-Identifier: GPL-2.0
#
# Top-level build: kernel modules (out of tree, against Debian's packaged
# headers), userspace tools, the test VM and the selftests.
#
#   make [KVER=6.1|6.12] [KDIR=...]   modules and tools
#   make deps                        install every needed Debian package
#   make check [KVER=..] [SUITES=..] [TESTS=..]   selftests, one VM a suite
#   make check KERNEL=debug          the same on a KASAN/lockdep/kmemleak kernel
#   make check-e2e                   a real guest on vhost-blk-pci (patched QEMU)
#   make demo                        the whole stack, step by step
#   make install [DESTDIR=..] [KREL=..]  on a host: modules for the running
#                                    kernel, qcow2-dm, udev/systemd files,
#                                    dkms source; nothing from apt
#   make deb                         the .deb packages (build/deb/)
#   make check-host                  the packages on a Debian root booted with
#                                    systemd (manual, 40+ min under TCG)
#   make checkpatch                  kernel style check of module sources
#   make bench                       benchmarks in the test VM (bench/)
#   make stress [STRESS_SECONDS=N]   bounded mixed load on the whole stack
#   make blktests BLKTESTS=DIR       blktests' device tests on dm-qcow2 (a
#                                    blktests checkout of yours; manual)
#   make crash-long [CRASH_LONG_POINTS=N]  power cuts by the ten thousand
#                                    (manual, hours under TCG)
#   make fuzz-long [FUZZ_IMAGES=N] [FUZZ_REQUESTS=N] [FUZZ_VU_SESSIONS=N] [FUZZ_SECONDS=S]
#                                    long fuzz run, corpus replayed first
#
# See README.md.

KVER ?= 6.1
KDIR ?=
SUITES ?=
KERNEL ?=
TESTS ?=
PREFIX ?= /usr/local
DESTDIR ?=

TOP := $(CURDIR)
export KVER

.PHONY: all deps deps-quiet modules tools check demo install clean clean-modules \
	checkpatch dkms-check help bench check-e2e stress deb check-host \
	blktests crash-long fuzz-long

all: modules tools

help:
	@sed -n '3,23p' Makefile | sed 's/^# \{0,1\}//'

# Explicit `make deps` installs both kernel lines; the other targets only
# make sure the line they need is there, silently when it is.
deps:
	@scripts/deps

deps-quiet:
	@scripts/deps $(KVER)

modules: deps-quiet
	@scripts/build-modules $(KVER) $(KDIR)

tools: deps-quiet
	@$(MAKE) -s -C tools

ifeq ($(KERNEL),debug)
# The debug kernel (KASAN, lockdep, kmemleak, fault injection), built once
# per machine and cached outside the repo; the modules are built against it.
check: tools
	@scripts/debug-kernel build $(KVER)
	@scripts/build-modules $(KVER) $$(scripts/debug-kernel env $(KVER) | cut -d' ' -f2)
	@tools/vm/check --kver $(KVER) --debug $(if $(SUITES),--suites "$(SUITES)") \
		$(if $(TESTS),--tests "$(TESTS)")
else
check: modules tools
	@tools/vm/check --kver $(KVER) $(if $(SUITES),--suites "$(SUITES)") \
		$(if $(TESTS),--tests "$(TESTS)")
endif

demo: modules tools
	@tools/demo --kver $(KVER)

# A nested guest whose disk is vhost-blk-pci on a dm-qcow2 device; builds
# the patched QEMU first (cached outside the repo). Too slow for `make check`
# under TCG (15 to 20 minutes), hence its own target.
check-e2e: modules tools
	@tools/qemu/build
	@tools/vm/check --kver $(KVER) --suites qemu_e2e

# Not part of make check: blktests (not packaged, never vendored) from a
# checkout the user names, against a dm-qcow2 device (selftests/blktests).
blktests: modules tools
	@[ -n "$(BLKTESTS)" ] && [ -x "$(BLKTESTS)/check" ] || \
		{ echo "make blktests: BLKTESTS=DIR must name a blktests checkout" >&2; exit 2; }
	@BLKTESTS=$(abspath $(BLKTESTS)) tools/vm/check --kver $(KVER) --suites blktests

# Not part of make check: a bounded mixed run (selftests/stress), a summary
# at the end. STRESS_SECONDS, STRESS_SEED, STRESS_BACKUPS pass through.
STRESS_SECONDS ?= 150
STRESS_SEED ?= 1
STRESS_BACKUPS ?= 2
stress: modules tools
	@$(MAKE) -s -C selftests stress
	@tools/vm/run --kver $(KVER) --mem 2048 --cpus 2 \
		--timeout $$(($(STRESS_SECONDS) + 900)) -- \
		env STRESS_SECONDS=$(STRESS_SECONDS) STRESS_SEED=$(STRESS_SEED) \
		STRESS_BACKUPS=$(STRESS_BACKUPS) selftests/run_suite stress

# Power cuts by the ten thousand: selftests/crash_long, round after round
# of recordings replayed to every flush/FUA point. CRASH_* (seed, threads,
# jobs, geometries, CRASH_LONG_SECONDS) pass into the VM.
CRASH_LONG_POINTS ?= 10000
crash-long: modules tools
	@CRASH_LONG_POINTS=$(CRASH_LONG_POINTS) tools/vm/check --kver $(KVER) --suites crash_long

# Not part of make check: the long fuzz run (selftests/fuzz/fuzz_long.sh),
# until both counts are reached or FUZZ_SECONDS (0: no limit) have passed;
# FUZZ_FIRST and FUZZ_SEED pass through. Documentation/reliability.md.
FUZZ_IMAGES ?= 100000
FUZZ_REQUESTS ?= 1000000
FUZZ_VU_SESSIONS ?= 20000
FUZZ_SECONDS ?= 0
fuzz-long: modules tools
	@$(MAKE) -s -C selftests
	@tools/vm/run --kver $(KVER) --mem 2048 --cpus 2 \
		--timeout $$(if [ $(FUZZ_SECONDS) = 0 ]; then echo 2592000; else echo $$(($(FUZZ_SECONDS) + 1800)); fi) -- \
		env FUZZ_IMAGES=$(FUZZ_IMAGES) FUZZ_REQUESTS=$(FUZZ_REQUESTS) \
		FUZZ_VU_SESSIONS=$(FUZZ_VU_SESSIONS) FUZZ_SECONDS=$(FUZZ_SECONDS) \
		selftests/fuzz/fuzz_long.sh

bench: modules tools
	@bench/run --kver $(KVER) $(BENCH_ARGS)

checkpatch: modules
	@scripts/checkpatch-all $(KVER)

dkms-check: deps-quiet
	@scripts/dkms-check $(KVER)

# A host install: no `make deps` (no apt), the running kernel unless KREL
# (or KVER on the command line) names another; see Documentation/install.rst.
KREL ?=
install:
	@scripts/install "$(DESTDIR)" "$(PREFIX)" "$(KREL)" \
		"$(if $(filter command line environment,$(origin KVER)),$(KVER))"

clean: clean-modules
	@$(MAKE) -s -C tools clean
	@$(MAKE) -s -C selftests clean
	@rm -rf build

clean-modules:
	@for m in dm_qcow2 vhost_blk; do \
		rm -f $$m/*.o $$m/*.ko $$m/*.mod $$m/*.mod.c $$m/.*.cmd \
		      $$m/modules.order $$m/Module.symvers; \
	done

# qcow2-vhost-dkms and qcow2-vhost-utils .debs in build/deb (debian/).
deb:
	@scripts/deb

# Not part of make check: the two packages installed with apt on a Debian
# root (debootstrap, cached) booted with systemd, a reboot with the tab
# attached, a kernel upgrade through DKMS (tools/vm/host-systemd).
check-host: deb
	@tools/vm/host-systemd
