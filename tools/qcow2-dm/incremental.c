// SPDX-License-Identifier: GPL-2.0
/*
 * incremental.c: copy the ranges a dirty bitmap marks from a frozen image
 * into a new overlay of the previous backup.
 *
 * Both sides are dm-qcow2 devices: the frozen chain read-only, the new
 * backup read-write over the previous one (read-only). A range that reads
 * as zeros becomes a write-zeroes request, so the backup stays thin and a
 * discarded range hides what the previous backup held there.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "chain.h"
#include "dm.h"
#include "incremental.h"
#include "live.h"
#include "table.h"
#include "util.h"

#define CHUNK	(1U << 20)

struct copy {
	int src, dst;
	void *buf;
	uint64_t copied, zeroed, extents, total;
	double last_report;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int all_zero(const void *buf, size_t len)
{
	const unsigned char *p = buf;

	return !p[0] && !memcmp(p, p + 1, len - 1);
}

static int copy_range(struct copy *cp, uint64_t off, uint64_t len)
{
	while (len) {
		size_t n = len < CHUNK ? len : CHUNK;
		ssize_t r = pread(cp->src, cp->buf, n, off);

		if (r != (ssize_t)n)
			return err_errno("backup: reading the frozen image at %" PRIu64,
					 off);
		if (all_zero(cp->buf, n)) {
			uint64_t range[2] = { off, n };

			if (ioctl(cp->dst, BLKZEROOUT, range))
				return err_errno("backup: zeroing the backup at %" PRIu64,
						 off);
			cp->zeroed += n;
		} else if (pwrite(cp->dst, cp->buf, n, off) != (ssize_t)n) {
			return err_errno("backup: writing the backup at %" PRIu64,
					 off);
		}
		cp->copied += n;
		off += n;
		len -= n;
	}
	return 0;
}

static void report(struct copy *cp, int last)
{
	double t = now();

	if (!last && t - cp->last_report < 2)
		return;
	cp->last_report = t;
	fprintf(stderr, PROG ": backup: %" PRIu64 " of %" PRIu64 " MiB copied%s",
		cp->copied >> 20, cp->total >> 20, last ? "\n" : "\r");
}

/*
 * The next run of set bits at or after bit *@i, as bytes [*@off, *@end)
 * clipped to @size; 0 when there is none. *@i moves past the run.
 */
static int next_run(const struct qcow2_bitmap *bm, uint64_t size,
		    uint64_t *i, uint64_t *off, uint64_t *end)
{
	uint64_t g = (uint64_t)1 << bm->gran_bits, j;

	while (*i < bm->nbits && !qcow2_bitmap_test(bm, *i))
		(*i)++;
	if (*i >= bm->nbits)
		return 0;
	for (j = *i; j < bm->nbits && qcow2_bitmap_test(bm, j); j++)
		;
	*off = *i * g;
	*end = j * g < size ? j * g : size;
	*i = j;
	return 1;
}

/* Copy every run of set bits, clipped to the disk size. */
static int copy_dirty(struct copy *cp, const struct qcow2_bitmap *bm,
		      uint64_t size, volatile sig_atomic_t *stop)
{
	uint64_t i = 0, off, end;

	while (next_run(bm, size, &i, &off, &end))
		cp->total += end - off;
	i = 0;
	while (!*stop && next_run(bm, size, &i, &off, &end)) {
		if (copy_range(cp, off, end - off))
			return -1;
		cp->extents++;
		if (isatty(STDERR_FILENO))
			report(cp, 0);
	}
	if (*stop)
		return err("backup: stopped by signal %d", (int)*stop);
	return 0;
}

static int open_device(const char *dev, const char *image, bool ro,
		       struct chain *c, int *fd)
{
	static char table[TABLE_MAX];
	char node[PATH_MAX];

	if (chain_open(c, image, ro))
		return -1;
	if (table_build(c, ro, 0, table, sizeof(table)) ||
	    live_create_device(dev, table, ro)) {
		chain_close(c);
		return -1;
	}
	snprintf(node, sizeof(node), "/dev/mapper/%s", dev);
	*fd = open(node, (ro ? O_RDONLY : O_RDWR) | O_DIRECT | O_CLOEXEC);
	if (*fd < 0) {
		err_errno("%s", node);
		dm_remove(dev, false);
		chain_close(c);
		return -1;
	}
	return 0;
}

static void close_device(const char *dev, struct chain *c, int fd)
{
	close(fd);
	dm_remove(dev, false);
	chain_close(c);
}

static int create_overlay(const char *prev, const char *out, uint64_t size)
{
	char fmt[8], sz[32];
	char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-b",
			 (char *)prev, "-F", fmt, (char *)out, sz, NULL };
	int fd = open(prev, O_RDONLY | O_CLOEXEC), q;
	struct qcow2_info info;

	if (fd < 0)
		return err_errno("backup: %s", prev);
	q = qcow2_probe(fd);
	if (q == 1 && qcow2_read_info(fd, prev, &info) == 0 &&
	    info.size != size)
		q = -2;
	close(fd);
	if (q < 0)
		return err("backup: %s: %s", prev, q == -2 ?
			   "its virtual size differs from the device's" :
			   "cannot read it");
	snprintf(fmt, sizeof(fmt), "%s", q ? "qcow2" : "raw");
	snprintf(sz, sizeof(sz), "%" PRIu64, size);
	if (live_run(argv))
		return err("backup: qemu-img could not create %s", out);
	return 0;
}

int incremental_copy(const char *name, const char *image, uint64_t size,
		     const struct qcow2_bitmap *bm, const char *prev,
		     const char *out, volatile sig_atomic_t *stop)
{
	static struct chain csrc, cdst;
	char src[128], dst[128];
	struct copy cp = { 0 };
	double t0 = now();
	int r = -1;

	if (create_overlay(prev, out, size))
		return -1;
	snprintf(src, sizeof(src), "%.60s-bk%d", name, (int)getpid());
	snprintf(dst, sizeof(dst), "%.60s-inc%d", name, (int)getpid());
	if (posix_memalign(&cp.buf, 4096, CHUNK))
		return err("out of memory");
	if (open_device(src, image, true, &csrc, &cp.src))
		goto free_buf;
	if (open_device(dst, out, false, &cdst, &cp.dst))
		goto close_src;
	r = copy_dirty(&cp, bm, size, stop);
	if (!r && fsync(cp.dst))
		r = err_errno("backup: flushing %s", out);
	close_device(dst, &cdst, cp.dst);
	if (!r && isatty(STDERR_FILENO))
		report(&cp, 1);
	if (!r)
		fprintf(stderr, PROG ": backup: %" PRIu64 " MiB in %" PRIu64
			" extents copied (%" PRIu64 " MiB of zeros) in %.1f s\n",
			cp.copied >> 20, cp.extents, cp.zeroed >> 20,
			now() - t0);
close_src:
	close_device(src, &csrc, cp.src);
free_buf:
	free(cp.buf);
	return r;
}
