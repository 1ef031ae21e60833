// SPDX-License-Identifier: GPL-2.0
/*
 * qcow2-dm merge NAME: commit the device's top image into its backing
 * file while the device stays in use, then drop it from the chain.
 *
 * Two phases, like a pre-copy migration:
 *  1. The device switches onto a temporary overlay TMP (an external
 *     snapshot), so TOP and BASE are no longer written by the kernel, and
 *     `qemu-img commit -d TOP` copies TOP into BASE while the device keeps
 *     running on TMP -> TOP -> BASE. This is safe because the kernel reads
 *     BASE only where TOP has no data, and qemu-img writes BASE only where
 *     TOP has data (whole BASE clusters: see check_geometry()).
 *  2. Under suspend: TMP is rebased onto BASE (same content: BASE now
 *     holds TOP), committed into BASE (only what was written during phase
 *     1), and the device reloads on BASE alone. The pause lasts as long as
 *     that small commit.
 * A failure in either phase leaves the device running on a chain with
 * the same content (TMP over TOP or over BASE) and says so.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "dm.h"
#include "holder.h"
#include "live.h"
#include "qcow2.h"
#include "recover.h"
#include "state.h"
#include "util.h"

#define INCOMPAT_EXTL2	(1ULL << 4)

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " merge NAME\n"
		"\n"
		"Commit the top image of the attached device NAME into its backing\n"
		"file while the device stays in use (like 'qemu-img commit'), then\n"
		"reload the device on the backing file: the top image leaves the\n"
		"chain and may be deleted. The device pauses once, briefly, for the\n"
		"writes made while the bulk of the data was being copied.\n"
		"\n"
		"SIGINT, SIGTERM or SIGHUP while the data is copied stop the copy\n"
		"and put the device back on the top image (the writes made meanwhile\n"
		"are committed into it; run merge again); during the pause they take\n"
		"effect once the device runs again. With a terminal on stderr the\n"
		"copy shows its progress. Each step is recorded for\n"
		"'" PROG " recover' (after a crash).\n"
		"\n"
		"Refused for read-only devices, devices without a backing file, a\n"
		"top image with extended L2 entries or an external data file, and a\n"
		"qcow2 backing file with larger clusters than the top image.\n"
		"\n"
		"  -h, --help   this text\n");
}

static int read_info(const char *path, struct qcow2_info *info)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), r;

	if (fd < 0)
		return err_errno("merge: %s", path);
	r = qcow2_read_info(fd, path, info);
	close(fd);
	return r;
}

/*
 * Phase 1 needs every write of qemu-img into BASE to cover whole BASE
 * clusters that the kernel never reads (it reads them from TOP): a
 * partial write could copy a BASE cluster elsewhere and free the old one
 * while the kernel's cached tables still point at it.
 */
static int check_geometry(const struct live_table *lt)
{
	struct qcow2_info top, base;

	if (read_info(lt->image, &top))
		return -1;
	if (top.incompatible & INCOMPAT_EXTL2)
		return err("merge: %s has extended L2 entries: not supported",
			   lt->image);
	if (strcmp(lt->backing_fmt, "qcow2"))
		return 0;
	if (read_info(lt->backing, &base))
		return -1;
	if (base.cluster_bits > top.cluster_bits)
		return err("merge: %s has larger clusters than %s: not supported",
			   lt->backing, lt->image);
	return 0;
}

static int qemu_img(const char *what, char *const argv[])
{
	if (live_run(argv) != 0)
		return err("merge: qemu-img %s failed", what);
	return 0;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Record merge step @k (merge numbering; in a backup, its merge-* steps). */
static int mstep(struct op_state *st, int k)
{
	return state_step(st, st->op == OP_BACKUP ? k + ST_B_COPIED : k);
}

/*
 * Phase 1: TOP into BASE, the device running on TMP -> TOP -> BASE.
 * -1: the device runs on TOP (TMP removed); -2: it runs on TMP, which
 * must go back into TOP (recover_apply() at step switched).
 */
static int phase1(const char *name, const char *tmp, struct live_table *lt,
		  bool quiet, struct op_state *st)
{
	bool progress = !quiet && isatty(STDERR_FILENO);
	char *commit[] = { "qemu-img", "commit", progress ? "-p" : "-q", "-d",
			   lt->image, NULL };
	int r;

	if (live_create_overlay(tmp, lt))
		return -1;
	if (mstep(st, ST_OVERLAY_CREATED)) {
		unlink(tmp);
		return -1;
	}
	if (live_switch(name, tmp, lt)) {
		/* back on TOP: TMP was never written */
		if (mstep(st, ST_BEGIN))
			return -2;
		unlink(tmp);
		return -1;
	}
	if (mstep(st, ST_SWITCHED))
		return -2;
	if (!quiet)
		fprintf(stderr, PROG ": merge: copying %s into %s, %s in use\n",
			lt->image, lt->backing, name);
	/* qemu-img takes its own locks: ours would conflict */
	holder_stop(name);
	r = qemu_img("commit", commit);
	if (live_stop)
		r = err("merge: stopped by signal %d", (int)live_stop);
	/* phase 2 drops TOP from TMP's chain: BASE must hold it durably */
	if (!r)
		r = sync_path(lt->backing);
	if (live_hold(name, tmp))
		err("merge: %s: could not lock %s again", name, tmp);
	if (!r)
		r = mstep(st, ST_M_COMMITTED);
	return r ? -2 : 0;
}

/*
 * Phase 2, under suspend: TMP into BASE, the device onto BASE. On failure
 * the device runs on TMP and the state says committed: recover finishes.
 */
static int phase2(const char *name, const char *tmp,
		  const struct live_table *lt, struct op_state *st)
{
	char *rebase[] = { "qemu-img", "rebase", "-q", "-u", "-b",
			   (char *)lt->backing, "-F", (char *)lt->backing_fmt,
			   (char *)tmp, NULL };
	char *commit[] = { "qemu-img", "commit", "-q", "-d", (char *)tmp, NULL };
	struct live_table back = *lt;
	sigset_t old;
	int r = 0;

	/* a stop now waits for the end of the pause (the commit is short) */
	live_stops_block(&old);
	if (dm_suspend(name)) {
		r = err("merge: %s: suspend failed", name);
		goto unblock;
	}
	holder_stop(name);
	if (qemu_img("rebase", rebase) || sync_path(tmp) ||
	    qemu_img("commit", commit) || sync_path(lt->backing) ||
	    mstep(st, ST_M_TMP_COMMITTED))
		goto rollback;
	if (live_load(name, lt->backing, NULL, lt->cache_mb)) {
		/* TMP gets written again: recovery must commit it again */
		mstep(st, ST_M_COMMITTED);
		goto rollback;
	}
	if (dm_resume(name))
		r = err("merge: %s: resume failed: run 'dmsetup resume %s'",
			name, name);
	goto unblock;
rollback:
	snprintf(back.image, sizeof(back.image), "%s", tmp);
	live_rollback(name, &back);
	r = err("merge: %s runs on %s, content unchanged; run '" PROG
		" recover %s' to finish the merge", name, tmp, name);
unblock:
	live_stops_unblock(&old);
	return r;
}

/* A stopped or failed phase 1 of a merge of its own: back onto TOP. */
static void undo_phase1(const char *name, struct op_state *st)
{
	int sig = live_stop;

	/* the undo runs qemu-img: a recorded stop would kill it at once */
	live_stop = 0;
	if (recover_apply(st, true, false))
		err("merge: run '" PROG " recover %s'", name);
	else
		err("merge: %s runs on %s again, content unchanged", name,
		    st->image);
	live_stop = sig;
}

static void merge_state(struct op_state *st, const char *name,
			const struct live_table *lt, const char *tmp)
{
	memset(st, 0, sizeof(*st));
	st->op = OP_MERGE;
	snprintf(st->name, sizeof(st->name), "%s", name);
	snprintf(st->image, sizeof(st->image), "%s", lt->image);
	snprintf(st->backing, sizeof(st->backing), "%s", lt->backing);
	snprintf(st->backing_fmt, sizeof(st->backing_fmt), "%s",
		 lt->backing_fmt);
	snprintf(st->overlay, sizeof(st->overlay), "%s", tmp);
	st->cache_mb = lt->cache_mb;
}

int live_merge(const char *name, bool quiet, struct op_state *outer)
{
	static struct op_state own;
	struct op_state *st = outer ? outer : &own;
	char tmp[PATH_MAX];
	struct live_table lt;
	const char *slash;
	double t0, t1, t2;
	int r;

	if (live_get(name, &lt))
		return -1;
	if (lt.ro)
		return err("merge: %s is read-only", name);
	if (!lt.backing[0])
		return err("merge: %s has no backing file to merge into", name);
	if (check_geometry(&lt))
		return -1;
	slash = strrchr(lt.image, '/');
	if (!slash)
		return err("merge: %s: not an absolute path", lt.image);
	if (fmt_path(tmp, sizeof(tmp), "%.*s/.%s.merge-%d.qcow2",
		     (int)(slash - lt.image), lt.image, slash + 1,
		     (int)getpid()))
		return -1;
	if (outer) {
		snprintf(st->merge_tmp, sizeof(st->merge_tmp), "%s", tmp);
		if (mstep(st, ST_BEGIN))
			return -1;
	} else {
		merge_state(st, name, &lt, tmp);
		if (state_begin(st))
			return -1;
	}
	t0 = now();
	r = phase1(name, tmp, &lt, quiet, st);
	if (r) {
		if (!outer && r == -1)
			state_end(st);
		else if (!outer)
			undo_phase1(name, st);
		return -1;
	}
	t1 = now();
	if (phase2(name, tmp, &lt, st))
		return -1;
	t2 = now();
	unlink(tmp);
	if (!outer)
		state_end(st);
	if (!quiet)
		fprintf(stderr,
			PROG ": merge: %s merged into %s in %.1f s (device paused %.2f s); %s is no longer used\n",
			lt.image, lt.backing, t2 - t0, t2 - t1, lt.image);
	return 0;
}

int cmd_merge(int argc, char **argv)
{
	if (wants_help(argc, argv)) {
		usage(stdout);
		return 0;
	}
	if (argc != 2)
		return err("merge: expected exactly one NAME (try --help)"), 2;
	if (!valid_dm_name(argv[1]))
		return err("merge: invalid device name '%s'", argv[1]), 2;
	live_catch_stops();
	return live_merge(argv[1], false, NULL) ? 1 : 0;
}
