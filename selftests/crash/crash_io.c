// SPDX-License-Identifier: GPL-2.0
/*
 * crash_io: the workload, the reference and the checker of the power-cut
 * test.
 *
 *   crash_io work DEV HIST --lw NAME [--seed S] [--ops N] [--cluster B]
 *   crash_io mark HIST            a flush completed outside (detach):
 *                                 append a flush mark, print its name
 *   crash_io points LIST HIST --start MARK [--seed S] [--max N] [--random K]
 *   crash_io verify DEV HIST --last-mark NAME|none
 *
 * work: a deterministic (from the seed) mix of 4 KiB-aligned direct
 * writes of many sizes, overwrites, FUA writes (O_DSYNC), write-zeroes
 * (BLKZEROOUT) and whole-cluster discards (BLKDISCARD), with an fsync
 * now and then. Every operation is appended to HIST before it is issued;
 * after each completed fsync (or FUA write) a mark named after it is put
 * into the dm-log-writes log (`dmsetup message NAME 0 mark cN`) and into
 * HIST. Every 512-byte sector written holds (magic, block, write id,
 * sector) and a fill derived from them, so a sector read back names the
 * write it came from, or is zeros, or is garbage.
 *
 * verify: given the last mark that made it into the log before the cut,
 * each block may hold the version it had at the last flush mark (or a
 * later FUA write of it, if marked) or any version written after that
 * and before the next mark; anything else (garbage, an older version, a
 * lost zeroing) is lost data. Prints a summary line and exits 1 on loss.
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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#define BLK		4096U
#define SECT		512U
#define SPB		(BLK / SECT)
#define MAGIC		0x4352415348494f31ULL	/* "CRASHIO1" */
#define MAX_OPS		100000

enum op_kind { OP_WRITE, OP_ZERO, OP_MARK };

struct op {
	enum op_kind kind;
	uint64_t idx;		/* position in the history, from 1 */
	uint64_t blk, nblk;	/* W, Z */
	int fua;		/* W */
	char mkind;		/* M: 'F' flush, 'U' one FUA write */
	uint64_t ref;		/* M 'U': index of the write */
};

static struct op *ops;
static size_t nr_ops;

static uint64_t rng_state;

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
"       crash_io mark HIST\n"
"       crash_io points LIST HIST --start MARK [--seed S] [--max N] [--random K]\n"
"       crash_io verify DEV HIST --last-mark NAME|none\n"
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
		for (i = 0; i < SECT; i++)
			if (p[i])
				return -1;
		return 0;
	}
	if (w[1] != blk || w[3] != s || !w[2])
		return -1;
	fill_sector(ref, blk, w[2], s);
	return memcmp(ref, p, SECT) ? -1 : (int64_t)w[2];
}

/* ---- history ---- */

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
		if (nr_ops >= MAX_OPS) {
			fprintf(stderr, "crash_io: history too long\n");
			fclose(f);
			return -1;
		}
		o = &ops[nr_ops];
		memset(o, 0, sizeof(*o));
		if (sscanf(line, "W %llu %llu %llu %llu", &a, &b, &c, &d) == 4) {
			o->kind = OP_WRITE;
			o->fua = d;
		} else if (sscanf(line, "Z %llu %llu %llu", &a, &b, &c) == 3) {
			o->kind = OP_ZERO;
		} else if (sscanf(line, "M %llu %c %llu", &a, &k, &b) == 3) {
			o->kind = OP_MARK;
			o->mkind = k;
			o->ref = b;
		} else {
			fprintf(stderr, "crash_io: bad history line: %s", line);
			fclose(f);
			return -1;
		}
		o->idx = a;
		if (o->kind != OP_MARK) {
			o->blk = b;
			o->nblk = c;
		}
		if (a != nr_ops + 1) {
			fprintf(stderr, "crash_io: history out of order at %llu\n", a);
			fclose(f);
			return -1;
		}
		nr_ops++;
	}
	fclose(f);
	return 0;
}

static FILE *hist_out;

static struct op *hist_add(enum op_kind kind)
{
	struct op *o = &ops[nr_ops];

	memset(o, 0, sizeof(*o));
	o->kind = kind;
	o->idx = ++nr_ops;
	return o;
}

/* Write the op to HIST and make it durable before it is issued. */
static int hist_put(const struct op *o)
{
	if (o->kind == OP_WRITE)
		fprintf(hist_out, "W %" PRIu64 " %" PRIu64 " %" PRIu64 " %d\n",
			o->idx, o->blk, o->nblk, o->fua);
	else if (o->kind == OP_ZERO)
		fprintf(hist_out, "Z %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
			o->idx, o->blk, o->nblk);
	else
		fprintf(hist_out, "M %" PRIu64 " %c %" PRIu64 "\n", o->idx,
			o->mkind, o->ref);
	return fflush(hist_out) ? -1 : 0;
}

/* ---- work ---- */

struct work {
	int fd, fua_fd;
	const char *lw;
	uint64_t nblocks, cl_blocks;
	unsigned char *buf;
	uint64_t recent[16][2];
	unsigned int nrecent;
};

static int lw_mark(struct work *w, const struct op *m)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "dmsetup message %s 0 mark c%" PRIu64,
		 w->lw, m->idx);
	if (system(cmd)) {
		fprintf(stderr, "crash_io: '%s' failed\n", cmd);
		return -1;
	}
	return 0;
}

static int add_mark(struct work *w, char kind, uint64_t ref)
{
	struct op *m = hist_add(OP_MARK);

	m->mkind = kind;
	m->ref = ref;
	/* the mark goes to the log first: HIST may only name logged marks */
	if (lw_mark(w, m))
		return -1;
	return hist_put(m);
}

static int do_write(struct work *w, uint64_t blk, uint64_t n, int fua)
{
	struct op *o = hist_add(OP_WRITE);
	uint64_t i;
	uint32_t s;
	ssize_t r;

	o->blk = blk;
	o->nblk = n;
	o->fua = fua;
	if (hist_put(o))
		return -1;
	for (i = 0; i < n; i++)
		for (s = 0; s < SPB; s++)
			fill_sector(w->buf + i * BLK + s * SECT, blk + i, o->idx, s);
	r = pwrite(fua ? w->fua_fd : w->fd, w->buf, n * BLK, blk * BLK);
	if (r != (ssize_t)(n * BLK)) {
		fprintf(stderr, "crash_io: write %" PRIu64 "+%" PRIu64 ": %s\n",
			blk, n, r < 0 ? strerror(errno) : "short");
		return -1;
	}
	w->recent[w->nrecent % 16][0] = blk;
	w->recent[w->nrecent % 16][1] = n;
	w->nrecent++;
	return fua ? add_mark(w, 'U', o->idx) : 0;
}

static int do_zero(struct work *w, uint64_t blk, uint64_t n, int discard)
{
	struct op *o = hist_add(OP_ZERO);
	uint64_t range[2] = { blk * BLK, n * BLK };

	o->blk = blk;
	o->nblk = n;
	if (hist_put(o))
		return -1;
	if (ioctl(w->fd, discard ? BLKDISCARD : BLKZEROOUT, range)) {
		fprintf(stderr, "crash_io: %s %" PRIu64 "+%" PRIu64 ": %s\n",
			discard ? "discard" : "zeroout", blk, n, strerror(errno));
		return -1;
	}
	return 0;
}

static int do_flush(struct work *w)
{
	if (fsync(w->fd)) {
		fprintf(stderr, "crash_io: fsync: %s\n", strerror(errno));
		return -1;
	}
	return add_mark(w, 'F', 0);
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

static int one_op(struct work *w)
{
	uint64_t r = rnd_below(100), n, blk, c;

	if (r < 45 || (r < 60 && !w->nrecent)) {
		n = pick_len();
		blk = rnd_below(w->nblocks - n + 1);
		if (rnd_below(3) == 0)	/* cluster aligned */
			blk -= blk % w->cl_blocks;
		return do_write(w, blk, n, rnd_below(10) == 0);
	}
	if (r < 60) {			/* overwrite a recent write */
		c = rnd_below(w->nrecent < 16 ? w->nrecent : 16);
		return do_write(w, w->recent[c][0], w->recent[c][1],
				rnd_below(10) == 0);
	}
	if (r < 70) {
		n = 1 + rnd_below(32);
		blk = rnd_below(w->nblocks - n + 1);
		return do_zero(w, blk, n, 0);
	}
	if (r < 78) {			/* whole clusters only */
		c = w->nblocks / w->cl_blocks;
		n = 1 + rnd_below(4);
		blk = rnd_below(c - n + 1) * w->cl_blocks;
		return do_zero(w, blk, n * w->cl_blocks, 1);
	}
	if (r < 88)
		return do_flush(w);
	/* a burst of small scattered writes */
	for (c = 0; c < 4; c++) {
		blk = rnd_below(w->nblocks);
		if (do_write(w, blk, 1, 0))
			return -1;
	}
	return 0;
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

static int cmd_work(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "lw", required_argument, NULL, 'l' },
		{ "seed", required_argument, NULL, 's' },
		{ "ops", required_argument, NULL, 'o' },
		{ "cluster", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 }
	};
	uint64_t nops = 200, cluster = 65536, size, i;
	struct work w = { 0 };
	int c, rc = 1;

	rng_state = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'l': w.lw = optarg; break;
		case 's': rng_state = strtoull(optarg, NULL, 0); break;
		case 'o': nops = strtoull(optarg, NULL, 0); break;
		case 'c': cluster = strtoull(optarg, NULL, 0); break;
		default: usage(stderr); return 2;
		}
	}
	if (argc - optind != 2 || !w.lw || cluster < BLK || cluster % BLK) {
		usage(stderr);
		return 2;
	}
	w.cl_blocks = cluster / BLK;
	w.fd = open(argv[optind], O_RDWR | O_DIRECT);
	w.fua_fd = open(argv[optind], O_RDWR | O_DIRECT | O_DSYNC);
	if (w.fd < 0 || w.fua_fd < 0 || ioctl(w.fd, BLKGETSIZE64, &size)) {
		fprintf(stderr, "crash_io: %s: %s\n", argv[optind], strerror(errno));
		return 1;
	}
	w.nblocks = size / BLK;
	if (w.nblocks < 4 * 256 || w.nblocks < 8 * w.cl_blocks) {
		fprintf(stderr, "crash_io: device too small\n");
		return 1;
	}
	if (posix_memalign((void **)&w.buf, BLK, 256 * BLK) ||
	    open_hist_append(argv[optind + 1]))
		return 1;
	for (i = 0; i < nops; i++)
		if (one_op(&w))
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
	struct op *m;

	if (argc != 2) {
		usage(stderr);
		return 2;
	}
	if (open_hist_append(argv[1]))
		return 1;
	m = hist_add(OP_MARK);
	m->mkind = 'F';
	if (hist_put(m))
		return 1;
	printf("c%" PRIu64 "\n", m->idx);
	return fclose(hist_out) ? 1 : 0;
}

/* ---- verify ---- */

static int covers(const struct op *o, uint64_t blk)
{
	return o->kind != OP_MARK && blk >= o->blk && blk - o->blk < o->nblk;
}

static uint64_t op_id(const struct op *o)
{
	return o->kind == OP_WRITE ? o->idx : 0;
}

struct verdict {
	uint64_t sectors, lost, newest, older, zero_ok;
	unsigned int shown;
};

/*
 * Legal versions of @blk when the last logged mark is ops[@mp - 1] and
 * the next mark (not logged) is at @ub: see the comment at the top.
 */
static size_t legal_ids(uint64_t blk, uint64_t fl, uint64_t mp, uint64_t ub,
			uint64_t *ids, size_t max, uint64_t *base_id)
{
	uint64_t base_idx = 0, i;
	size_t n = 0;
	const struct op *o;

	*base_id = 0;
	for (i = 0; i + 1 < fl; i++) {
		if (covers(&ops[i], blk)) {
			base_idx = ops[i].idx;
			*base_id = op_id(&ops[i]);
		}
	}
	for (i = fl; i < mp; i++) {
		o = &ops[i];
		if (o->kind == OP_MARK && o->mkind == 'U' && o->ref > base_idx &&
		    covers(&ops[o->ref - 1], blk)) {
			base_idx = o->ref;
			*base_id = o->ref;
		}
	}
	ids[n++] = *base_id;
	for (i = base_idx; i + 1 < ub && n < max; i++)
		if (covers(&ops[i], blk))
			ids[n++] = op_id(&ops[i]);
	return n;
}

static void check_block(const unsigned char *p, uint64_t blk, uint64_t fl,
			uint64_t mp, uint64_t ub, struct verdict *v)
{
	uint64_t ids[512], base;
	size_t n = legal_ids(blk, fl, mp, ub, ids, 512, &base), k;
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
					", expected write %" PRIu64 " or one of %zu later\n",
					blk, s, id < 0 ? "garbage " : "write ",
					id < 0 ? 0 : id, base, n - 1);
		} else if ((uint64_t)id == ids[n - 1]) {
			v->newest++;
		} else {
			v->older++;
		}
	}
}

static int cmd_verify(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "last-mark", required_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 }
	};
	const char *last = NULL;
	uint64_t mp = 0, fl = 0, ub, size, blk, i, nb;
	struct verdict v = { 0 };
	unsigned char *buf;
	char name[32];
	const size_t chunk = 256;
	int c, fd;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'm') {
			usage(stderr);
			return 2;
		}
		last = optarg;
	}
	if (argc - optind != 2 || !last) {
		usage(stderr);
		return 2;
	}
	if (hist_load(argv[optind + 1]))
		return 1;
	/* mp: ops[0 .. mp-1] are before the cut for sure (the last mark) */
	if (strcmp(last, "none")) {
		for (i = 0; i < nr_ops; i++) {
			snprintf(name, sizeof(name), "c%" PRIu64, ops[i].idx);
			if (ops[i].kind == OP_MARK && !strcmp(name, last))
				mp = i + 1;
		}
		if (!mp) {
			fprintf(stderr, "crash_io: mark %s not in the history\n", last);
			return 1;
		}
	}
	for (i = 0; i < mp; i++)
		if (ops[i].kind == OP_MARK && ops[i].mkind == 'F')
			fl = i + 1;
	for (ub = mp + 1; ub <= nr_ops && ops[ub - 1].kind != OP_MARK; ub++)
		;
	fd = open(argv[optind], O_RDONLY | O_DIRECT);
	if (fd < 0 || ioctl(fd, BLKGETSIZE64, &size)) {
		fprintf(stderr, "crash_io: %s: %s\n", argv[optind], strerror(errno));
		return 1;
	}
	if (posix_memalign((void **)&buf, BLK, chunk * BLK))
		return 1;
	for (blk = 0; blk < size / BLK; blk += nb) {
		nb = size / BLK - blk < chunk ? size / BLK - blk : chunk;
		if (pread(fd, buf, nb * BLK, blk * BLK) != (ssize_t)(nb * BLK)) {
			fprintf(stderr, "crash_io: read at block %" PRIu64 ": %s\n",
				blk, strerror(errno));
			return 1;
		}
		for (i = 0; i < nb; i++)
			check_block(buf + i * BLK, blk + i, fl, mp, ub, &v);
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
