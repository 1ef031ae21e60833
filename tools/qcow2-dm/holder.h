/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The lock holder: OFD locks live as long as their open file description,
 * so attach leaves a small process (this binary, re-executed as the hidden
 * `hold` command) that keeps the image files open until detach.
 */
#ifndef QCOW2_DM_HOLDER_H
#define QCOW2_DM_HOLDER_H

#include <sys/types.h>

#include "chain.h"

/* Start the holder for device name with the chain's fds; writes the pid file. */
int holder_start(const char *name, const struct chain *c);

/* Stop the holder of name (locks dropped when it exits) and remove its pid file. */
int holder_stop(const char *name);

/* The holder's pid, 0 when there is none running. */
pid_t holder_pid(const char *name);

/* The hidden `hold NAME FD...` command: wait for SIGTERM. */
int cmd_hold(int argc, char **argv);

#endif
