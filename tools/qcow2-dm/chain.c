// SPDX-License-Identifier: GPL-2.0
/* Backing chain and data file resolution for attach. */
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

/*
 * Resolve a file name that an image holds (@what: "backing file" or "data
 * file") relative to the folder of that image, @parent.
 */
static int resolve_name(const char *parent, const char *what,
			const char *name, char *out)
{
	char dir[PATH_MAX], joined[PATH_MAX];

	if (strchr(name, ':') && (!strncmp(name, "json:", 5) ||
				  strstr(name, "://") || !strncmp(name, "nbd:", 4)))
		return err("%s: %s '%s' is not a local file; "
			   "only local files are supported", parent, what, name);
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
		return err_errno("%s: %s '%s' (%s)", parent, what, name, joined);
	return 0;
}

/*
 * Open @path (its canonical name into f->path) read-write or read-only
 * and stat it into @st: a regular file that a table can name. f->fd is
 * the open file, -1 when opening failed.
 */
static int open_regular(struct chain_file *f, const char *path, bool rw,
			struct stat *st)
{
	f->fd = -1;
	if (!realpath(path, f->path)) {
		if (errno == ENOENT)
			fail_reason(EXIT_NOT_FOUND);
		return err_errno("%s", path);
	}
	if (table_safe(f->path))
		return -1;
	f->fd = open(f->path, (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (f->fd < 0)
		return err_errno("%s: open", f->path);
	if (fstat(f->fd, st))
		return err_errno("%s: stat", f->path);
	if (!S_ISREG(st->st_mode))
		return err("%s: not a regular file", f->path);
	return 0;
}

/* Is @st the file of one of the first @n chain files? 1 yes, 0 no, -1 error. */
static int in_chain(const struct chain *c, int n, const struct stat *st)
{
	struct stat other;
	int i;

	for (i = 0; i < n; i++) {
		if (fstat(c->files[i].fd, &other))
			return err_errno("%s: stat", c->files[i].path);
		if (other.st_dev == st->st_dev && other.st_ino == st->st_ino)
			return 1;
	}
	return 0;
}

static int open_file(struct chain *c, const char *path, bool rw)
{
	struct chain_file *f = &c->files[c->n];
	struct stat st;
	int r = open_regular(f, path, rw, &st);

	if (f->fd >= 0)
		c->n++;
	if (r)
		return -1;
	r = in_chain(c, c->n - 1, &st);
	if (r)
		return r < 0 ? -1 : err("%s: backing chain loops back to %s",
					c->files[0].path, f->path);
	return image_lock(f->fd, f->path, rw ? LOCK_WRITER : LOCK_READER);
}

/*
 * The external data file of the image (files[0]), once its backing chain
 * is open: named like a backing file, opened like the image (read-write
 * unless @ro) and locked the same way.
 */
static int open_data_file(struct chain *c, bool ro)
{
	struct chain_file *f = &c->data;
	char path[PATH_MAX];
	struct stat st;
	int r;

	if (!c->top.data_file[0])
		return 0;
	if (resolve_name(c->files[0].path, "data file", c->top.data_file, path))
		return -1;
	r = open_regular(f, path, !ro, &st);
	c->has_data = f->fd >= 0;
	if (r)
		return -1;
	r = in_chain(c, c->n, &st);
	if (r)
		return r < 0 ? -1 : err("%s: data file %s is the image itself or "
					"one of its backing files",
					c->files[0].path, f->path);
	return image_lock(f->fd, f->path, ro ? LOCK_READER : LOCK_WRITER);
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
		if (resolve_name(p->path, "backing file", cur->backing, path))
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
		if (info.data_file[0])
			return err("%s: backing image with an external data file is not supported",
				   f->path);
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
	if (open_data_file(c, ro))
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
	if (c->has_data && c->data.fd >= 0)
		close(c->data.fd);
	c->has_data = false;
}
