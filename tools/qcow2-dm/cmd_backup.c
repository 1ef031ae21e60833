// SPDX-License-Identifier: GPL-2.0
/*
 * qcow2-dm backup NAME OUT: a full, point-in-time copy of a live device.
 *
 * The device switches onto a temporary overlay (an external snapshot), so
 * its image is frozen at that instant; qemu-img copies the frozen image
 * (with its backing chain) into OUT while the device keeps being written;
 * then the overlay is merged back online. Whatever happens to the copy
 * (failure, SIGINT, SIGTERM), the overlay is merged back before exit, so
 * the backup holds nothing once it returns.
 *
 * With --bitmap B the image's persistent dirty bitmap B (dm-qcow2 tracks
 * it) starts again at the frozen instant once the copy is durable: it is
 * cleared (or added) in the frozen image before the merge, and the merge
 * (qemu-img commit) sets the bits of everything written during the backup.
 * With --incremental PREV only the ranges B marks are copied, into OUT
 * created as an overlay of PREV. A failed backup leaves B as it was, and
 * the merge adds to it: never fewer bits than changes.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "holder.h"
#include "incremental.h"
#include "live.h"
#include "qcow2.h"
#include "recover.h"
#include "state.h"
#include "util.h"

static volatile sig_atomic_t stop_signal;
/* set while the copy runs: a stop signal is passed on to it */
static volatile sig_atomic_t copying;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " backup NAME OUT [--format qcow2|raw]\n"
		"       " PROG " backup NAME OUT --bitmap B [--incremental PREV]\n"
		"\n"
		"Copy the content that the attached device NAME has at this instant\n"
		"into the new file OUT (qcow2 by default, compressed clusters not\n"
		"used), while the device stays in use. The device's image is frozen\n"
		"under a temporary overlay for the copy, which is merged back\n"
		"afterwards (see merge): the device pauses twice, briefly. SIGINT\n"
		"or SIGTERM stops the copy, removes OUT and still merges back.\n"
		"Prints the backup's path on success.\n"
		"\n"
		"  --format F   qcow2 (default) or raw\n"
		"  --bitmap B   afterwards the image's dirty bitmap B (added if\n"
		"               missing) records the changes made since this\n"
		"               backup's instant, for the next --incremental one\n"
		"  --incremental PREV\n"
		"               OUT becomes a qcow2 overlay of PREV, the backup\n"
		"               taken when B was last reset, holding only what B\n"
		"               marks: the chain OUT -> PREV -> ... reads as the\n"
		"               device did at this instant. Refused when B is\n"
		"               missing or inconsistent (take a full one)\n"
		"  -h, --help   this text\n");
}

/*
 * Stop signals end the copy, not this process. The copy's qemu-img is
 * told, also when the signal was sent to this process alone (kill PID,
 * a service manager): not only a terminal's Ctrl-C, which reaches the
 * whole process group. The merge back that follows is never told:
 * stopping it would leave the device on the temporary overlay.
 */
static void on_signal(int sig)
{
	stop_signal = sig;
	if (copying)
		live_kill_child(sig);
}

static int copy_out(const char *image, const char *out, const char *fmt)
{
	char *argv[] = { "qemu-img", "convert", "-O", (char *)fmt,
			 (char *)image, (char *)out,
			 isatty(STDERR_FILENO) ? "-p" : NULL, NULL };
	int r;

	copying = 1;
	r = stop_signal ? 1 : live_run(argv);
	copying = 0;
	if (stop_signal)
		return err("backup: stopped by signal %d", (int)stop_signal);
	if (r)
		return err("backup: qemu-img convert failed");
	/* qemu-img convert writes OUT with a volatile cache ("unsafe") */
	return sync_path(out);
}

struct backup_opts {
	const char *name, *out, *fmt;
	const char *bitmap, *prev;
};

static int parse(int argc, char **argv, struct backup_opts *o)
{
	const char **name = &o->name, **out = &o->out, **fmt = &o->fmt;
	int i;

	memset(o, 0, sizeof(*o));
	*fmt = "qcow2";
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--format") && i + 1 < argc)
			*fmt = argv[++i];
		else if (!strcmp(argv[i], "--bitmap") && i + 1 < argc)
			o->bitmap = argv[++i];
		else if (!strcmp(argv[i], "--incremental") && i + 1 < argc)
			o->prev = argv[++i];
		else if (argv[i][0] == '-')
			return err("backup: unknown option '%s' (try --help)",
				   argv[i]);
		else if (!*name)
			*name = argv[i];
		else if (!*out)
			*out = argv[i];
		else
			return err("backup: too many arguments (try --help)");
	}
	if (!*name || !*out)
		return err("backup: need NAME and OUT (try --help)");
	if (strcmp(*fmt, "qcow2") && strcmp(*fmt, "raw"))
		return err("backup: --format is qcow2 or raw");
	if (!valid_dm_name(*name))
		return err("backup: invalid device name '%s'", *name);
	if (o->prev && !o->bitmap)
		return err("backup: --incremental needs --bitmap");
	if (o->prev && strcmp(*fmt, "qcow2"))
		return err("backup: an incremental backup is qcow2");
	if (o->bitmap && (!o->bitmap[0] || strlen(o->bitmap) > 1023))
		return err("backup: a bitmap name is 1 to 1023 bytes");
	return 0;
}

/* Bitmap @b of the frozen @image: 0 read, 1 missing, -1 inconsistent. */
static int read_bitmap(const char *image, const char *b,
		       struct qcow2_bitmap *bm)
{
	struct qcow2_info info;
	int fd = open(image, O_RDONLY | O_CLOEXEC), r;

	if (fd < 0)
		return err_errno("backup: %s", image);
	r = qcow2_read_info(fd, image, &info);
	if (!r)
		r = qcow2_bitmap_read(fd, image, &info, b, bm);
	close(fd);
	return r;
}

static int bitmap_op(const char *op, const char *image, const char *b)
{
	char *argv[] = { "qemu-img", "bitmap", (char *)op, (char *)image,
			 (char *)b, NULL };

	if (live_run(argv))
		return err("backup: qemu-img bitmap %s %s failed", op, b);
	return 0;
}

/*
 * The copy is durable: bitmap @b of the frozen image restarts empty (the
 * merge that follows marks what was written meanwhile). @state is what
 * read_bitmap() returned.
 */
static int reset_bitmap(const char *name, const char *tmp, const char *image,
			const char *b, int state)
{
	int r;

	holder_stop(name);	/* qemu-img takes its own locks */
	if (state == 0)
		r = bitmap_op("--clear", image, b);
	else if (state == 1)
		r = bitmap_op("--add", image, b);
	else
		r = bitmap_op("--remove", image, b) ||
		    bitmap_op("--add", image, b);
	if (!r)
		r = sync_path(image);
	if (live_hold(name, tmp))
		err("backup: %s: could not lock %s again", name, tmp);
	return r;
}

static int tmp_path(const struct live_table *lt, char *tmp, size_t len)
{
	const char *slash = strrchr(lt->image, '/');

	if (!slash)
		return err("backup: %s: not an absolute path", lt->image);
	return fmt_path(tmp, len, "%.*s/.%s.backup-%d.qcow2",
			(int)(slash - lt->image), lt->image, slash + 1,
			(int)getpid());
}

/* The frozen image into OUT: all of it, or what the bitmap marks. */
static int copy_frozen(const struct backup_opts *o, const char *tmp,
		       const struct live_table *lt, struct op_state *st)
{
	struct qcow2_bitmap bm = { 0 };
	int state = 1, r;

	if (o->bitmap) {
		state = read_bitmap(lt->image, o->bitmap, &bm);
		if (o->prev && state)
			return err("backup: %s has no consistent bitmap '%s': "
				   "take a full backup with --bitmap %s first",
				   lt->image, o->bitmap, o->bitmap);
	}
	if (o->prev)
		r = incremental_copy(o->name, lt->image, lt->sectors << 9, &bm,
				     o->prev, o->out, &stop_signal);
	else
		r = copy_out(lt->image, o->out, o->fmt);
	free(bm.bits);
	if (!r && o->prev)
		r = sync_path(o->out);
	if (r) {
		/* not a backup: a crash from now on must not keep it */
		unlink(o->out);
		st->out[0] = '\0';
		return r;
	}
	/* OUT is durable: whatever happens next, recover keeps it */
	st->out[0] = '\0';
	r = state_step(st, ST_B_COPIED);
	if (!r && o->bitmap)
		r = reset_bitmap(o->name, tmp, lt->image, o->bitmap, state);
	return r;
}

static int backup_state(struct op_state *st, const char *name,
			const struct live_table *lt, const char *tmp,
			const char *out)
{
	memset(st, 0, sizeof(*st));
	st->op = OP_BACKUP;
	snprintf(st->name, sizeof(st->name), "%s", name);
	snprintf(st->image, sizeof(st->image), "%s", lt->image);
	snprintf(st->overlay, sizeof(st->overlay), "%s", tmp);
	st->cache_mb = lt->cache_mb;
	return abs_path_new(out, st->out, sizeof(st->out));
}

/* The overlay could not be merged back: commit it back as recover would. */
static void merge_back_failed(const char *name, const char *tmp,
			      struct op_state *st)
{
	err("backup: merging %s back failed", tmp);
	if (st->ended || recover_apply(st, true, false))
		err("backup: %s may still run on %s; run '" PROG
		    " recover %s'", name, tmp, name);
}

int cmd_backup(int argc, char **argv)
{
	static struct op_state sto;
	struct backup_opts o;
	const char *name, *out, *fmt;
	char tmp[PATH_MAX];
	struct live_table lt;
	struct timespec t0, t1;
	struct stat st;
	int r;

	if (wants_help(argc, argv)) {
		usage(stdout);
		return 0;
	}
	if (parse(argc, argv, &o))
		return 2;
	name = o.name;
	out = o.out;
	fmt = o.fmt;
	if (live_get(name, &lt))
		return 1;
	if (o.bitmap && lt.ro)
		return err("backup: %s is read-only: it has no dirty bitmaps to "
			   "follow", name), 1;
	if (!stat(out, &st) || errno != ENOENT)
		return err("backup: %s already exists", out), 1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	live_catch_stops_with(on_signal);
	if (lt.ro) {		/* nothing writes it: copy it as it is */
		r = copy_out(lt.image, out, fmt);
		goto done;
	}
	if (tmp_path(&lt, tmp, sizeof(tmp)) ||
	    backup_state(&sto, name, &lt, tmp, out) || state_begin(&sto))
		return 1;
	if (live_create_overlay(tmp, &lt) ||
	    state_step(&sto, ST_OVERLAY_CREATED))
		goto remove_tmp;
	if (live_switch(name, tmp, &lt)) {
		if (state_step(&sto, ST_BEGIN))
			return 1;
		goto remove_tmp;
	}
	if (state_step(&sto, ST_SWITCHED)) {
		merge_back_failed(name, tmp, &sto);
		return 1;
	}
	fprintf(stderr, PROG ": backup: %s frozen at this instant, copying it to %s\n",
		lt.image, out);
	r = copy_frozen(&o, tmp, &lt, &sto);
	if (live_merge(name, true, &sto)) {
		merge_back_failed(name, tmp, &sto);
		r = -1;
	} else {
		unlink(tmp);	/* merged back: no longer in the chain */
		state_end(&sto);
	}
done:
	if (r) {
		unlink(out);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (!stat(out, &st))
		fprintf(stderr, PROG ": backup: %s: %llu MiB virtual, %.1f MiB file, %.1f s\n",
			out, (unsigned long long)(lt.sectors >> 11),
			st.st_blocks / 2048.0,
			(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	printf("%s\n", out);
	return 0;
remove_tmp:
	unlink(tmp);
	state_end(&sto);
	return 1;
}
