// SPDX-License-Identifier: GPL-2.0
/*
 * Device-mapper access through libdevmapper, the library dmsetup(8) and
 * LVM use: the only file of qcow2-dm that knows it.
 */
#include <errno.h>
#include <inttypes.h>
#include <libdevmapper.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "dm.h"
#include "util.h"

/* a device's table, for the callers that do not give a buffer */
#define DM_TABLE_BUF	(1 << 18)

static bool dm_quiet;		/* the library's errors are not printed */
static char dm_last[512];	/* the last one printed during this task */
static int dm_udev = -1;	/* 1: udev makes the nodes; -1: not set up */

/*
 * The library's errors and warnings, as dmsetup would print them, with
 * our prefix; its levels are syslog's in the low bits (the high ones are
 * flags), and verbose and debug lines are not ours to show. It logs a
 * busy remove again at each of its retries: once a task is enough.
 */
__attribute__((format(printf, 5, 6)))
static void dm_log(int level, const char *file, int line, int dm_errno,
		   const char *f, ...)
{
	char msg[sizeof(dm_last)];
	va_list ap;

	(void)file;
	(void)line;
	(void)dm_errno;
	if (dm_quiet || (level & 7) > LOG_WARNING)
		return;
	va_start(ap, f);
	vsnprintf(msg, sizeof(msg), f, ap);
	va_end(ap);
	if (!strcmp(msg, dm_last))
		return;
	strcpy(dm_last, msg);
	fprintf(stderr, PROG ": %s\n", msg);
}

/* device-mapper's rules, which complete a udev cookie, are installed */
static bool dm_notify_rule(void)
{
	static const char *const dirs[] = {
		"/etc/udev/rules.d", "/lib/udev/rules.d", "/usr/lib/udev/rules.d",
	};
	char path[128];
	size_t i;

	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/95-dm-notify.rules", dirs[i]);
		if (!access(path, F_OK))
			return true;
	}
	return false;
}

/*
 * Once per process. With udev running, its rules make /dev/mapper/NAME
 * (and the by-id links that carry the QCOW2- UUID) and we wait on a
 * cookie for them, as dmsetup does. Without it (an initramfs, the test
 * VM, a udev without the dm rules) nobody else would make the nodes: the
 * library makes them itself, and the udev rules are told to keep off
 * should a udev start meanwhile.
 */
static void dm_setup(void)
{
	if (dm_udev >= 0)
		return;
	dm_log_with_errno_init(dm_log);
	/*
	 * A udev without device-mapper's rules (they come with dmsetup)
	 * would never complete our cookie: the wait would last forever.
	 */
	dm_udev = !access("/run/udev/control", F_OK) && dm_notify_rule() &&
		  dm_udev_get_sync_support();
	if (!dm_udev)
		dm_udev_set_sync_support(0);
}

static struct dm_task *task(int type, const char *name)
{
	struct dm_task *dmt;

	dm_setup();
	dmt = dm_task_create(type);
	if (!dmt) {
		err("device-mapper: cannot make a task (out of memory?)");
		return NULL;
	}
	if (name && !dm_task_set_name(dmt, name)) {
		dm_task_destroy(dmt);
		return NULL;
	}
	return dmt;
}

/*
 * Closing /dev/mapper/control after each task: the lock holders and the
 * qemu-img runs we start must not inherit it.
 */
static void done(struct dm_task *dmt)
{
	dm_task_destroy(dmt);
	dm_lib_release();
}

static int run(struct dm_task *dmt, bool quiet)
{
	int ok;

	dm_quiet = quiet;
	dm_last[0] = '\0';
	ok = dm_task_run(dmt);
	dm_quiet = false;
	return ok ? 0 : -1;
}

/* A task that adds or removes a node: create, resume, remove. */
static int run_nodes(struct dm_task *dmt, bool quiet)
{
	uint16_t flags = 0;
	uint32_t cookie = 0;
	int r;

	if (!dm_udev)
		flags = DM_UDEV_DISABLE_DM_RULES_FLAG |
			DM_UDEV_DISABLE_SUBSYSTEM_RULES_FLAG;
	if (!dm_task_set_cookie(dmt, &cookie, flags))
		return -1;
	r = run(dmt, quiet);
	/*
	 * Also after a failure, which released the cookie. Without udev the
	 * cookie is 0 and this is where the library makes or drops the node.
	 */
	dm_udev_wait(cookie);
	return r;
}

/* "START LEN TARGET PARAMS" lines, the form dmsetup --table takes. */
static int add_targets(struct dm_task *dmt, const char *name,
		       const char *table)
{
	char *copy = strdup(table), *line, *save = NULL;
	unsigned long long start, len;
	char type[64];
	int r = 0, n;

	if (!copy)
		return err_errno("%s: table", name);
	for (line = strtok_r(copy, "\n", &save); line && !r;
	     line = strtok_r(NULL, "\n", &save)) {
		n = 0;
		if (sscanf(line, "%llu %llu %63s %n", &start, &len, type,
			   &n) != 3 || !n)
			r = err("%s: malformed table line '%s'", name, line);
		else if (!dm_task_add_target(dmt, start, len, type, line + n))
			r = -1;
	}
	free(copy);
	return r;
}

int dm_create(const char *name, const char *uuid, const char *table,
	      bool ro)
{
	struct dm_task *dmt = task(DM_DEVICE_CREATE, name);
	int r = -1;

	if (!dmt)
		return -1;
	/* the library creates, loads and resumes; a refused table: removed */
	if (dm_task_set_uuid(dmt, uuid) && (!ro || dm_task_set_ro(dmt)) &&
	    !add_targets(dmt, name, table))
		r = run_nodes(dmt, false);
	done(dmt);
	return r;
}

int dm_reload(const char *name, const char *table)
{
	struct dm_task *dmt = task(DM_DEVICE_RELOAD, name);
	int r = -1;

	if (!dmt)
		return -1;
	if (!add_targets(dmt, name, table))
		r = run(dmt, false);
	done(dmt);
	return r;
}

/* A task of NAME alone. */
static int simple(int type, const char *name, bool quiet)
{
	struct dm_task *dmt = task(type, name);
	int r;

	if (!dmt)
		return -1;
	r = type == DM_DEVICE_RESUME ? run_nodes(dmt, quiet) :
				       run(dmt, quiet);
	done(dmt);
	return r;
}

int dm_clear(const char *name)
{
	return simple(DM_DEVICE_CLEAR, name, false);
}

int dm_suspend(const char *name)
{
	return simple(DM_DEVICE_SUSPEND, name, false);
}

int dm_resume(const char *name)
{
	return simple(DM_DEVICE_RESUME, name, false);
}

/* Each target line "START LEN TARGET PARAMS\n" of a table or status. */
static int lines(int type, const char *name, char *out, size_t len,
		 bool quiet)
{
	struct dm_task *dmt = task(type, name);
	uint64_t start, length;
	char *ttype, *params;
	void *next = NULL;
	struct dm_info info;
	size_t used = 0;
	int r = -1, n;

	if (!dmt)
		return -1;
	out[0] = '\0';
	if (run(dmt, quiet) || !dm_task_get_info(dmt, &info))
		goto out;
	/* a status of no device succeeds, with exists 0 */
	if (!info.exists) {
		if (!quiet)
			err("%s: no such device-mapper device", name);
		goto out;
	}
	do {
		next = dm_get_next_target(dmt, next, &start, &length, &ttype,
					  &params);
		if (!ttype)
			break;
		n = snprintf(out + used, len - used, "%" PRIu64 " %" PRIu64
			     " %s %s\n", start, length, ttype,
			     params ? params : "");
		used += n < 0 ? 0 : (size_t)n;
		if (used >= len) {
			used = len - 1;
			break;
		}
	} while (next);
	r = 0;
out:
	done(dmt);
	return r;
}

int dm_table(const char *name, char *out, size_t len, bool quiet)
{
	return lines(DM_DEVICE_TABLE, name, out, len, quiet);
}

int dm_status(const char *name, char *out, size_t len, bool quiet)
{
	return lines(DM_DEVICE_STATUS, name, out, len, quiet);
}

/* The length of NAME's table, for the error table that replaces it. */
static int sectors(const char *name, uint64_t *len)
{
	unsigned long long start, l;
	char *buf = malloc(DM_TABLE_BUF), *line, *save = NULL;
	int r = -1;

	if (!buf)
		return err_errno("%s: table", name);
	*len = 0;
	if (!dm_table(name, buf, DM_TABLE_BUF, false)) {
		for (line = strtok_r(buf, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save))
			if (sscanf(line, "%llu %llu", &start, &l) == 2 &&
			    start + l > *len)
				*len = start + l;
		r = *len ? 0 : err("%s: has no table", name);
	}
	free(buf);
	return r;
}

/*
 * What dmsetup remove --force does first: an "error" table in place of
 * the live one fails whatever is still queued or comes in, so that the
 * device can go even with an opener left.
 */
static void error_device(const char *name)
{
	char table[64];
	uint64_t len;

	if (sectors(name, &len))
		return;
	snprintf(table, sizeof(table), "0 %" PRIu64 " error", len);
	if (dm_reload(name, table))
		return;
	if (dm_resume(name))
		dm_clear(name);
}

int dm_remove(const char *name, bool force)
{
	struct dm_task *dmt;
	int r;

	if (force)
		error_device(name);
	dmt = task(DM_DEVICE_REMOVE, name);
	if (!dmt)
		return -1;
	/* the library retries while busy: 25 times, 200 ms apart */
	dm_task_retry_remove(dmt);
	r = run_nodes(dmt, false);
	done(dmt);
	return r;
}

int dm_message(const char *name, const char *msg, char *out, size_t len,
	       bool quiet)
{
	struct dm_task *dmt = task(DM_DEVICE_TARGET_MSG, name);
	const char *resp;
	int r = -1;

	if (!dmt)
		return -1;
	if (out && len)
		out[0] = '\0';
	if (!dm_task_set_sector(dmt, 0) || !dm_task_set_message(dmt, msg) ||
	    run(dmt, quiet))
		goto out;
	resp = dm_task_get_message_response(dmt);
	/* as dmsetup prints it: a line that ends in a newline */
	if (out && len && resp && *resp)
		snprintf(out, len, "%s%s", resp,
			 resp[strlen(resp) - 1] == '\n' ? "" : "\n");
	r = 0;
out:
	done(dmt);
	return r;
}

/* NAME's info; -1 when the task failed, else info->exists tells. */
static int info(const char *name, struct dm_info *info, bool quiet)
{
	struct dm_task *dmt = task(DM_DEVICE_INFO, name);
	int r = -1;

	if (!dmt)
		return -1;
	if (!run(dmt, quiet) && dm_task_get_info(dmt, info))
		r = 0;
	done(dmt);
	return r;
}

int dm_exists(const char *name)
{
	struct dm_info i;

	if (info(name, &i, true))
		return -1;
	return i.exists ? 1 : 0;
}

int dm_suspended(const char *name)
{
	struct dm_info i;

	if (info(name, &i, false))
		return err("%s: cannot read its device-mapper state", name);
	if (!i.exists)
		return err("%s: no such device-mapper device", name);
	return i.suspended ? 1 : 0;
}

/* Call @fn for each "START LEN qcow2 PARAMS" line of @name's table. */
static void qcow2_lines(const char *name, char *buf,
			void (*fn)(const char *, char *, void *), void *arg)
{
	char *line, *save = NULL;
	unsigned long long start, len;
	char type[16];

	/* quiet: a device may go between the list and its table */
	if (dm_table(name, buf, DM_TABLE_BUF, true))
		return;
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		if (sscanf(line, "%llu %llu %15s", &start, &len, type) == 3 &&
		    !strcmp(type, "qcow2"))
			fn(name, line, arg);
}

int dm_list_qcow2(void (*fn)(const char *name, char *line, void *arg),
		  void *arg)
{
	struct dm_task *dmt = task(DM_DEVICE_LIST, NULL);
	struct dm_names *names;
	unsigned int next = 0;
	char *buf = NULL;
	int r = -1;

	if (!dmt)
		return -1;
	if (run(dmt, false))
		goto out;
	names = dm_task_get_names(dmt);
	if (!names)
		goto out;
	buf = malloc(DM_TABLE_BUF);
	if (!buf) {
		err_errno("list");
		goto out;
	}
	/* an empty list is one entry with dev 0 */
	if (names->dev) {
		do {
			names = (struct dm_names *)((char *)names + next);
			qcow2_lines(names->name, buf, fn, arg);
			next = names->next;
		} while (next);
	}
	r = 0;
out:
	free(buf);
	done(dmt);
	return r;
}

int dm_bitmap_list(const char *name, char *out, size_t len, int quiet)
{
	return dm_message(name, "bitmap list", out, len, quiet);
}

int dm_qcow2_table(const char *name, char *buf, size_t len)
{
	unsigned long long start, len_s;
	char target[32], *nl;

	if (dm_table(name, buf, len, true)) {
		fail_reason(EXIT_NOT_FOUND);
		return err("%s: no such device-mapper device", name);
	}
	nl = strchr(buf, '\n');
	if (nl && nl[1]) {
		fail_reason(EXIT_NOT_FOUND);
		return err("%s: has more than one target: not a qcow2-dm device",
			   name);
	}
	if (nl)
		*nl = '\0';
	if (sscanf(buf, "%llu %llu %31s", &start, &len_s, target) != 3 ||
	    strcmp(target, "qcow2")) {
		fail_reason(EXIT_NOT_FOUND);
		return err("%s: not a qcow2 device (table: %s)", name, buf);
	}
	return 0;
}
