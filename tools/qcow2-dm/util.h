/* SPDX-License-Identifier: GPL-2.0 */
/* Error reporting and small helpers shared by the qcow2-dm commands. */
#ifndef QCOW2_DM_UTIL_H
#define QCOW2_DM_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define PROG "qcow2-dm"

/*
 * Exit statuses, documented in qcow2-dm(8) and --help. A command returns
 * EXIT_FAILED (1) on any failure; the place that knows the cause records
 * a more specific one with fail_reason(), and main() reports that.
 */
enum {
	EXIT_FAILED = 1,	/* the operation failed */
	EXIT_USAGE = 2,		/* bad command line */
	EXIT_NOT_FOUND = 3,	/* no such device, image or backing file */
	EXIT_BUSY = 4,		/* image locked, device in use, name taken */
	EXIT_RECOVER = 5,	/* an interrupted live operation: run recover */
};

/* Record why the command is failing (the first reason recorded wins). */
void fail_reason(int status);

/* A command's return value as the exit status: 1 becomes the reason. */
int exit_status(int ret);

/* Print "qcow2-dm: <msg>" on stderr; always returns -1 for `return err(...)`. */
int err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Same, with ": strerror(errno)" appended. */
int err_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Parse a decimal unsigned number in [min, max]; -1 on junk or range. */
int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* A device-mapper name we accept: 1..127 chars of [A-Za-z0-9._+-]. */
int valid_dm_name(const char *name);

/* Directory holding NAME.pid files ($QCOW2_DM_RUNDIR or /run/qcow2-dm). */
const char *run_dir(void);

/* snprintf into buf, -1 (with a message) when it does not fit. */
int fmt_path(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Make @path durable: fsync it and the directory that holds it (qemu-img
 * writes with a volatile cache and does not always flush at exit).
 */
int sync_path(const char *path);

/*
 * The absolute path of @arg, a file that may not exist yet: its folder
 * resolved (links, "..") and its name appended.
 */
int abs_path_new(const char *arg, char *out, size_t len);

#endif
