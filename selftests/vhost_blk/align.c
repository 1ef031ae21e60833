// SPDX-License-Identifier: GPL-2.0
/*
 * align: valid requests whose data segments do not sit on the backend's
 * logical block size (address or length) must be served, with the right
 * data in the right place. virtio-blk cannot tell a guest about buffer
 * alignment; only the sector and the total length are bound by the block
 * size. Every layout below is written from unaligned segments and read back
 * aligned (and straight from the backend), then written aligned and read
 * into unaligned segments, whose neighbouring bytes must stay untouched.
 * Then many such requests at once, beyond what a queue may hold in
 * bounce buffers. Requests that break the sector/length rules must still
 * get IOERR.
 *
 *   align BACKEND      (KTAP on stdout; exit 0, 1 on any failure)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "../../tools/libvblk/vblk.h"

#define TIMEOUT_MS	20000
#define MAX_SEG		40
#define GUARD		64	/* bytes checked on each side of a segment */
#define POISON		0xa5

/* A segment: byte offset of its start inside a page, and its length. */
struct seg {
	unsigned int off;
	unsigned int len;
};

/* A layout: its segments; len 0 in the last one means "the rest". */
struct layout {
	const char *name;
	unsigned int total;	/* 0: 2 * max(lbs, 4096) */
	struct seg s[MAX_SEG];
	unsigned int n;		/* 0: filled by expand() */
};

static const struct layout layouts[] = {
	{ "address +1", 0, { { 1, 0 } }, 1 },
	{ "address +3", 0, { { 3, 0 } }, 1 },
	{ "address +511", 0, { { 511, 0 } }, 1 },
	{ "address +512", 0, { { 512, 0 } }, 1 },
	{ "address +2048", 0, { { 2048, 0 } }, 1 },
	{ "address +4095", 0, { { 4095, 0 } }, 1 },
	{ "lengths 1 + rest", 0, { { 0, 1 }, { 0, 0 } }, 2 },
	{ "lengths 256 + rest", 0, { { 0, 256 }, { 0, 0 } }, 2 },
	{ "lengths 512 + rest", 0, { { 0, 512 }, { 0, 0 } }, 2 },
	{ "lengths rest + 100", 0, { { 0, 0 }, { 0, 100 } }, 2 },
	{ "lengths 100 + 412 + rest, addresses +7", 0,
	  { { 7, 100 }, { 7, 412 }, { 7, 0 } }, 3 },
	{ "address +4090, lengths 16 + rest", 0, { { 4090, 16 }, { 4090, 0 } }, 2 },
	{ "16 segments of 512", 0, { { 0, 512 } }, 0 },
	{ "segments of 127 bytes, addresses +1", 0, { { 1, 127 } }, 0 },
	{ "256 KiB: 131071 at +1, 131072 at +0, 1 at +5", 262144,
	  { { 1, 131071 }, { 0, 131072 }, { 5, 1 } }, 3 },
	{ "aligned (control)", 0, { { 0, 0 } }, 1 },
};

static struct vblk_dev *dev;
static uint8_t *arena;		/* guest memory: the segments live here */
static size_t arena_size;
static uint8_t *aligned;	/* guest memory, page aligned */
static uint8_t *pattern, *got;
static uint32_t lbs;
static const char *path;
static int n_test, n_fail;
static char why[512];

static void result(int fail, const char *fmt, const char *name)
{
	n_test++;
	if (fail) {
		n_fail++;
		printf("# %s: %s\nnot ok %d %s %s\n", name, why, n_test, fmt,
		       name);
	} else {
		printf("ok %d %s %s\n", n_test, fmt, name);
	}
	fflush(stdout);
}

/*
 * The segments of a layout, each in pages of its own (at least GUARD
 * bytes of the arena on both sides), at its offset inside the page.
 */
static struct iovec place(size_t *pos, unsigned int off, unsigned int len)
{
	struct iovec v;

	*pos = (*pos + 4095) / 4096 * 4096 + 4096;
	v.iov_base = arena + *pos + off;
	v.iov_len = len;
	*pos += off + len + GUARD;
	return v;
}

static unsigned int expand(const struct layout *l, unsigned int total,
			   struct iovec *iov)
{
	unsigned int i, j, len, later, n = 0, left = total;
	size_t pos = 0;

	if (!l->n) {		/* one segment shape repeated */
		while (left) {
			len = l->s[0].len < left ? l->s[0].len : left;
			if (n == MAX_SEG - 1)
				len = left;
			iov[n++] = place(&pos, l->s[0].off, len);
			left -= len;
		}
		return n;
	}
	for (i = 0; i < l->n; i++) {
		len = l->s[i].len;
		if (!len) {	/* the rest, minus what later segments take */
			for (later = 0, j = i + 1; j < l->n; j++)
				later += l->s[j].len;
			len = left - later;
		}
		iov[n++] = place(&pos, l->s[i].off, len);
		left -= len;
	}
	return n;
}

static int do_req(uint32_t type, uint64_t sector, const struct iovec *iov,
		  unsigned int n, uint8_t want)
{
	struct vblk_req r = { .type = type, .sector = sector, .iov = iov,
			      .iovcnt = n };
	int rc = vblk_do(dev, 0, &r, TIMEOUT_MS);

	if (rc) {
		snprintf(why, sizeof(why), "%s: %s", vblk_type_name(type),
			 vblk_errmsg(dev));
		return -1;
	}
	if (r.status != want) {
		snprintf(why, sizeof(why), "%s at sector %llu: status %s, expected %s",
			 vblk_type_name(type), (unsigned long long)sector,
			 vblk_status_name(r.status), vblk_status_name(want));
		return -1;
	}
	return 0;
}

static void fill(uint8_t *p, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (uint8_t)(seed * 151 + i * 13 + (i >> 9) * 7 + (i >> 12));
}

static void scatter(const struct iovec *iov, unsigned int n, const uint8_t *src)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		memcpy(iov[i].iov_base, src, iov[i].iov_len);
		src += iov[i].iov_len;
	}
}

static void gather(const struct iovec *iov, unsigned int n, uint8_t *dst)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		memcpy(dst, iov[i].iov_base, iov[i].iov_len);
		dst += iov[i].iov_len;
	}
}

/* Bytes of the backend itself, bypassing the device. */
static int backend_pread(void *buf, size_t len, off_t off)
{
	struct stat st;
	void *b = NULL;
	ssize_t r;
	int fd, flags = O_RDONLY;

	if (stat(path, &st))
		return -1;
	if (S_ISBLK(st.st_mode))
		flags |= O_DIRECT;
	fd = open(path, flags);
	if (fd < 0 || posix_memalign(&b, 4096, len)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	r = pread(fd, b, len, off);
	close(fd);
	memcpy(buf, b, len);
	free(b);
	return r == (ssize_t)len ? 0 : -1;
}

static int compare(const uint8_t *a, const uint8_t *b, size_t len,
		   const char *what)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (a[i] != b[i]) {
			snprintf(why, sizeof(why),
				 "%s: first difference at byte %zu of %zu", what,
				 i, len);
			return -1;
		}
	return 0;
}

/* The aligned buffer as segments of 64 KiB (below any size_max). */
#define ALIGNED_SEGS	8
static unsigned int aligned_iov(struct iovec *a, size_t total)
{
	unsigned int n = 0;
	size_t off;

	for (off = 0; off < total; off += 65536, n++) {
		a[n].iov_base = aligned + off;
		a[n].iov_len = total - off < 65536 ? total - off : 65536;
	}
	return n;
}

/* Unaligned write, aligned read back and a look at the backend. */
static int write_case(const struct iovec *iov, unsigned int n, size_t total,
		      uint64_t sector, unsigned int seed)
{
	struct iovec a[ALIGNED_SEGS];
	unsigned int na = aligned_iov(a, total);

	fill(pattern, total, seed);
	scatter(iov, n, pattern);
	if (do_req(VIRTIO_BLK_T_OUT, sector, iov, n, VIRTIO_BLK_S_OK))
		return -1;
	memset(aligned, 0, total);
	if (do_req(VIRTIO_BLK_T_IN, sector, a, na, VIRTIO_BLK_S_OK) ||
	    compare(aligned, pattern, total, "read back through the device"))
		return -1;
	if (backend_pread(got, total, sector * 512)) {
		snprintf(why, sizeof(why), "cannot read the backend");
		return -1;
	}
	return compare(got, pattern, total, "on the backend");
}

/* Aligned write, read into unaligned segments; guards stay poisoned. */
static int read_case(const struct iovec *iov, unsigned int n, size_t total,
		     uint64_t sector, unsigned int seed)
{
	struct iovec a[ALIGNED_SEGS];
	unsigned int na = aligned_iov(a, total), i, j;

	fill(aligned, total, seed);
	memcpy(pattern, aligned, total);
	if (do_req(VIRTIO_BLK_T_OUT, sector, a, na, VIRTIO_BLK_S_OK))
		return -1;
	memset(arena, POISON, arena_size);
	if (do_req(VIRTIO_BLK_T_IN, sector, iov, n, VIRTIO_BLK_S_OK))
		return -1;
	gather(iov, n, got);
	if (compare(got, pattern, total, "read into the segments"))
		return -1;
	for (i = 0; i < n; i++) {
		uint8_t *s = iov[i].iov_base;

		for (j = 1; j <= GUARD; j++) {
			if ((s - j >= arena && s[-(int)j] != POISON) ||
			    (s + iov[i].iov_len + j - 1 < arena + arena_size &&
			     s[iov[i].iov_len + j - 1] != POISON)) {
				snprintf(why, sizeof(why),
					 "segment %u: a byte next to it was written",
					 i);
				return -1;
			}
		}
	}
	return 0;
}

/*
 * Many unaligned requests in flight at once: DEEP_N of DEEP_LEN bytes,
 * more than the bounce buffers a queue may hold (4 MiB), so the queue
 * stops taking requests and its completions must start it again. Writes
 * from unaligned segments, read back aligned; then reads into unaligned
 * segments, compared.
 */
#define DEEP_N		24
#define DEEP_LEN	262144
#define DEEP_SECTOR	16384
static uint8_t *deep_area, *deep_pattern;

static void deep_iov(unsigned int k, struct iovec *v)
{
	uint8_t *base = deep_area + (size_t)k * (DEEP_LEN + 4 * 4096);

	v[0] = (struct iovec){ base + 1, 100000 };
	v[1] = (struct iovec){ base + 100000 + 4096 + 3, 100000 };
	v[2] = (struct iovec){ base + 200000 + 8192 + 5, DEEP_LEN - 200000 };
}

static int deep_batch(uint32_t type, struct vblk_req *r, struct iovec (*v)[3])
{
	struct vblk_req *done[DEEP_N];
	unsigned int k, got = 0;
	int rc;

	for (k = 0; k < DEEP_N; k++) {
		r[k] = (struct vblk_req){ .type = type,
			.sector = DEEP_SECTOR + k * (DEEP_LEN / 512),
			.iov = v[k], .iovcnt = 3 };
		rc = vblk_submit(dev, 0, &r[k]);
		if (rc) {
			snprintf(why, sizeof(why), "submit %u: %s", k,
				 vblk_errmsg(dev));
			return -1;
		}
	}
	vblk_kick(dev, 0);
	while (got < DEEP_N) {
		rc = vblk_reap(dev, 0, done, DEEP_N, DEEP_N - got, TIMEOUT_MS);
		if (rc <= 0) {
			snprintf(why, sizeof(why), "%u of %u completed (%d)",
				 got, DEEP_N, rc);
			return -1;
		}
		got += rc;
	}
	for (k = 0; k < DEEP_N; k++)
		if (r[k].status != VIRTIO_BLK_S_OK) {
			snprintf(why, sizeof(why), "request %u: %s", k,
				 vblk_status_name(r[k].status));
			return -1;
		}
	return 0;
}

static int deep(void)
{
	static struct vblk_req r[DEEP_N];
	static struct iovec v[DEEP_N][3];
	struct iovec a[ALIGNED_SEGS];
	unsigned int k, na = aligned_iov(a, DEEP_LEN);

	for (k = 0; k < DEEP_N; k++) {
		deep_iov(k, v[k]);
		fill(deep_pattern + (size_t)k * DEEP_LEN, DEEP_LEN, k + 200);
		scatter(v[k], 3, deep_pattern + (size_t)k * DEEP_LEN);
	}
	if (deep_batch(VIRTIO_BLK_T_OUT, r, v))
		return -1;
	for (k = 0; k < DEEP_N; k++) {
		memset(aligned, 0, DEEP_LEN);
		if (do_req(VIRTIO_BLK_T_IN, DEEP_SECTOR + k * (DEEP_LEN / 512),
			   a, na, VIRTIO_BLK_S_OK) ||
		    compare(aligned, deep_pattern + (size_t)k * DEEP_LEN,
			    DEEP_LEN, "written in flight, read back aligned"))
			return -1;
	}
	memset(deep_area, POISON, (size_t)DEEP_N * (DEEP_LEN + 4 * 4096));
	if (deep_batch(VIRTIO_BLK_T_IN, r, v))
		return -1;
	for (k = 0; k < DEEP_N; k++) {
		gather(v[k], 3, got);
		if (compare(got, deep_pattern + (size_t)k * DEEP_LEN, DEEP_LEN,
			    "read in flight into unaligned segments"))
			return -1;
	}
	return 0;
}

/* The rules that stay hard: sector and total length in logical blocks. */
static void hard_rules(void)
{
	struct iovec small = { aligned, 512 };
	struct iovec odd = { aligned + 1, 100 };
	struct iovec full = { aligned + 3, lbs };

	why[0] = 0;
	result(do_req(VIRTIO_BLK_T_IN, 0, &odd, 1, VIRTIO_BLK_S_IOERR),
	       "read of 100 bytes:", "IOERR");
	if (lbs > 512) {
		result(do_req(VIRTIO_BLK_T_IN, 8, &small, 1,
			      VIRTIO_BLK_S_IOERR),
		       "read of 512 bytes on a larger block size:", "IOERR");
		result(do_req(VIRTIO_BLK_T_OUT, lbs / 512 + 1, &full, 1,
			      VIRTIO_BLK_S_IOERR),
		       "write at a sector inside a block:", "IOERR");
	}
}

int main(int argc, char **argv)
{
	struct vblk_opts o = { .transport = VBLK_TR_KERNEL,
			       .data_mem = 24 << 20 };
	struct iovec iov[MAX_SEG];
	unsigned int i, n, plan;
	char err[256];
	uint64_t sector;

	if (argc != 2 || !strcmp(argv[1], "--help")) {
		printf("usage: align BACKEND\n"
		       "Unaligned data segments on BACKEND through /dev/vhost-blk, data compared.\n");
		return argc == 2 ? 0 : 2;
	}
	path = argv[1];
	if (vblk_open(&dev, path, &o, err, sizeof(err))) {
		printf("Bail out! open %s: %s\n", path, err);
		return 1;
	}
	lbs = vblk_info(dev)->blk_size;
	arena_size = 2 << 20;
	arena = vblk_mem_alloc(dev, arena_size);
	aligned = vblk_mem_alloc(dev, 512 << 10);
	deep_area = vblk_mem_alloc(dev, (size_t)DEEP_N * (DEEP_LEN + 4 * 4096));
	pattern = malloc(512 << 10);
	got = malloc(512 << 10);
	deep_pattern = malloc((size_t)DEEP_N * DEEP_LEN);
	if (!arena || !aligned || !pattern || !got || !deep_area ||
	    !deep_pattern) {
		printf("Bail out! out of guest memory\n");
		return 1;
	}
	n = sizeof(layouts) / sizeof(layouts[0]);
	plan = 2 * n + 1 + (lbs > 512 ? 3 : 1);
	printf("TAP version 13\n1..%u\n# %s: logical block size %u\n", plan,
	       path, lbs);
	sector = 2048;
	for (i = 0; i < n; i++) {
		const struct layout *l = &layouts[i];
		size_t total = l->total ? l->total : 2 * (lbs > 4096 ? lbs : 4096);
		unsigned int nseg = expand(l, total, iov);

		why[0] = 0;
		result(write_case(iov, nseg, total, sector, i + 1),
		       "write from", l->name);
		why[0] = 0;
		result(read_case(iov, nseg, total, sector, i + 101),
		       "read into", l->name);
		sector += total / 512 + lbs / 512;
	}
	why[0] = 0;
	result(deep(), "24 unaligned requests of 256 KiB in flight",
	       "(more than a queue's bounce budget): written and read back");
	hard_rules();
	vblk_close(dev);
	printf("# totals: pass:%d fail:%d skip:0\n", n_test - n_fail, n_fail);
	return n_fail ? 1 : 0;
}
