// SPDX-License-Identifier: GPL-2.0
/*
 * qcow2-dm recover NAME|IMAGE [--dry-run]
 *
 * A live operation records each step it reaches (state.h). After a crash
 * the recorded step tells which files exist, which file the device wrote
 * last and what is durable; from it a plan follows:
 *  - before the operation's overlay is durable: undo (the overlay holds
 *    nothing, remove it);
 *  - external snapshot, once its overlay is durable: finish (the overlay
 *    is the top, whether or not the device had switched onto it: an empty
 *    overlay reads as its backing file);
 *  - merge before its bulk copy is durable, backup at any step: undo the
 *    temporary overlays by committing each into its backing file (the
 *    device ran on them: they hold the newest writes), top = the image;
 *  - merge after its bulk copy is durable: finish phase 2 (the device
 *    never ran on the base, so committing the overlay again is safe);
 *  - once everything is in the final top: only drop the temporaries.
 * An attached device is suspended (if it is not), loaded on the new top
 * and resumed; a detached chain is fixed in its files only.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chain.h"
#include "commands.h"
#include "dm.h"
#include "holder.h"
#include "live.h"
#include "qcow2.h"
#include "recover.h"
#include "state.h"
#include "util.h"

struct plan {
	const char *verb;	/* what the recovery does, in words */
	const char *top;	/* the live top once recovered */
	const char *now;	/* the file holding the newest writes now */
	bool helpers;		/* remove an incremental backup's devices */
	const char *rm_out;	/* an unfinished backup copy */
	const char *rm_new;	/* an overlay the device never ran on */
	/* commit it (and its temporary backing files) down into top */
	const char *collapse;
	bool finish_merge;	/* rebase overlay onto top, commit it */
	const char *drop[2];	/* unused once the device runs on top */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " recover NAME|IMAGE [--dry-run]\n"
		"\n"
		"Finish or undo a live operation (snapshot --external, merge,\n"
		"backup) that was interrupted by a crash, a kill or a power loss,\n"
		"using the state it recorded (/run/qcow2-dm/NAME.state, and\n"
		".IMAGE.qcow2-dm-state next to the image, which survives a\n"
		"reboot). Says which file is the live top of the chain and what it\n"
		"does, then does it: on the device NAME if it is attached (suspend,\n"
		"fix the files, reload on the live top, resume), else on the image\n"
		"files. No acknowledged write is lost. An IMAGE may be any file of\n"
		"the chain (the new overlay of a snapshot, the base of a merge).\n"
		"Nothing recorded: says so and exits 0.\n"
		"\n"
		"  --dry-run    only say what would be done\n"
		"  -h, --help   this text\n"
		"\n"
		"attach refuses an image with a leftover state (exit status 5)\n"
		"until recover ran, unless given --force.\n");
}

/* ---- the plan --------------------------------------------------------- */

static void plan_external(const struct op_state *st, struct plan *p)
{
	if (st->step == ST_BEGIN) {
		p->verb = "undo: the snapshot was not taken";
		p->top = p->now = st->image;
		p->rm_new = st->overlay;
		return;
	}
	p->verb = "finish: the snapshot is taken, the new overlay is the top";
	p->top = p->now = st->overlay;
}

static void plan_merge(const struct op_state *st, struct plan *p)
{
	switch (st->step) {
	case ST_BEGIN:
		p->verb = "undo: the merge had not started";
		p->top = p->now = st->image;
		p->rm_new = st->overlay;
		break;
	case ST_OVERLAY_CREATED:
	case ST_SWITCHED:
		p->verb = "undo: commit the temporary overlay back into the image";
		p->top = st->image;
		p->now = st->overlay;
		p->collapse = st->overlay;
		p->drop[0] = st->overlay;
		break;
	case ST_M_COMMITTED:
		p->verb = "finish: the image is in the base, commit the temporary overlay into it too";
		p->top = st->backing;
		p->now = st->overlay;
		p->finish_merge = true;
		p->drop[0] = st->overlay;
		break;
	default:
		p->verb = "finish: the base holds everything, drop the temporary overlay";
		p->top = p->now = st->backing;
		p->drop[0] = st->overlay;
	}
}

static void plan_backup(const struct op_state *st, struct plan *p)
{
	p->top = st->image;
	switch (st->step) {
	case ST_BEGIN:
		p->verb = "undo: the backup had not started";
		p->now = st->image;
		p->rm_new = st->overlay;
		p->rm_out = st->out;
		return;
	case ST_OVERLAY_CREATED:
	case ST_SWITCHED:
		p->verb = "undo: the copy is unfinished, remove it and commit the temporary overlay back into the image";
		p->now = st->overlay;
		p->helpers = true;
		p->rm_out = st->out;
		p->collapse = st->overlay;
		break;
	case ST_B_COPIED:
		p->verb = "finish: the copy is done, commit the temporary overlay back into the image";
		p->now = st->overlay;
		p->rm_new = st->merge_tmp[0] ? st->merge_tmp : NULL;
		p->collapse = st->overlay;
		break;
	case ST_B_MERGE_TMP_COMMITTED:
		p->verb = "finish: the image holds everything, drop the temporary overlays";
		p->now = st->image;
		break;
	default:
		p->verb = "finish: the copy is done, commit the temporary overlays back into the image";
		p->now = st->merge_tmp;
		p->collapse = st->merge_tmp;
	}
	p->drop[0] = st->merge_tmp[0] ? st->merge_tmp : NULL;
	p->drop[1] = st->overlay;
}

static void make_plan(const struct op_state *st, struct plan *p)
{
	memset(p, 0, sizeof(*p));
	if (st->op == OP_EXTERNAL)
		plan_external(st, p);
	else if (st->op == OP_MERGE)
		plan_merge(st, p);
	else
		plan_backup(st, p);
}

/* ---- the files --------------------------------------------------------- */

/*
 * The absolute backing file of qcow2 @path into @out; -1 if it has none
 * (with a message unless @quiet).
 */
static int backing_of_q(const char *path, char *out, size_t len, bool quiet)
{
	struct qcow2_info info;
	const char *slash;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_errno("%s", path);
	r = qcow2_probe(fd) == 1 ? qcow2_read_info(fd, path, &info) : -1;
	close(fd);
	if (r || !info.backing[0])
		return quiet ? -1 :
			err("%s: not a qcow2 image with a backing file", path);
	if (info.backing[0] == '/')
		return fmt_path(out, len, "%s", info.backing);
	slash = strrchr(path, '/');
	return fmt_path(out, len, "%.*s/%s", (int)(slash - path), path,
			info.backing);
}

static int backing_of(const char *path, char *out, size_t len)
{
	return backing_of_q(path, out, len, false);
}

/* Remove @path if it is there, a regular file (never through a link). */
static int remove_file(const char *path)
{
	struct stat sb;

	if (lstat(path, &sb))
		return errno == ENOENT ? 0 : err_errno("%s", path);
	if (!S_ISREG(sb.st_mode))
		return err("%s: not a regular file: left alone", path);
	if (unlink(path))
		return err_errno("removing %s", path);
	return 0;
}

static int qemu_img(char *const argv[], const char *what)
{
	if (live_run(argv) != 0)
		return err("recover: qemu-img %s failed", what);
	return 0;
}

/*
 * Commit @from into its backing file, and that one into its own while it
 * is a temporary file of the operation, until @top holds it all.
 */
static int collapse(const struct op_state *st, const char *from,
		    const char *top)
{
	char cur[PATH_MAX], back[PATH_MAX];
	int i;

	snprintf(cur, sizeof(cur), "%s", from);
	for (i = 0; i < 2; i++) {
		char *commit[] = { "qemu-img", "commit", "-q", "-d", cur, NULL };

		if (backing_of(cur, back, sizeof(back)))
			return -1;
		if (strcmp(back, top) && strcmp(back, st->overlay))
			return err("recover: %s is backed by %s, not by a file of the operation",
				   cur, back);
		if (qemu_img(commit, "commit") || sync_path(back))
			return -1;
		if (!strcmp(back, top))
			return 0;
		snprintf(cur, sizeof(cur), "%s", back);
	}
	return err("recover: %s does not lead to %s", from, top);
}

static int finish_merge(const struct op_state *st)
{
	char *rebase[] = { "qemu-img", "rebase", "-q", "-u", "-b",
			   (char *)st->backing, "-F", (char *)st->backing_fmt,
			   (char *)st->overlay, NULL };
	char *commit[] = { "qemu-img", "commit", "-q", "-d",
			   (char *)st->overlay, NULL };

	if (qemu_img(rebase, "rebase") || sync_path(st->overlay) ||
	    qemu_img(commit, "commit") || sync_path(st->backing))
		return -1;
	return 0;
}

static void remove_helpers(const struct op_state *st)
{
	char dev[128];
	const char *fmt[] = { "%.60s-bk%d", "%.60s-inc%d" };
	int i;

	for (i = 0; i < 2; i++) {
		snprintf(dev, sizeof(dev), fmt[i], st->name, (int)st->pid);
		if (dm_exists(dev) == 1)
			dm_remove(dev, true);
	}
}

/* Everything on the files, in order; the device (if any) is suspended. */
static int fix_files(const struct op_state *st, const struct plan *p)
{
	if (p->helpers)
		remove_helpers(st);
	if (p->rm_out && p->rm_out[0] && remove_file(p->rm_out))
		return -1;
	if (p->rm_new && remove_file(p->rm_new))
		return -1;
	if (p->collapse && collapse(st, p->collapse, p->top))
		return -1;
	if (p->finish_merge && finish_merge(st))
		return -1;
	return 0;
}

/* ---- the device -------------------------------------------------------- */

static int fix_device(const struct op_state *st, const struct plan *p)
{
	struct live_table lt;
	sigset_t old;
	int r = -1, s;

	if (live_get(st->name, &lt))
		return -1;
	live_stops_block(&old);
	s = dm_suspended(st->name);
	if (s < 0 || (!s && dm_suspend(st->name))) {
		err("recover: %s: suspend failed", st->name);
		goto unblock;
	}
	holder_stop(st->name);
	if (fix_files(st, p))
		goto fence;
	if (live_load(st->name, p->top, NULL, st->cache_mb)) {
		err("recover: %s: could not load %s", st->name, p->top);
		goto fence;
	}
	if (dm_resume(st->name)) {
		err("recover: %s: resume failed: run 'dmsetup resume %s'",
		    st->name, st->name);
		goto unblock;
	}
	r = 0;
	goto unblock;
fence:
	/* the files may have changed under the old table: never resume it */
	live_fence(st->name, lt.sectors);
	err("recover: %s is left suspended on an error table; detach it "
	    "(dmsetup remove --force %s) and run '" PROG " recover %s' "
	    "again", st->name, st->name, p->top);
unblock:
	live_stops_unblock(&old);
	return r;
}

static void say_plan(const struct op_state *st, const struct plan *p,
		     bool attached, bool dry)
{
	int i;

	printf("interrupted: %s of device %s (image %s) at step %s\n",
	       state_op_name(st->op), st->name, st->image,
	       state_step_name(st));
	printf("device: %s\n", attached ? "attached" : "not attached");
	printf("newest writes in: %s\n", p->now);
	printf("%s: %s\n", dry ? "would" : "will", p->verb);
	if (p->rm_out && p->rm_out[0])
		printf("  remove the unfinished backup %s\n", p->rm_out);
	if (p->rm_new)
		printf("  remove %s (the device never wrote it)\n", p->rm_new);
	if (p->collapse)
		printf("  commit %s down into %s\n", p->collapse, p->top);
	if (p->finish_merge)
		printf("  rebase %s onto %s and commit it into it\n",
		       st->overlay, st->backing);
	if (attached)
		printf("  reload device %s on %s\n", st->name, p->top);
	for (i = 0; i < 2; i++)
		if (p->drop[i])
			printf("  remove %s (no longer in the chain)\n",
			       p->drop[i]);
	printf("live top: %s\n", p->top);
	fflush(stdout);
}

int recover_apply(struct op_state *st, bool attached, bool dry)
{
	struct plan p;
	int i;

	make_plan(st, &p);
	say_plan(st, &p, attached, dry);
	if (dry)
		return 0;
	if (attached ? fix_device(st, &p) : fix_files(st, &p))
		return err("recover: not recovered; the state is kept");
	for (i = 0; i < 2; i++)
		if (p.drop[i])
			remove_file(p.drop[i]);
	state_end(st);
	printf("recovered: the live top of %s is %s\n", st->name, p.top);
	return 0;
}

/* ---- finding the state -------------------------------------------------- */

/* The later of the two copies (one may lag a step behind the other). */
static int load_both(const char *run, const char *img, struct op_state *st)
{
	static struct op_state a, b;
	int ra = run ? state_read(run, &a) : 1;
	int rb = img ? state_read(img, &b) : 1;

	if (ra < 0 || rb < 0)
		return -1;
	if (ra && rb)
		return 1;
	if (!ra && !rb && (a.op != b.op || strcmp(a.name, b.name) ||
			   strcmp(a.image, b.image)))
		return err("%s and %s describe different operations: remove "
			   "the stale one", run, img);
	*st = (!ra && (rb || a.step >= b.step)) ? a : b;
	return 0;
}

/* The state of device @name, or of the image of @st read from /run. */
static int find_by_name(const char *name, struct op_state *st)
{
	char run[PATH_MAX], img[PATH_MAX + 32];
	struct op_state r;
	int rr;

	if (state_run_path(name, run, sizeof(run)))
		return -1;
	rr = state_read(run, &r);
	if (rr < 0)
		return -1;
	if (rr == 0) {
		if (state_image_path(r.image, img, sizeof(img)))
			return -1;
		return load_both(run, img, st);
	}
	return 1;
}

/* Walk the chain down from @image for a state file next to one of them. */
static int find_by_image(const char *image, struct op_state *st)
{
	char cur[PATH_MAX], next[PATH_MAX], side[PATH_MAX + 32],
	     run[PATH_MAX];
	int i, r, fd, q;

	if (!realpath(image, cur))
		return err_errno("%s", image);
	for (i = 0; i < CHAIN_MAX; i++) {
		if (state_image_path(cur, side, sizeof(side)))
			return -1;
		r = state_read(side, st);
		if (r < 0)
			return -1;
		if (r == 0) {
			if (strcmp(st->image, cur))
				return err("%s names the image %s, not %s",
					   side, st->image, cur);
			if (state_run_path(st->name, run, sizeof(run)))
				return -1;
			return load_both(run, side, st);
		}
		fd = open(cur, O_RDONLY | O_CLOEXEC);
		q = fd < 0 ? -1 : qcow2_probe(fd);
		if (fd >= 0)
			close(fd);
		if (q != 1)
			return 1;
		if (backing_of_q(cur, next, sizeof(next), true))
			return 1;
		if (!realpath(next, cur))
			return 1;
	}
	return 1;
}

/*
 * The operation's process, if it still runs, must finish on its own: a
 * qcow2-dm running a live operation (not a lock holder, not a process
 * that took the pid over after a reboot).
 */
static int still_running(const struct op_state *st)
{
	static const char *const ops[] = { "snapshot", "merge", "backup" };
	char path[64], cmd[256];
	const char *arg1, *base;
	ssize_t n;
	size_t i;
	int fd;

	if ((pid_t)st->pid == getpid())
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)st->pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, cmd, sizeof(cmd) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	cmd[n] = '\0';
	base = strrchr(cmd, '/');
	base = base ? base + 1 : cmd;
	arg1 = cmd + strlen(cmd) + 1;
	if (strcmp(base, PROG) || arg1 >= cmd + n)
		return 0;
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (!strcmp(arg1, ops[i]))
			return 1;
	return 0;
}

/* Is device st->name attached on a file of the operation? 1, 0, -1. */
static int attached_on(const struct op_state *st)
{
	struct live_table lt;
	int e = dm_exists(st->name);

	if (e <= 0)
		return e;
	if (live_get(st->name, &lt))
		return -1;
	if (!strcmp(lt.image, st->image) || !strcmp(lt.image, st->overlay) ||
	    (st->merge_tmp[0] && !strcmp(lt.image, st->merge_tmp)) ||
	    (st->backing[0] && !strcmp(lt.image, st->backing)))
		return 1;
	fail_reason(EXIT_BUSY);
	return err("recover: device %s runs on %s, not on a file of the "
		   "interrupted operation: detach it first", st->name,
		   lt.image);
}

int cmd_recover(int argc, char **argv)
{
	static struct op_state st;
	const char *arg = NULL;
	struct stat sb;
	bool dry = false, by_name = false;
	int i, r, a;

	if (wants_help(argc, argv)) {
		usage(stdout);
		return 0;
	}
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--dry-run"))
			dry = true;
		else if (argv[i][0] != '-' && !arg)
			arg = argv[i];
		else
			return err("recover: unexpected argument '%s' (try --help)",
				   argv[i]), EXIT_USAGE;
	}
	if (!arg)
		return err("recover: need NAME or IMAGE (try --help)"), EXIT_USAGE;
	if (!stat(arg, &sb) && S_ISREG(sb.st_mode)) {
		r = find_by_image(arg, &st);
	} else if (valid_dm_name(arg)) {
		by_name = true;
		r = find_by_name(arg, &st);
		if (r == 1 && dm_exists(arg) == 1) {
			struct live_table lt;

			r = live_get(arg, &lt) ? -1 : find_by_image(lt.image, &st);
		}
	} else {
		fail_reason(EXIT_NOT_FOUND);
		return err("recover: %s: no such image, and not a device name",
			   arg), 1;
	}
	if (r < 0)
		return 1;
	if (r == 1) {
		printf("nothing to do: no interrupted live operation recorded for %s%s\n",
		       arg, by_name ? " (after a reboot /run is empty: give "
		       "the image)" : "");
		return 0;
	}
	if (still_running(&st)) {
		fail_reason(EXIT_BUSY);
		return err("recover: the %s of %s still runs (pid %d): let it "
			   "finish or stop it first", state_op_name(st.op),
			   st.name, (int)st.pid), 1;
	}
	a = attached_on(&st);
	if (a < 0)
		return 1;
	return recover_apply(&st, a == 1, dry) ? 1 : 0;
}
