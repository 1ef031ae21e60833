// SPDX-License-Identifier: GPL-2.0
/*
 * crash_io: the workload, the reference and the checker of the power-cut
 * test.
 *
 *   crash_io work DEV HIST --lw NAME [--seed S] [--ops N] [--cluster B]
 *                 [--threads T] [--burst K] [--fua PCT]
 *   crash_io mark HIST            a flush completed outside (detach):
 *                                 append a flush mark, print its name
 *   crash_io points LIST HIST --start MARK [--seed S] [--max N] [--random K]
 *   crash_io verify DEV HIST (--last-mark NAME|none | --list LIST --point P)
 *
 * work: a deterministic (from the seed) mix of 4 KiB-aligned direct
 * writes of many sizes, overwrites, FUA writes (O_DSYNC; PCT of the
 * writes other than bursts, default 10), write-zeroes
 * (BLKZEROOUT), whole-cluster discards (BLKDISCARD), bursts of K
 * scattered one-block writes, and an fsync now and then, from T threads
 * at once (each its own seeded sequence; overwrites pick recent writes of
 * any thread, so writes of different threads overlap while in flight).
 * HIST is one totally ordered record, appended under a lock:
 *   W idx blk n fua   a write, before it is issued
 *   Z idx blk n       a write-zeroes or discard, before it is issued
 *   C idx ref         op ref completed (after the call returned)
 *   S idx             an fsync is about to be issued
 *   M idx F ref       that fsync (S ref) completed; 0: a flush outside
 *   M idx U ref       the FUA write ref completed
 * A mark M idx is put into the dm-log-writes log as "c<idx>" (DM ioctl)
 * under the same lock, just before its line: so a record that follows a
 * mark in HIST happened after the mark was in the log. Every 512-byte
 * sector written holds (magic, block, write id, sector) and a fill
 * derived from them, so a sector read back names the write it came from,
 * or is zeros, or is garbage.
 *
 * verify: given the marks that are in the log before the cut (those up to
 * and including --last-mark in HIST order, which is exact for a single
 * writer; or those of the entries before --point of LIST), each sector
 * must hold a legal version:
 *   - an op is durable if it completed before the S record of a logged F
 *     mark, or is a FUA write whose U mark is logged;
 *   - an op issued after the first mark that is not logged cannot have
 *     reached the disk; every other op may have;
 *   - op A is overwritten by op B if B was issued after A completed;
 *   - legal: every op (covering the sector, issued early enough) that no
 *     durable op overwrote, and the initial zeros if no op is durable.
 * So a write acknowledged before a completed flush is there, a write in
 * flight at the cut is old or new per sector, and nothing else passes
 * (garbage, an older version, a lost zeroing). Prints a summary line and
 * exits 1 on loss.
 *
 * points: the crash points to try, from `lwlog list` output: every
 * flush and FUA entry after the start mark (replay up to and including
 * it), K random points between them, and the end of the log; with --max,
 * an evenly spread subset of the flush/FUA points. Points that fall
 * between a mark "qemu" and the next mark are left out: there QEMU's own
 * tools (qemu-img snapshot), not dm-qcow2, are writing. Points that fall
 * between a mark whose name starts with "op-" and the next mark (an
 * operation of interest, such as an online snapshot, recorded whole) are
 * all kept, whatever --max says, plus K random points inside each such
 * window. One line each: POINT LAST_MARK_BEFORE_IT KIND, KIND being
 * flush, random, or op-NAME for the points inside a window.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/dm-ioctl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#define BLK		4096U
#define SECT		512U
#define SPB		(BLK / SECT)
#define MAGIC		0x4352415348494f31ULL	/* "CRASHIO1" */
#define MAX_OPS		(1U << 21)
#define MAX_THREADS	16
#define NRECENT		16

struct op {
	char kind;		/* W Z C S M */
	char mkind;		/* M: 'F' flush, 'U' one FUA write */
	int fua;		/* W */
	uint64_t idx;		/* position in the history, from 1 */
	uint64_t blk, nblk;	/* W, Z */
	uint64_t ref;		/* C: the op; M F: its S (0: itself); M U: the write */
	uint64_t done;		/* W, Z: index of its C record, 0 if none */
};

static struct op *ops;
static size_t nr_ops;

/* each thread of the workload has its own sequence */
static __thread uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rnd_below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: crash_io work DEV HIST --lw NAME [--seed S] [--ops N] [--cluster BYTES]\n"
"                     [--threads T] [--burst K] [--fua PCT]\n"
"       crash_io mark HIST\n"
"       crash_io points LIST HIST --start MARK [--seed S] [--max N] [--random K]\n"
"       crash_io verify DEV HIST (--last-mark NAME|none | --list LIST --point P)\n"
"See the comment at the top of crash_io.c.\n");
}

/* The content of sector @s of block @blk written by write @id. */
static void fill_sector(unsigned char *p, uint64_t blk, uint64_t id, uint32_t s)
{
	uint64_t x = blk * 0x100000001b3ULL ^ id * 0x9e3779b97f4a7c15ULL ^ s;
	uint64_t *w = (uint64_t *)p;
	unsigned int i;

	w[0] = MAGIC;
	w[1] = blk;
	w[2] = id;
	w[3] = s;
	for (i = 4; i < SECT / 8; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		w[i] = x;
	}
}

/* What wrote this sector: 0 zeros, the write id, or -1 for garbage. */
static int64_t sector_id(const unsigned char *p, uint64_t blk, uint32_t s)
{
	const uint64_t *w = (const uint64_t *)p;
	unsigned char ref[SECT];
	unsigned int i;

	if (w[0] != MAGIC) {
		for (i = 0; i < SECT / 8; i++)
			if (w[i])
				return -1;
		return 0;
	}
	if (w[1] != blk || w[3] != s || !w[2])
		return -1;
	fill_sector(ref, blk, w[2], s);
	return memcmp(ref, p, SECT) ? -1 : (int64_t)w[2];
}

/* ---- history ---- */

static int hist_bad(FILE *f, const char *why, const char *line)
{
	fprintf(stderr, "crash_io: history %s: %s", why, line);
	fclose(f);
	return -1;
}

static int hist_load(const char *path)
{
	char line[256], k;
	unsigned long long a, b, c, d;
	FILE *f = fopen(path, "r");
	struct op *o;

	nr_ops = 0;
	if (!f)
		return errno == ENOENT ? 0 : -1;
	while (fgets(line, sizeof(line), f)) {
		if (nr_ops >= MAX_OPS)
			return hist_bad(f, "too long", line);
		o = &ops[nr_ops];
		memset(o, 0, sizeof(*o));
		if (sscanf(line, "W %llu %llu %llu %llu", &a, &b, &c, &d) == 4) {
			o->kind = 'W';
			o->fua = d;
		} else if (sscanf(line, "Z %llu %llu %llu", &a, &b, &c) == 3) {
			o->kind = 'Z';
		} else if (sscanf(line, "C %llu %llu", &a, &b) == 2) {
			o->kind = 'C';
			o->ref = b;
		} else if (sscanf(line, "S %llu", &a) == 1) {
			o->kind = 'S';
		} else if (sscanf(line, "M %llu %c %llu", &a, &k, &b) == 3) {
			o->kind = 'M';
			o->mkind = k;
			o->ref = b;
		} else {
			return hist_bad(f, "bad line", line);
		}
		o->idx = a;
		if (o->kind == 'W' || o->kind == 'Z') {
			o->blk = b;
			o->nblk = c;
		}
		if (a != nr_ops + 1)
			return hist_bad(f, "out of order", line);
		if (o->kind == 'C') {
			if (!b || b > nr_ops || (ops[b - 1].kind != 'W' &&
						 ops[b - 1].kind != 'Z'))
				return hist_bad(f, "completion of no op", line);
			ops[b - 1].done = a;
		}
		nr_ops++;
	}
	fclose(f);
	return 0;
}

static FILE *hist_out;
static pthread_mutex_t hist_lock = PTHREAD_MUTEX_INITIALIZER;
static int ctl_fd = -1;
static const char *lw_name;

/* `dmsetup message LW 0 mark cIDX`, without a process per mark */
static int lw_mark(uint64_t idx)
{
	union {
		struct dm_ioctl io;
		char b[sizeof(struct dm_ioctl) + sizeof(struct dm_target_msg) + 64];
	} u;
	struct dm_target_msg *tm = (void *)(u.b + sizeof(u.io));

	memset(&u, 0, sizeof(u));
	u.io.version[0] = DM_VERSION_MAJOR;
	u.io.data_size = sizeof(u);
	u.io.data_start = sizeof(u.io);
	snprintf(u.io.name, sizeof(u.io.name), "%s", lw_name);
	snprintf(tm->message, 32, "mark c%" PRIu64, idx);
	if (ioctl(ctl_fd, DM_TARGET_MSG, &u)) {
		fprintf(stderr, "crash_io: mark c%" PRIu64 " in %s: %s\n", idx,
			lw_name, strerror(errno));
		return -1;
	}
	return 0;
}

static int hist_put(const struct op *o)
{
	switch (o->kind) {
	case 'W':
		fprintf(hist_out, "W %" PRIu64 " %" PRIu64 " %" PRIu64 " %d\n",
			o->idx, o->blk, o->nblk, o->fua);
		break;
	case 'Z':
		fprintf(hist_out, "Z %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
			o->idx, o->blk, o->nblk);
		break;
	case 'C':
		fprintf(hist_out, "C %" PRIu64 " %" PRIu64 "\n", o->idx, o->ref);
		break;
	case 'S':
		fprintf(hist_out, "S %" PRIu64 "\n", o->idx);
		break;
	default:
		fprintf(hist_out, "M %" PRIu64 " %c %" PRIu64 "\n", o->idx,
			o->mkind, o->ref);
	}
	return fflush(hist_out) ? -1 : 0;
}

/*
 * Append one record (a copy of @tmpl) and return its index, 0 on error.
 * A mark goes into the log first, under the same lock, so that HIST
 * names only logged marks and its order is the log's order.
 */
static uint64_t hist_append(const struct op *tmpl)
{
	struct op *o;
	uint64_t idx = 0;

	pthread_mutex_lock(&hist_lock);
	if (nr_ops >= MAX_OPS) {
		fprintf(stderr, "crash_io: history too long\n");
		goto unlock;
	}
	o = &ops[nr_ops];
	*o = *tmpl;
	o->idx = nr_ops + 1;
	if (o->kind == 'M' && lw_name && lw_mark(o->idx))
		goto unlock;
	if (hist_put(o))
		goto unlock;
	nr_ops++;
	idx = o->idx;
unlock:
	pthread_mutex_unlock(&hist_lock);
	return idx;
}

/* ---- work ---- */

struct work {
	int fd, fua_fd;
	uint64_t nblocks, cl_blocks, burst, nops, fua_pct;
	/* recent writes of every thread, under hist_lock */
	uint64_t recent[NRECENT][2];
	unsigned int nrecent;
	int failed;
};

struct worker {
	struct work *w;
	pthread_t thread;
	uint64_t seed;
	unsigned char *buf;
	int rc;
};

static uint64_t op_done(uint64_t ref)
{
	struct op c = { .kind = 'C', .ref = ref };

	return hist_append(&c);
}

static int add_mark(char kind, uint64_t ref)
{
	struct op m = { .kind = 'M', .mkind = kind, .ref = ref };

	return hist_append(&m) ? 0 : -1;
}

static void recent_add(struct work *w, uint64_t blk, uint64_t n)
{
	pthread_mutex_lock(&hist_lock);
	w->recent[w->nrecent % NRECENT][0] = blk;
	w->recent[w->nrecent % NRECENT][1] = n;
	w->nrecent++;
	pthread_mutex_unlock(&hist_lock);
}

/* a recent write of any thread, or 0 if there is none yet */
static int recent_pick(struct work *w, uint64_t *blk, uint64_t *n)
{
	unsigned int c;
	int ok = 0;

	pthread_mutex_lock(&hist_lock);
	if (w->nrecent) {
		c = rnd_below(w->nrecent < NRECENT ? w->nrecent : NRECENT);
		*blk = w->recent[c][0];
		*n = w->recent[c][1];
		ok = 1;
	}
	pthread_mutex_unlock(&hist_lock);
	return ok;
}

static int do_write(struct worker *t, uint64_t blk, uint64_t n, int fua)
{
	struct work *w = t->w;
	struct op o = { .kind = 'W', .blk = blk, .nblk = n, .fua = fua };
	uint64_t i, idx;
	uint32_t s;
	ssize_t r;

	idx = hist_append(&o);
	if (!idx)
		return -1;
	for (i = 0; i < n; i++)
		for (s = 0; s < SPB; s++)
			fill_sector(t->buf + i * BLK + s * SECT, blk + i, idx, s);
	r = pwrite(fua ? w->fua_fd : w->fd, t->buf, n * BLK, blk * BLK);
	if (r != (ssize_t)(n * BLK)) {
		fprintf(stderr, "crash_io: write %" PRIu64 "+%" PRIu64 ": %s\n",
			blk, n, r < 0 ? strerror(errno) : "short");
		return -1;
	}
	if (!op_done(idx))
		return -1;
	recent_add(w, blk, n);
	return fua ? add_mark('U', idx) : 0;
}

static int do_zero(struct worker *t, uint64_t blk, uint64_t n, int discard)
{
	struct op o = { .kind = 'Z', .blk = blk, .nblk = n };
	uint64_t range[2] = { blk * BLK, n * BLK }, idx;

	idx = hist_append(&o);
	if (!idx)
		return -1;
	if (ioctl(t->w->fd, discard ? BLKDISCARD : BLKZEROOUT, range)) {
		fprintf(stderr, "crash_io: %s %" PRIu64 "+%" PRIu64 ": %s\n",
			discard ? "discard" : "zeroout", blk, n, strerror(errno));
		return -1;
	}
	return op_done(idx) ? 0 : -1;
}

static int do_flush(struct work *w)
{
	struct op o = { .kind = 'S' };
	uint64_t idx = hist_append(&o);

	if (!idx)
		return -1;
	if (fsync(w->fd)) {
		fprintf(stderr, "crash_io: fsync: %s\n", strerror(errno));
		return -1;
	}
	return add_mark('F', idx);
}

static uint64_t pick_len(void)
{
	uint64_t r = rnd_below(100);

	if (r < 50)
		return 1 + rnd_below(8);
	if (r < 70)
		return 16;
	if (r < 95)
		return 1 + rnd_below(64);
	return 64 + rnd_below(193);
}

static int one_op(struct worker *t)
{
	struct work *w = t->w;
	uint64_t r = rnd_below(100), n, blk, c;

	if (r >= 45 && r < 60 && recent_pick(w, &blk, &n))
		/* overwrite a recent write (perhaps another thread's) */
		return do_write(t, blk, n, rnd_below(100) < w->fua_pct);
	if (r < 60) {
		n = pick_len();
		blk = rnd_below(w->nblocks - n + 1);
		if (rnd_below(3) == 0)	/* cluster aligned */
			blk -= blk % w->cl_blocks;
		return do_write(t, blk, n, rnd_below(100) < w->fua_pct);
	}
	if (r < 70) {
		n = 1 + rnd_below(32);
		blk = rnd_below(w->nblocks - n + 1);
		return do_zero(t, blk, n, 0);
	}
	if (r < 78) {			/* whole clusters only */
		c = w->nblocks / w->cl_blocks;
		n = 1 + rnd_below(4);
		blk = rnd_below(c - n + 1) * w->cl_blocks;
		return do_zero(t, blk, n * w->cl_blocks, 1);
	}
	if (r < 88)
		return do_flush(w);
	/* a burst of small scattered writes */
	for (c = 0; c < w->burst; c++) {
		blk = rnd_below(w->nblocks);
		if (do_write(t, blk, 1, 0))
			return -1;
	}
	return 0;
}

static void *worker_run(void *arg)
{
	struct worker *t = arg;
	uint64_t i;

	rng_state = t->seed;
	t->rc = 0;
	for (i = 0; i < t->w->nops && !__atomic_load_n(&t->w->failed, __ATOMIC_RELAXED); i++) {
		if (one_op(t)) {
			t->rc = -1;
			__atomic_store_n(&t->w->failed, 1, __ATOMIC_RELAXED);
			break;
		}
	}
	return NULL;
}

static int open_hist_append(const char *path)
{
	if (hist_load(path))
		return -1;
	hist_out = fopen(path, "a");
	if (!hist_out) {
		fprintf(stderr, "crash_io: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int work_open(struct work *w, const char *dev, uint64_t cluster)
{
	uint64_t size;

	w->cl_blocks = cluster >= BLK ? cluster / BLK : 1;
	w->fd = open(dev, O_RDWR | O_DIRECT);
	w->fua_fd = open(dev, O_RDWR | O_DIRECT | O_DSYNC);
	ctl_fd = open("/dev/mapper/control", O_RDWR);
	if (w->fd < 0 || w->fua_fd < 0 || ctl_fd < 0 ||
	    ioctl(w->fd, BLKGETSIZE64, &size)) {
		fprintf(stderr, "crash_io: %s: %s\n", dev, strerror(errno));
		return -1;
	}
	w->nblocks = size / BLK;
	if (w->nblocks < 4 * 256 || w->nblocks < 8 * w->cl_blocks) {
		fprintf(stderr, "crash_io: device too small\n");
		return -1;
	}
	return 0;
}

static int cmd_work(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "lw", required_argument, NULL, 'l' },
		{ "seed", required_argument, NULL, 's' },
		{ "ops", required_argument, NULL, 'o' },
		{ "cluster", required_argument, NULL, 'c' },
		{ "threads", required_argument, NULL, 't' },
		{ "burst", required_argument, NULL, 'b' },
		{ "fua", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 }
	};
	static struct worker tw[MAX_THREADS];
	uint64_t nops = 200, cluster = 65536, seed = 1, nthreads = 1, i;
	struct work w = { .burst = 4, .fua_pct = 10 };
	int c, rc = 1;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'l': lw_name = optarg; break;
		case 's': seed = strtoull(optarg, NULL, 0); break;
		case 'o': nops = strtoull(optarg, NULL, 0); break;
		case 'c': cluster = strtoull(optarg, NULL, 0); break;
		case 't': nthreads = strtoull(optarg, NULL, 0); break;
		case 'b': w.burst = strtoull(optarg, NULL, 0); break;
		case 'f': w.fua_pct = strtoull(optarg, NULL, 0); break;
		default: usage(stderr); return 2;
		}
	}
	if (argc - optind != 2 || !lw_name || cluster < SECT ||
	    (cluster & (cluster - 1)) || !nthreads || nthreads > MAX_THREADS) {
		usage(stderr);
		return 2;
	}
	if (work_open(&w, argv[optind], cluster) ||
	    open_hist_append(argv[optind + 1]))
		return 1;
	/* the ops are shared out; one thread runs the seed's own sequence */
	w.nops = (nops + nthreads - 1) / nthreads;
	for (i = 0; i < nthreads; i++) {
		tw[i].w = &w;
		tw[i].seed = nthreads == 1 ? seed : seed * 1000003 + i;
		if (posix_memalign((void **)&tw[i].buf, BLK, 256 * BLK))
			goto out;
	}
	if (nthreads == 1) {
		worker_run(&tw[0]);
	} else {
		for (i = 0; i < nthreads; i++)
			if (pthread_create(&tw[i].thread, NULL, worker_run, &tw[i])) {
				w.failed = 1;
				nthreads = i;
				break;
			}
		for (i = 0; i < nthreads; i++)
			pthread_join(tw[i].thread, NULL);
	}
	for (i = 0; i < nthreads; i++)
		if (tw[i].rc || w.failed)
			goto out;
	if (do_flush(&w))
		goto out;
	rc = 0;
out:
	fclose(hist_out);
	close(w.fd);
	close(w.fua_fd);
	return rc;
}

static int cmd_mark(int argc, char **argv)
{
	struct op m = { .kind = 'M', .mkind = 'F' };
	uint64_t idx;

	if (argc != 2) {
		usage(stderr);
		return 2;
	}
	if (open_hist_append(argv[1]))
		return 1;
	idx = hist_append(&m);
	if (!idx)
		return 1;
	printf("c%" PRIu64 "\n", idx);
	return fclose(hist_out) ? 1 : 0;
}

/* ---- verify ---- */

struct verdict {
	uint64_t sectors, lost, newest, older, inflight;
	unsigned int shown;
};

/* what the history says at the cut (see the comment at the top) */
struct cut {
	unsigned char *logged;	/* [idx]: mark idx is in the log */
	unsigned char *durable;	/* [idx]: op idx is durable */
	uint64_t ub;		/* ops from here on cannot have landed */
	uint64_t *first;	/* per block: its slice of @cover */
	uint32_t *cover;	/* op indexes (W, Z below ub), by block */
};

static uint64_t op_id(const struct op *o)
{
	return o->kind == 'W' ? o->idx : 0;
}

/* Which ops are durable, and the bound ub, from cut->logged. */
static void cut_resolve(struct cut *cut)
{
	uint64_t fmax = 0, i, s;
	const struct op *o;

	cut->ub = nr_ops + 1;
	for (i = 0; i < nr_ops; i++) {
		o = &ops[i];
		if (o->kind != 'M')
			continue;
		if (!cut->logged[o->idx]) {
			if (o->idx < cut->ub)
				cut->ub = o->idx;
			continue;
		}
		if (o->mkind == 'F') {
			s = o->ref ? o->ref : o->idx;
			if (s > fmax)
				fmax = s;
		} else if (o->ref && o->ref <= nr_ops) {
			cut->durable[o->ref] = 1;
		}
	}
	for (i = 0; i < nr_ops; i++) {
		o = &ops[i];
		if ((o->kind == 'W' || o->kind == 'Z') && o->done && o->done < fmax)
			cut->durable[o->idx] = 1;
	}
}

/* For each block, the ops below ub that cover it (CSR arrays). */
static int cut_index(struct cut *cut, uint64_t nblocks)
{
	uint64_t i, b, end, total = 0, *pos;
	const struct op *o;

	cut->first = calloc(nblocks + 1, sizeof(*cut->first));
	pos = calloc(nblocks + 1, sizeof(*pos));
	if (!cut->first || !pos)
		return -1;
	for (i = 0; i + 1 < cut->ub && i < nr_ops; i++) {
		o = &ops[i];
		if (o->kind != 'W' && o->kind != 'Z')
			continue;
		end = o->blk + o->nblk < nblocks ? o->blk + o->nblk : nblocks;
		for (b = o->blk; b < end; b++)
			cut->first[b + 1]++;
	}
	for (b = 0; b < nblocks; b++)
		cut->first[b + 1] += cut->first[b];
	total = cut->first[nblocks];
	cut->cover = malloc((total + 1) * sizeof(*cut->cover));
	if (!cut->cover)
		return -1;
	memcpy(pos, cut->first, (nblocks + 1) * sizeof(*pos));
	for (i = 0; i + 1 < cut->ub && i < nr_ops; i++) {
		o = &ops[i];
		if (o->kind != 'W' && o->kind != 'Z')
			continue;
		end = o->blk + o->nblk < nblocks ? o->blk + o->nblk : nblocks;
		for (b = o->blk; b < end; b++)
			cut->cover[pos[b]++] = o->idx;
	}
	free(pos);
	return 0;
}

/*
 * The legal versions (write ids, 0 for zeros) of @blk into @ids; @newest
 * gets the one issued last.
 */
static size_t legal_ids(const struct cut *cut, uint64_t blk, uint64_t *ids,
			size_t max, uint64_t *newest)
{
	uint64_t dw = 0, k, a, b = cut->first[blk + 1];
	const struct op *o;
	size_t n = 0;

	for (k = cut->first[blk]; k < b; k++)
		if (cut->durable[cut->cover[k]] && cut->cover[k] > dw)
			dw = cut->cover[k];
	if (!dw)
		ids[n++] = 0;
	*newest = 0;
	for (k = cut->first[blk]; k < b && n < max; k++) {
		a = cut->cover[k];
		o = &ops[a - 1];
		/* overwritten by a durable op issued after it completed? */
		if (o->done && o->done < dw)
			continue;
		ids[n++] = op_id(o);
		*newest = op_id(o);
	}
	return n;
}

static void check_block(const struct cut *cut, const unsigned char *p,
			uint64_t blk, struct verdict *v)
{
	uint64_t ids[4096], newest;
	size_t n = legal_ids(cut, blk, ids, 4096, &newest), k;
	uint32_t s;
	int64_t id;
	int ok;

	for (s = 0; s < SPB; s++) {
		id = sector_id(p + s * SECT, blk, s);
		ok = 0;
		for (k = 0; id >= 0 && k < n; k++)
			if ((uint64_t)id == ids[k])
				ok = 1;
		v->sectors++;
		if (!ok) {
			v->lost++;
			if (v->shown++ < 10)
				fprintf(stderr,
					"crash_io: block %" PRIu64 " sector %u holds %s%" PRId64
					", legal: %zu version(s), first %" PRIu64 " newest %" PRIu64 "\n",
					blk, s, id < 0 ? "garbage " : "write ",
					id < 0 ? 0 : id, n, ids[0], newest);
		} else if ((uint64_t)id == newest) {
			v->newest++;
		} else {
			v->older++;
		}
	}
}

/* A block device, or a regular file (to try the checker on the host). */
static int dev_size(int fd, uint64_t *size)
{
	struct stat st;

	if (fstat(fd, &st))
		return -1;
	if (S_ISREG(st.st_mode)) {
		*size = st.st_size;
		return 0;
	}
	return ioctl(fd, BLKGETSIZE64, size);
}

/* The marks in the log: entries before @point of the `lwlog list` output. */
static int logged_from_list(const char *path, uint64_t point, unsigned char *logged)
{
	FILE *f = fopen(path, "r");
	char line[512], mark[64];
	unsigned long long a, s, l, m;
	char flags[8];

	if (!f) {
		fprintf(stderr, "crash_io: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llu %7s %llu %llu %63s", &a, flags, &s, &l,
			   mark) != 5 || a >= point)
			continue;
		if (sscanf(mark, "c%llu", &m) == 1 && m && m <= nr_ops &&
		    ops[m - 1].kind == 'M')
			logged[m] = 1;
	}
	fclose(f);
	return 0;
}

static int logged_upto(const char *last, unsigned char *logged)
{
	uint64_t i, mp = 0;
	char name[32];

	if (!strcmp(last, "none"))
		return 0;
	for (i = 0; i < nr_ops; i++) {
		snprintf(name, sizeof(name), "c%" PRIu64, ops[i].idx);
		if (ops[i].kind == 'M' && !strcmp(name, last))
			mp = i + 1;
	}
	if (!mp) {
		fprintf(stderr, "crash_io: mark %s not in the history\n", last);
		return -1;
	}
	for (i = 0; i < mp; i++)
		if (ops[i].kind == 'M')
			logged[ops[i].idx] = 1;
	return 0;
}

static int cmd_verify(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "last-mark", required_argument, NULL, 'm' },
		{ "list", required_argument, NULL, 'l' },
		{ "point", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 }
	};
	const char *last = NULL, *list = NULL;
	uint64_t size, blk, i, nb, point = 0, nblocks;
	struct verdict v = { 0 };
	struct cut cut = { 0 };
	unsigned char *buf;
	const size_t chunk = 256;
	int c, fd, have_point = 0;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'm': last = optarg; break;
		case 'l': list = optarg; break;
		case 'p': point = strtoull(optarg, NULL, 0); have_point = 1; break;
		default: usage(stderr); return 2;
		}
	}
	if (argc - optind != 2 || !last == !list || !list != !have_point) {
		usage(stderr);
		return 2;
	}
	if (hist_load(argv[optind + 1]))
		return 1;
	cut.logged = calloc(nr_ops + 2, 1);
	cut.durable = calloc(nr_ops + 2, 1);
	if (!cut.logged || !cut.durable)
		return 1;
	if (last ? logged_upto(last, cut.logged) :
		   logged_from_list(list, point, cut.logged))
		return 1;
	cut_resolve(&cut);
	fd = open(argv[optind], O_RDONLY | O_DIRECT);
	if (fd < 0 || dev_size(fd, &size)) {
		fprintf(stderr, "crash_io: %s: %s\n", argv[optind], strerror(errno));
		return 1;
	}
	nblocks = size / BLK;
	if (cut_index(&cut, nblocks) ||
	    posix_memalign((void **)&buf, BLK, chunk * BLK))
		return 1;
	for (blk = 0; blk < nblocks; blk += nb) {
		nb = nblocks - blk < chunk ? nblocks - blk : chunk;
		if (pread(fd, buf, nb * BLK, blk * BLK) != (ssize_t)(nb * BLK)) {
			fprintf(stderr, "crash_io: read at block %" PRIu64 ": %s\n",
				blk, strerror(errno));
			return 1;
		}
		for (i = 0; i < nb; i++)
			check_block(&cut, buf + i * BLK, blk + i, &v);
	}
	printf("sectors %" PRIu64 " lost %" PRIu64 " bytes_lost %" PRIu64
	       " newest %" PRIu64 " older %" PRIu64 "\n", v.sectors, v.lost,
	       v.lost * SECT, v.newest, v.older);
	return v.lost ? 1 : 0;
}

/* ---- points ---- */

struct entry {
	uint64_t n;
	char flags[8];
	char mark[64];
};

static int load_list(const char *path, struct entry **out, size_t *nr)
{
	FILE *f = fopen(path, "r");
	char line[512];
	struct entry *e = NULL, *t;
	size_t n = 0, cap = 0;
	unsigned long long a, s, l;

	if (!f) {
		fprintf(stderr, "crash_io: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		if (n == cap) {
			cap = cap ? 2 * cap : 4096;
			t = realloc(e, cap * sizeof(*e));
			if (!t)
				goto fail;
			e = t;
		}
		e[n].mark[0] = 0;
		if (sscanf(line, "%llu %7s %llu %llu %63s", &a, e[n].flags, &s,
			   &l, e[n].mark) < 4 || a != n) {
			fprintf(stderr, "crash_io: bad list line: %s", line);
			goto fail;
		}
		e[n].n = a;
		n++;
	}
	fclose(f);
	*out = e;
	*nr = n;
	return 0;
fail:
	fclose(f);
	free(e);
	return -1;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The mark that opened window @w (1-based, see cmd_points). */
static const char *window_name(const struct entry *e, size_t nent, int w)
{
	size_t i;
	int n = 0;

	for (i = 0; i < nent; i++)
		if (!strncmp(e[i].mark, "op-", 3) && ++n == w)
			return e[i].mark;
	return "op-?";
}

/*
 * Every flush/FUA point inside an "op-" window, and @nrand random points
 * inside each window, into @out; returns how many.
 */
static size_t window_points(const struct entry *e, size_t nent,
			    const unsigned char *win, uint64_t nrand, uint64_t *out)
{
	size_t n = 0, p, first, last;
	uint64_t j;

	for (p = 1; p <= nent; p++) {
		if (!win[p])
			continue;
		if (strchr(e[p - 1].flags, 'F') || strchr(e[p - 1].flags, 'U'))
			out[n++] = p;
		if (p < nent && win[p + 1] == win[p])
			continue;
		/* p is the window's last point: pick the random ones */
		for (first = p; first > 1 && win[first - 1] == win[p]; first--)
			;
		last = p;
		for (j = 0; j < nrand && last > first; j++)
			out[n++] = first + rnd_below(last - first + 1);
	}
	return n;
}

static const char *point_kind(const struct entry *e, size_t nent,
			      const unsigned char *win, uint64_t p)
{
	if (p <= nent && win[p])
		return window_name(e, nent, win[p]);
	if (p - 1 < nent && (strchr(e[p - 1].flags, 'F') ||
			     strchr(e[p - 1].flags, 'U')))
		return "flush";
	return "random";
}

static int cmd_points(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "start", required_argument, NULL, 'a' },
		{ "seed", required_argument, NULL, 's' },
		{ "max", required_argument, NULL, 'm' },
		{ "random", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 }
	};
	uint64_t max = 0, nrand = 8, start = UINT64_MAX, *pts, *fl, p, i, j;
	size_t nent, nfl = 0, npts = 0;
	const char *smark = NULL, *last;
	struct entry *e;
	unsigned char *win;
	char *skip;
	int c, in, nwin;

	rng_state = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'a': smark = optarg; break;
		case 's': rng_state = strtoull(optarg, NULL, 0); break;
		case 'm': max = strtoull(optarg, NULL, 0); break;
		case 'r': nrand = strtoull(optarg, NULL, 0); break;
		default: usage(stderr); return 2;
		}
	}
	if (argc - optind != 2 || !smark) {
		usage(stderr);
		return 2;
	}
	if (load_list(argv[optind], &e, &nent) || hist_load(argv[optind + 1]))
		return 1;
	for (i = 0; i < nent; i++)
		if (!strcmp(e[i].mark, smark))
			start = i;
	if (start == UINT64_MAX) {
		fprintf(stderr, "crash_io: start mark %s not in the log\n", smark);
		return 1;
	}
	fl = calloc(nent + 1, sizeof(*fl));
	/* room for: the flush points, K random, the windows, the end */
	pts = calloc(2 * nent + nrand + 2, sizeof(*pts));
	if (!fl || !pts)
		return 1;
	/*
	 * skip[p]: replaying to p ends inside a window marked "qemu";
	 * win[p]: inside a window opened by a mark "op-..." (value: 1 + the
	 * window's index, so that points can name it)
	 */
	skip = calloc(nent + 2, 1);
	win = calloc(nent + 2, 1);
	if (!skip || !win)
		return 1;
	for (i = 0, in = 0, nwin = 0; i < nent; i++) {
		if (e[i].mark[0]) {
			in = !strcmp(e[i].mark, "qemu") ? -1 :
			     !strncmp(e[i].mark, "op-", 3) ? ++nwin : 0;
			if (in > 250)	/* more windows share the last id */
				in = 250;
		}
		skip[i + 1] = in < 0;
		win[i + 1] = in > 0 ? in : 0;
	}
	for (i = start + 1; i < nent; i++)
		if ((strchr(e[i].flags, 'F') || strchr(e[i].flags, 'U')) &&
		    !skip[i + 1] && !win[i + 1])
			fl[nfl++] = i + 1;
	if (max && nfl + nrand + 1 > max) {
		/* an evenly spread subset, with a seeded offset */
		uint64_t want = max > nrand + 1 ? max - nrand - 1 : 1;
		uint64_t off = rnd_below(nfl / want + 1);

		for (j = 0; j < want; j++)
			pts[npts++] = fl[(off + j * nfl / want) % nfl];
	} else {
		for (j = 0; j < nfl; j++)
			pts[npts++] = fl[j];
	}
	for (j = 0; j < nrand && nent > start + 2; j++) {
		p = start + 2 + rnd_below(nent - start - 1);
		if (!skip[p])
			pts[npts++] = p;
	}
	npts += window_points(e, nent, win, nrand, pts + npts);
	pts[npts++] = nent;
	qsort(pts, npts, sizeof(*pts), cmp_u64);
	for (i = 0, p = 0; i < npts; i++) {
		if (i && pts[i] == pts[i - 1])
			continue;
		last = "none";
		for (j = 0; j < pts[i]; j++)
			if (e[j].mark[0] == 'c')
				last = e[j].mark;
		printf("%" PRIu64 " %s %s\n", pts[i], last,
		       point_kind(e, nent, win, pts[i]));
		p++;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		}
	}
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	ops = calloc(MAX_OPS, sizeof(*ops));
	if (!ops)
		return 1;
	if (!strcmp(argv[1], "work"))
		return cmd_work(argc - 1, argv + 1);
	if (!strcmp(argv[1], "mark"))
		return cmd_mark(argc - 1, argv + 1);
	if (!strcmp(argv[1], "points"))
		return cmd_points(argc - 1, argv + 1);
	if (!strcmp(argv[1], "verify"))
		return cmd_verify(argc - 1, argv + 1);
	fprintf(stderr, "crash_io: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
