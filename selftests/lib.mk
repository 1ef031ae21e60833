# SPDX-License-Identifier: GPL-2.0
# Shared rules for the suites, in the spirit of tools/testing/selftests/lib.mk:
# a suite Makefile sets TEST_PROGS (scripts) and TEST_GEN_PROGS (C programs
# built from <name>.c) and includes this file.
CFLAGS ?= -O2 -g
CFLAGS += -Wall -Wextra -Werror -D_GNU_SOURCE
SUITE_DIR := $(dir $(firstword $(MAKEFILE_LIST)))

.PHONY: all clean emit_tests
all: $(TEST_GEN_PROGS)

$(TEST_GEN_PROGS): %: %.c $(TEST_GEN_DEPS)
	$(CC) $(CFLAGS) -o $@ $< $(TEST_GEN_LDFLAGS) $(LDLIBS)

# One test program per line, in the order they run.
emit_tests:
	@for t in $(TEST_PROGS) $(TEST_GEN_PROGS); do echo $$t; done

clean:
	rm -f $(TEST_GEN_PROGS)
