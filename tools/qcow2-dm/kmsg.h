/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The target's refusal reason (ti->error) only reaches the kernel log:
 * read the new records after a failed create and show the relevant ones.
 */
#ifndef QCOW2_DM_KMSG_H
#define QCOW2_DM_KMSG_H

/* Open /dev/kmsg positioned at its end; -1 when unavailable (not fatal). */
int kmsg_open(void);

/*
 * Print (to stderr) new kernel log lines mentioning name or "qcow2"; closes
 * fd. Returns how many lines were printed.
 */
int kmsg_report(int fd, const char *name);

#endif
