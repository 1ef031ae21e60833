// SPDX-License-Identifier: GPL-2.0
/*
 * Deterministic I/O for the dm_qcow2 suite.
 *
 *   pattern_io gen TARGET SEED OPS MAXKB
 *	OPS writes and write-zeroes of 512 B .. MAXKB KiB at 512-aligned
 *	offsets chosen by a PRNG seeded with SEED, data from the same PRNG.
 *	TARGET is a block device (zeroes by BLKZEROOUT) or a regular file
 *	(zeroes written): the same SEED gives the same bytes on both, so the
 *	image can be compared with a raw reference afterwards.
 *   pattern_io stripe DEV THREADS MB
 *	THREADS threads write, with O_DIRECT, interleaved 512-byte sectors
 *	of the first MB MiB (thread t owns sectors s with s % THREADS == t):
 *	all threads hit the same clusters at once. Then every sector is read
 *	back and checked. Exit 0 only when all match.
 *   pattern_io verify-stripe DEV THREADS MB
 *	Only the check (after a detach and re-attach).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t rng_next(uint64_t *s)
{
	/* xorshift64*: small, fast, the same everywhere */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

static int full_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done,
				   off + done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += n;
	}
	return 0;
}

static int full_pread(int fd, void *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, off + done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += n;
	}
	return 0;
}

static uint64_t target_size(int fd, int *is_blk)
{
	struct stat st;
	uint64_t size = 0;

	if (fstat(fd, &st))
		return 0;
	*is_blk = S_ISBLK(st.st_mode);
	if (*is_blk) {
		if (ioctl(fd, BLKGETSIZE64, &size))
			return 0;
		return size;
	}
	return st.st_size;
}

static int zero_range(int fd, int is_blk, char *buf, uint64_t off, uint64_t len)
{
	uint64_t range[2] = { off, len };

	if (is_blk)
		return ioctl(fd, BLKZEROOUT, range);
	memset(buf, 0, len);
	return full_pwrite(fd, buf, len, off);
}

static int cmd_gen(const char *path, uint64_t seed, long ops, long maxkb)
{
	uint64_t s = seed * 2654435761u + 1, size, sectors, maxsec = maxkb * 2;
	int fd, is_blk;
	char *buf;
	long i;

	fd = open(path, O_RDWR);
	if (fd < 0 || !(size = target_size(fd, &is_blk))) {
		perror(path);
		return 1;
	}
	if (is_blk) {
		/* bypass the page cache: what is read later comes from the target */
		close(fd);
		fd = open(path, O_RDWR | O_DIRECT);
		if (fd < 0) {
			perror(path);
			return 1;
		}
	}
	sectors = size / 512;
	if (posix_memalign((void **)&buf, 4096, maxsec * 512))
		return 1;
	for (i = 0; i < ops; i++) {
		uint64_t r = rng_next(&s), len, off, k;
		int zero = r % 8 == 0;

		len = 1 + rng_next(&s) % maxsec;
		if (rng_next(&s) % 4 == 0)	/* small ones are common */
			len = 1 + len % 8;
		if (len > sectors)
			len = sectors;
		off = rng_next(&s) % (sectors - len + 1);
		if (zero) {
			if (zero_range(fd, is_blk, buf, off * 512, len * 512)) {
				fprintf(stderr, "zero %llu+%llu: %s\n",
					(unsigned long long)off * 512,
					(unsigned long long)len * 512, strerror(errno));
				return 1;
			}
			continue;
		}
		for (k = 0; k < len * 512 / 8; k++)
			((uint64_t *)buf)[k] = rng_next(&s);
		if (full_pwrite(fd, buf, len * 512, off * 512)) {
			fprintf(stderr, "write %llu+%llu: %s\n",
				(unsigned long long)off * 512,
				(unsigned long long)len * 512, strerror(errno));
			return 1;
		}
	}
	if (fsync(fd)) {
		perror("fsync");
		return 1;
	}
	close(fd);
	return 0;
}

struct stripe {
	int fd, t, n;
	uint64_t sectors;
	int failed;
};

static void fill_sector(uint64_t *buf, uint64_t sector)
{
	int k;

	for (k = 0; k < 64; k++)
		buf[k] = (sector << 16 | k) ^ 0x9e3779b97f4a7c15ull;
}

static void *stripe_writer(void *arg)
{
	struct stripe *st = arg;
	uint64_t *buf, s;

	if (posix_memalign((void **)&buf, 4096, 512)) {
		st->failed = 1;
		return NULL;
	}
	for (s = st->t; s < st->sectors; s += st->n) {
		fill_sector(buf, s);
		if (full_pwrite(st->fd, buf, 512, s * 512)) {
			fprintf(stderr, "thread %d: write sector %llu: %s\n", st->t,
				(unsigned long long)s, strerror(errno));
			st->failed = 1;
			break;
		}
	}
	free(buf);
	return NULL;
}

static int stripe_verify(int fd, uint64_t sectors)
{
	uint64_t *buf, want[64], s;
	int bad = 0;

	if (posix_memalign((void **)&buf, 4096, 1 << 20))
		return 1;
	for (s = 0; s < sectors; s++) {
		if (s % 2048 == 0 &&
		    full_pread(fd, buf, (sectors - s >= 2048 ? 2048 : sectors - s) * 512,
			       s * 512)) {
			perror("read");
			return 1;
		}
		fill_sector(want, s);
		if (memcmp(buf + (s % 2048) * 64, want, 512)) {
			if (bad++ < 10)
				fprintf(stderr, "sector %llu differs\n",
					(unsigned long long)s);
		}
	}
	free(buf);
	if (bad)
		fprintf(stderr, "%d sectors differ\n", bad);
	return bad != 0;
}

static int cmd_stripe(const char *path, int n, long mb, int write)
{
	struct stripe st[64];
	pthread_t th[64];
	uint64_t sectors = (uint64_t)mb << 11;
	int fd, t, failed = 0;

	if (n < 1 || n > 64)
		return 2;
	fd = open(path, O_RDWR | O_DIRECT);
	if (fd < 0) {
		perror(path);
		return 1;
	}
	for (t = 0; write && t < n; t++) {
		st[t] = (struct stripe){ fd, t, n, sectors, 0 };
		if (pthread_create(&th[t], NULL, stripe_writer, &st[t]))
			return 1;
	}
	for (t = 0; write && t < n; t++) {
		pthread_join(th[t], NULL);
		failed |= st[t].failed;
	}
	if (write && fsync(fd)) {
		perror("fsync");
		failed = 1;
	}
	if (!failed)
		failed = stripe_verify(fd, sectors);
	close(fd);
	return failed;
}

int main(int argc, char **argv)
{
	if (argc == 6 && !strcmp(argv[1], "gen"))
		return cmd_gen(argv[2], strtoull(argv[3], NULL, 0),
			       atol(argv[4]), atol(argv[5]));
	if (argc == 5 && !strcmp(argv[1], "stripe"))
		return cmd_stripe(argv[2], atoi(argv[3]), atol(argv[4]), 1);
	if (argc == 5 && !strcmp(argv[1], "verify-stripe"))
		return cmd_stripe(argv[2], atoi(argv[3]), atol(argv[4]), 0);
	fprintf(stderr, "usage: pattern_io gen TARGET SEED OPS MAXKB\n"
		"       pattern_io stripe|verify-stripe DEV THREADS MB\n");
	return 2;
}
