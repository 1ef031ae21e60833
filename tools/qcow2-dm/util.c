// SPDX-License-Identifier: GPL-2.0
/* Error reporting and small helpers shared by the qcow2-dm commands. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

static void vreport(const char *fmt, va_list ap, int errnum)
{
	fprintf(stderr, PROG ": ");
	vfprintf(stderr, fmt, ap);
	if (errnum)
		fprintf(stderr, ": %s", strerror(errnum));
	fputc('\n', stderr);
}

static int reason;

void fail_reason(int status)
{
	if (!reason)
		reason = status;
}

int exit_status(int ret)
{
	return ret == EXIT_FAILED && reason ? reason : ret;
}

int err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(fmt, ap, 0);
	va_end(ap);
	return -1;
}

int err_errno(const char *fmt, ...)
{
	int errnum = errno;
	va_list ap;

	va_start(ap, fmt);
	vreport(fmt, ap, errnum);
	va_end(ap);
	return -1;
}

int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int valid_dm_name(const char *name)
{
	size_t i, n = strlen(name);

	if (n == 0 || n > 127 || !strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	for (i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-' || c == '+'))
			return 0;
	}
	return 1;
}

const char *run_dir(void)
{
	const char *d = getenv("QCOW2_DM_RUNDIR");

	return d && *d ? d : "/run/qcow2-dm";
}

int fmt_path(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len)
		return err("path too long");
	return 0;
}

static int fsync_open(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC), r;

	if (fd < 0)
		return err_errno("%s", path);
	r = fsync(fd);
	if (r)
		err_errno("fsync %s", path);
	close(fd);
	return r ? -1 : 0;
}

int sync_path(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');

	if (fsync_open(path, O_RDONLY))
		return -1;
	if (!slash)
		return fsync_open(".", O_RDONLY | O_DIRECTORY);
	if (fmt_path(dir, sizeof(dir), "%.*s", (int)(slash - path), path))
		return -1;
	return fsync_open(slash == path ? "/" : dir, O_RDONLY | O_DIRECTORY);
}

int abs_path_new(const char *arg, char *out, size_t len)
{
	char dir[PATH_MAX], real[PATH_MAX];
	const char *slash = strrchr(arg, '/'), *base = slash ? slash + 1 : arg;

	if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
		return err("%s: not a file name", arg);
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (fmt_path(dir, sizeof(dir), "%.*s",
			  slash == arg ? 1 : (int)(slash - arg), arg))
		return -1;
	if (!realpath(dir, real))
		return err_errno("%s", dir);
	return fmt_path(out, len, "%s/%s", strcmp(real, "/") ? real : "",
			base);
}
