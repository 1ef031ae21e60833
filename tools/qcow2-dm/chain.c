// SPDX-License-Identifier: GPL-2.0
/* Backing chain resolution for attach. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chain.h"
#include "lock.h"
#include "util.h"

/* The kernel table splits on white space: refuse paths it cannot carry. */
static int table_safe(const char *path)
{
	const unsigned char *p;

	for (p = (const unsigned char *)path; *p; p++)
		if (*p <= ' ' || *p == '\\' || *p == 0x7f)
			return err("%s: path contains white space, a control "
				   "character or a backslash, which a device-mapper "
				   "table cannot carry", path);
	return 0;
}

/* Resolve a backing name relative to the folder of the naming image. */
static int backing_path(const char *parent, const char *name, char *out)
{
	char dir[PATH_MAX], joined[PATH_MAX];

	if (strchr(name, ':') && (!strncmp(name, "json:", 5) ||
				  strstr(name, "://") || !strncmp(name, "nbd:", 4)))
		return err("%s: backing file '%s' is not a local file; "
			   "only local files are supported", parent, name);
	if (name[0] == '/') {
		if (fmt_path(joined, sizeof(joined), "%s", name))
			return -1;
	} else {
		if (fmt_path(dir, sizeof(dir), "%s", parent))
			return -1;
		if (fmt_path(joined, sizeof(joined), "%s/%s", dirname(dir), name))
			return -1;
	}
	if (!realpath(joined, out))
		return err_errno("%s: backing file '%s' (%s)", parent, name, joined);
	return 0;
}

static int open_file(struct chain *c, const char *path, bool rw)
{
	struct chain_file *f = &c->files[c->n];
	struct stat st, other;
	int i;

	if (!realpath(path, f->path))
		return err_errno("%s", path);
	if (table_safe(f->path))
		return -1;
	f->fd = open(f->path, (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (f->fd < 0)
		return err_errno("%s: open", f->path);
	c->n++;
	if (fstat(f->fd, &st))
		return err_errno("%s: stat", f->path);
	if (!S_ISREG(st.st_mode))
		return err("%s: not a regular file", f->path);
	for (i = 0; i < c->n - 1; i++) {
		if (fstat(c->files[i].fd, &other))
			return err_errno("%s: stat", c->files[i].path);
		if (other.st_dev == st.st_dev && other.st_ino == st.st_ino)
			return err("%s: backing chain loops back to %s",
				   c->files[0].path, f->path);
	}
	return image_lock(f->fd, f->path, rw ? LOCK_WRITER : LOCK_READER);
}

/* Format of a backing file: the parent's extension wins, else probe. */
static int backing_format(struct chain_file *f, const char *fmt,
			  const char *parent)
{
	int r;

	if (!strcmp(fmt, "qcow2")) {
		f->qcow2 = true;
		return 0;
	}
	if (!strcmp(fmt, "raw")) {
		f->qcow2 = false;
		return 0;
	}
	if (*fmt)
		return err("%s: backing format '%s' is not supported (qcow2 or raw)",
			   parent, fmt);
	r = qcow2_probe(f->fd);
	if (r < 0)
		return err_errno("%s: reading", f->path);
	f->qcow2 = r;
	return 0;
}

static int follow_backing(struct chain *c, const struct qcow2_info *parent)
{
	struct qcow2_info info;
	const struct qcow2_info *cur = parent;
	char path[PATH_MAX];

	while (cur->backing[0]) {
		struct chain_file *p = &c->files[c->n - 1];
		struct chain_file *f;

		if (c->n >= CHAIN_MAX)
			return err("%s: backing chain deeper than %d files",
				   c->files[0].path, CHAIN_MAX);
		if (backing_path(p->path, cur->backing, path))
			return -1;
		if (open_file(c, path, false))
			return -1;
		f = &c->files[c->n - 1];
		if (backing_format(f, cur->backing_fmt, p->path))
			return -1;
		if (!f->qcow2)
			return 0;	/* raw ends the chain */
		if (qcow2_read_info(f->fd, f->path, &info))
			return -1;
		cur = &info;
	}
	return 0;
}

int chain_open(struct chain *c, const char *image, bool ro)
{
	memset(c, 0, sizeof(*c));
	if (open_file(c, image, !ro))
		goto close_files;
	c->files[0].qcow2 = true;
	if (qcow2_read_info(c->files[0].fd, c->files[0].path, &c->top))
		goto close_files;
	if (follow_backing(c, &c->top))
		goto close_files;
	return 0;
close_files:
	chain_close(c);
	return -1;
}

void chain_close(struct chain *c)
{
	int i;

	for (i = 0; i < c->n; i++)
		if (c->files[i].fd >= 0)
			close(c->files[i].fd);
	c->n = 0;
}
