// SPDX-License-Identifier: GPL-2.0
/*
 * The state file of a live operation: written atomically (temporary file,
 * fsync, rename, fsync of the folder) in two places, read back as hostile
 * input by `qcow2-dm recover` and `attach`.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "state.h"
#include "util.h"

#define STATE_FILE_MAX	(8 * 1024 + 6 * PATH_MAX)
#define STATE_KEY_MAX	16

static const char *const op_names[OP_COUNT] = {
	[OP_EXTERNAL] = "external",
	[OP_MERGE] = "merge",
	[OP_BACKUP] = "backup",
};

static const char *const external_steps[] = {
	"begin", "overlay-created", "switched", NULL,
};

static const char *const merge_steps[] = {
	"begin", "overlay-created", "switched", "committed", "tmp-committed",
	NULL,
};

static const char *const backup_steps[] = {
	"begin", "overlay-created", "switched", "copied",
	"merge-overlay-created", "merge-switched", "merge-committed",
	"merge-tmp-committed", NULL,
};

static const char *const *const op_steps[OP_COUNT] = {
	[OP_EXTERNAL] = external_steps,
	[OP_MERGE] = merge_steps,
	[OP_BACKUP] = backup_steps,
};

const char *state_op_name(enum state_op op)
{
	return op < OP_COUNT ? op_names[op] : "?";
}

const char *state_step_name(const struct op_state *st)
{
	return st->op < OP_COUNT ? op_steps[st->op][st->step] : "?";
}

static int find_name(const char *const *names, int n, const char *s)
{
	int i;

	for (i = 0; i < n && names[i]; i++)
		if (!strcmp(names[i], s))
			return i;
	return -1;
}

int state_image_path(const char *image, char *buf, size_t len)
{
	const char *slash = strrchr(image, '/');

	if (!slash)
		return fmt_path(buf, len, ".%s.qcow2-dm-state", image);
	return fmt_path(buf, len, "%.*s/.%s.qcow2-dm-state",
			(int)(slash - image), image, slash + 1);
}

int state_run_path(const char *name, char *buf, size_t len)
{
	return fmt_path(buf, len, "%s/%s.state", run_dir(), name);
}

int state_exists_for(const char *image)
{
	char path[PATH_MAX + 32];
	struct stat st;

	if (state_image_path(image, path, sizeof(path)))
		return 0;
	return lstat(path, &st) == 0;
}

static int format(const struct op_state *st, char *buf, size_t len)
{
	size_t n;

	n = snprintf(buf, len,
		     "# qcow2-dm live operation state: see qcow2-dm(8), recover\n"
		     "version=%d\nop=%s\nstep=%s\nname=%s\nimage=%s\n"
		     "overlay=%s\ncache_mb=%" PRIu64 "\npid=%" PRIu64 "\n",
		     STATE_VERSION, state_op_name(st->op),
		     state_step_name(st), st->name, st->image, st->overlay,
		     st->cache_mb, st->pid);
	if (n < len && st->backing[0])
		n += snprintf(buf + n, len - n, "backing=%s\nbacking_fmt=%s\n",
			      st->backing, st->backing_fmt);
	if (n < len && st->merge_tmp[0])
		n += snprintf(buf + n, len - n, "merge_tmp=%s\n",
			      st->merge_tmp);
	if (n < len && st->out[0])
		n += snprintf(buf + n, len - n, "out=%s\n", st->out);
	if (n >= len)
		return err("state file too long");
	return (int)n;
}

/* @path holds @text once this returns 0, even after a power loss. */
static int write_atomic(const char *path, const char *text, size_t len)
{
	char tmp[PATH_MAX + 64];
	int fd;

	if (fmt_path(tmp, sizeof(tmp), "%s.tmp", path))
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		  0600);
	if (fd < 0)
		return err_errno("%s", tmp);
	if (write(fd, text, len) != (ssize_t)len || fsync(fd)) {
		err_errno("writing %s", tmp);
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	if (rename(tmp, path)) {
		err_errno("rename %s", tmp);
		unlink(tmp);
		return -1;
	}
	return sync_path(path);
}

void state_die_at(const char *step)
{
	const char *at = getenv("QCOW2_DM_DIE_AT");

	if (at && !strcmp(at, step)) {
		fprintf(stderr, PROG ": QCOW2_DM_DIE_AT=%s: killed (test hook)\n",
			step);
		raise(SIGKILL);
	}
}

int state_step(struct op_state *st, int step)
{
	static char text[STATE_FILE_MAX];
	char path[PATH_MAX + 32];
	int n;

	st->step = step;
	n = format(st, text, sizeof(text));
	if (n < 0)
		return -1;
	if (mkdir(run_dir(), 0755) && errno != EEXIST)
		return err_errno("mkdir %s", run_dir());
	if (state_run_path(st->name, path, sizeof(path)) ||
	    write_atomic(path, text, n) ||
	    state_image_path(st->image, path, sizeof(path)) ||
	    write_atomic(path, text, n))
		return err("%s: could not record step %s of %s", st->name,
			   state_step_name(st), state_op_name(st->op));
	state_die_at(state_step_name(st));
	return 0;
}

int state_begin(struct op_state *st)
{
	char path[PATH_MAX + 32];
	struct stat sb;

	if (state_run_path(st->name, path, sizeof(path)))
		return -1;
	if (!lstat(path, &sb) || state_exists_for(st->image)) {
		fail_reason(EXIT_RECOVER);
		return err("%s: an earlier live operation on %s was interrupted: run '"
			   PROG " recover %s' first", st->name, st->image,
			   st->name);
	}
	st->pid = (uint64_t)getpid();
	return state_step(st, ST_BEGIN);
}

/* fsync the folder holding @path (a removal is durable only then) */
static void sync_dir_of(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (fmt_path(dir, sizeof(dir), "%.*s", (int)(slash - path) ?
			  (int)(slash - path) : 1, path))
		return;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

void state_end(struct op_state *st)
{
	char path[PATH_MAX + 32];

	/* the one that survives a reboot first: a leftover in /run is harmless */
	if (!state_image_path(st->image, path, sizeof(path))) {
		if (unlink(path) && errno != ENOENT)
			err_errno("%s", path);
		sync_dir_of(path);
	}
	if (!state_run_path(st->name, path, sizeof(path)) &&
	    unlink(path) && errno != ENOENT)
		err_errno("%s", path);
	st->ended = true;
}

/* A path value: absolute, printable, shorter than PATH_MAX. */
static int set_path(char *dst, const char *v, const char *key)
{
	const char *p;

	if (v[0] != '/')
		return err("state: %s is not an absolute path", key);
	for (p = v; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return err("state: %s holds a control character", key);
	if (strlen(v) >= PATH_MAX)
		return err("state: %s is too long", key);
	strcpy(dst, v);
	return 0;
}

static int set_field(struct op_state *st, const char *k, const char *v,
		     const char **step)
{
	if (!strcmp(k, "op")) {
		int op = find_name(op_names, OP_COUNT, v);

		if (op < 0)
			return err("state: unknown op '%.32s'", v);
		st->op = op;
		return 0;
	}
	if (!strcmp(k, "step")) {
		*step = v;
		return 0;
	}
	if (!strcmp(k, "name")) {
		if (!valid_dm_name(v))
			return err("state: invalid device name");
		strcpy(st->name, v);
		return 0;
	}
	if (!strcmp(k, "image"))
		return set_path(st->image, v, k);
	if (!strcmp(k, "backing"))
		return set_path(st->backing, v, k);
	if (!strcmp(k, "overlay"))
		return set_path(st->overlay, v, k);
	if (!strcmp(k, "merge_tmp"))
		return set_path(st->merge_tmp, v, k);
	if (!strcmp(k, "out"))
		return set_path(st->out, v, k);
	if (!strcmp(k, "backing_fmt")) {
		if (strcmp(v, "qcow2") && strcmp(v, "raw"))
			return err("state: backing_fmt is qcow2 or raw");
		strcpy(st->backing_fmt, v);
		return 0;
	}
	if (!strcmp(k, "cache_mb"))
		return parse_u64(v, 0, 4096, &st->cache_mb) ?
			err("state: bad cache_mb") : 0;
	if (!strcmp(k, "pid"))
		return parse_u64(v, 1, 1U << 22, &st->pid) ?
			err("state: bad pid") : 0;
	return err("state: unknown key '%.*s' (written by a newer "
		   PROG "?)", STATE_KEY_MAX, k);
}

static const char *const keys[] = {
	"version", "op", "step", "name", "image", "backing", "backing_fmt",
	"overlay", "merge_tmp", "out", "cache_mb", "pid", NULL,
};

/* Each key once, version first; what each op needs is there. */
static int parse(char *text, struct op_state *st)
{
	const char *step = NULL;
	char *line, *save = NULL, *eq;
	unsigned int seen = 0;
	uint64_t version;
	int k;

	memset(st, 0, sizeof(*st));
	st->op = OP_COUNT;
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '#')
			continue;
		eq = strchr(line, '=');
		if (!eq)
			return err("state: a line without '='");
		*eq = '\0';
		k = find_name(keys, 64, line);
		if (k < 0)
			return err("state: unknown key '%.*s' (written by a newer "
				   PROG "?)", STATE_KEY_MAX, line);
		if (seen & 1U << k)
			return err("state: key %s given twice", line);
		if (!seen && k != 0)
			return err("state: the first key is not version");
		seen |= 1U << k;
		if (k == 0) {
			if (parse_u64(eq + 1, 0, 1000, &version) ||
			    version != STATE_VERSION)
				return err("state: version %.8s, this "
					   PROG " reads version %d", eq + 1,
					   STATE_VERSION);
			continue;
		}
		if (set_field(st, line, eq + 1, &step))
			return -1;
	}
	if (st->op == OP_COUNT || !step || !st->name[0] || !st->image[0] ||
	    !st->overlay[0])
		return err("state: op, step, name, image or overlay missing");
	st->step = find_name(op_steps[st->op], 16, step);
	if (st->step < 0)
		return err("state: %s has no step '%.32s'",
			   state_op_name(st->op), step);
	if (st->op == OP_MERGE && (!st->backing[0] || !st->backing_fmt[0]))
		return err("state: a merge without backing or backing_fmt");
	return 0;
}

int state_read(const char *path, struct op_state *st)
{
	static char text[STATE_FILE_MAX + 1];
	struct stat sb;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			return 1;
		return err_errno("%s", path);
	}
	/* it names files recover may remove: only its owner may write it */
	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode) ||
	    (sb.st_uid != geteuid() && sb.st_uid != 0) ||
	    (sb.st_mode & 022)) {
		close(fd);
		return err("%s: not a regular file of ours, or writable by "
			   "others: not trusted", path);
	}
	n = read(fd, text, sizeof(text));
	close(fd);
	if (n < 0)
		return err_errno("%s", path);
	if (n > STATE_FILE_MAX)
		return err("%s: too long for a state file", path);
	text[n] = '\0';
	if (memchr(text, '\0', n))
		return err("%s: holds a NUL byte", path);
	if (parse(text, st))
		return err("%s: not a valid state file", path);
	return 0;
}
