// SPDX-License-Identifier: GPL-2.0
/*
 * swap: backend swap and unset under load on /dev/vhost-blk.
 *
 * One thread per virtqueue writes tagged blocks and reads them back
 * (--depth requests in flight). Meanwhile the main thread alternates the
 * backend between A and B (VHOST_BLK_SET_BACKEND with the other fd) and
 * unsets it (fd -1) and sets it again. Asserted:
 *   - every request completes, with status OK, within the timeout (those
 *     queued while no backend is set are served once one is set again);
 *   - data read back equals data written whenever no swap happened in
 *     between;
 *   - SET_BACKEND(-1) drains: once it returned, the old backend's bytes
 *     do not change any more;
 *   - after the run, the blocks last written land on the backend that
 *     was set at that time (read directly from it).
 *
 *   swap A B [--queues N] [--rounds N]     (KTAP on stdout)
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../tools/libvblk/vblk.h"

#define BS		4096
#define BLOCKS_PER_Q	32
#define DEPTH		4
#define TIMEOUT_MS	20000

struct shared {
	struct vblk_dev *dev;
	unsigned int nq;
	unsigned int epoch;	/* odd while the backend changes */
	int stop;
	int current;		/* 0: A, 1: B */
};

struct worker {
	struct shared *s;
	unsigned int q;
	pthread_t tid;
	uint8_t *buf[DEPTH];
	struct vblk_req req[DEPTH];
	struct iovec iov[DEPTH];
	uint64_t rounds, stable_rounds, mismatches, errors;
	char why[256];
	/* the last stable round, for the final check */
	uint64_t last_tag;
	int last_backend;
	bool have_last;
};

static unsigned int epoch(struct shared *s)
{
	return __atomic_load_n(&s->epoch, __ATOMIC_ACQUIRE);
}

static uint64_t block_of(const struct worker *w, unsigned int i)
{
	return (uint64_t)(i * w->s->nq + w->q);
}

static void fill(uint8_t *p, uint64_t tag, uint64_t block)
{
	uint64_t *x = (uint64_t *)p;
	unsigned int k;

	for (k = 0; k < BS / 8; k++)
		x[k] = tag * 0x9e3779b97f4a7c15ULL ^ block << 20 ^ k;
}

static int run_batch(struct worker *w, uint32_t type, uint64_t tag)
{
	struct vblk_req *done[DEPTH];
	unsigned int i, got = 0;
	int rc;

	for (i = 0; i < DEPTH; i++) {
		if (type == VIRTIO_BLK_T_OUT)
			fill(w->buf[i], tag, block_of(w, i));
		else
			memset(w->buf[i], 0, BS);
		w->iov[i] = (struct iovec){ w->buf[i], BS };
		w->req[i] = (struct vblk_req){ .type = type,
			.sector = block_of(w, i) * (BS / 512),
			.iov = &w->iov[i], .iovcnt = 1 };
		rc = vblk_submit(w->s->dev, w->q, &w->req[i]);
		if (rc) {
			snprintf(w->why, sizeof(w->why), "submit: %d", rc);
			return -1;
		}
	}
	vblk_kick(w->s->dev, w->q);
	while (got < DEPTH) {
		rc = vblk_reap(w->s->dev, w->q, done, DEPTH, 1, TIMEOUT_MS);
		if (rc <= 0) {
			snprintf(w->why, sizeof(w->why),
				 "queue %u: %s after %u of %u completions",
				 w->q, rc ? "error" : "timeout", got, DEPTH);
			return -1;
		}
		for (i = 0; i < (unsigned int)rc; i++) {
			if (done[i]->status != VIRTIO_BLK_S_OK) {
				snprintf(w->why, sizeof(w->why),
					 "queue %u: status %s", w->q,
					 vblk_status_name(done[i]->status));
				return -1;
			}
		}
		got += rc;
	}
	return 0;
}

static void *work(void *arg)
{
	struct worker *w = arg;
	uint8_t want[BS];
	unsigned int i, e1, e2;
	uint64_t tag;

	while (!__atomic_load_n(&w->s->stop, __ATOMIC_ACQUIRE)) {
		tag = (w->rounds << 8) | w->q;
		e1 = epoch(w->s);
		if (run_batch(w, VIRTIO_BLK_T_OUT, tag) ||
		    run_batch(w, VIRTIO_BLK_T_IN, tag)) {
			w->errors++;
			break;
		}
		e2 = epoch(w->s);
		w->rounds++;
		if (e1 != e2 || (e1 & 1))
			continue;
		w->stable_rounds++;
		for (i = 0; i < DEPTH; i++) {
			fill(want, tag, block_of(w, i));
			if (memcmp(want, w->buf[i], BS)) {
				w->mismatches++;
				snprintf(w->why, sizeof(w->why),
					 "queue %u block %llu: read differs from write",
					 w->q, (unsigned long long)block_of(w, i));
			}
		}
		w->last_tag = tag;
		w->last_backend = __atomic_load_n(&w->s->current,
						  __ATOMIC_ACQUIRE);
		w->have_last = true;
	}
	return NULL;
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Open a backend to read it behind the device's back: O_DIRECT where the
 * backend has it (no stale page cache), else buffered (tmpfs on 6.1),
 * which the device's own direct writes keep coherent.
 */
static int open_backend(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECT);

	if (fd < 0 && errno == EINVAL)
		fd = open(path, O_RDONLY);
	return fd;
}

/* Checksum of the test area of a backend. */
static int area_sum(const char *path, unsigned int nq, uint64_t *sum)
{
	size_t len = (size_t)nq * BLOCKS_PER_Q * BS;
	uint64_t s = 0, *p;
	void *buf;
	int fd;
	size_t i;

	fd = open_backend(path);
	if (fd < 0 || posix_memalign(&buf, 4096, len)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (pread(fd, buf, len, 0) != (ssize_t)len) {
		free(buf);
		close(fd);
		return -1;
	}
	for (p = buf, i = 0; i < len / 8; i++)
		s = s * 31 + p[i];
	*sum = s;
	free(buf);
	close(fd);
	return 0;
}

static int check_final(struct worker *w, const char *path)
{
	uint8_t want[BS], *got;
	unsigned int i;
	int fd, rc = 0;

	if (!w->have_last)
		return 0;
	fd = open_backend(path);
	if (fd < 0 || posix_memalign((void **)&got, 4096, BS))
		return -1;
	for (i = 0; i < DEPTH; i++) {
		fill(want, w->last_tag, block_of(w, i));
		if (pread(fd, got, BS, block_of(w, i) * BS) != BS ||
		    memcmp(want, got, BS))
			rc = -1;
	}
	free(got);
	close(fd);
	return rc;
}

static int ktap_result(unsigned int *n, const char *name, bool ok,
		       const char *why)
{
	++*n;
	if (!ok && why && *why)
		printf("# %s: %s\n", name, why);
	printf("%sok %u %s\n", ok ? "" : "not ", *n, name);
	fflush(stdout);
	return ok ? 0 : 1;
}

/* newcur: which backend fd is (ignored for -1) */
static int set_backend_timed(struct shared *s, int fd, int newcur,
			     double *secs)
{
	double t0 = now();
	int rc;

	__atomic_add_fetch(&s->epoch, 1, __ATOMIC_ACQ_REL);
	rc = vblk_set_backend(s->dev, fd);
	if (!rc && fd >= 0)
		s->current = newcur;
	__atomic_add_fetch(&s->epoch, 1, __ATOMIC_ACQ_REL);
	*secs = now() - t0;
	return rc;
}

int main(int argc, char **argv)
{
	struct vblk_opts o = { .transport = VBLK_TR_KERNEL, .num_queues = 4,
			       .workers = 2, .data_mem = 8 << 20 };
	struct shared s = { 0 };
	struct worker *w;
	const char *path[2];
	unsigned int rounds = 4, i, q, n = 0, fails = 0;
	int fd[2], rc, swap_fail = 0, unset_fail = 0, drain_fail = 0;
	uint64_t sum1, sum2, total = 0, stable = 0, mism = 0, errs = 0;
	char err[256], why[512] = "";
	double secs, worst = 0;

	if (argc < 3 || argv[1][0] == '-') {
		printf("usage: swap A B [--queues N] [--rounds N]\n");
		return argc > 1 && !strcmp(argv[1], "--help") ? 0 : 2;
	}
	path[0] = argv[1];
	path[1] = argv[2];
	for (i = 3; i + 1 < (unsigned int)argc; i += 2) {
		if (!strcmp(argv[i], "--queues"))
			o.num_queues = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--rounds"))
			rounds = atoi(argv[i + 1]);
	}
	printf("TAP version 13\n1..6\n");
	fd[0] = open(path[0], O_RDWR);
	fd[1] = open(path[1], O_RDWR);
	if (fd[0] < 0 || fd[1] < 0) {
		printf("# cannot open the backends\nBail out!\n");
		return 1;
	}
	rc = vblk_open(&s.dev, path[0], &o, err, sizeof(err));
	if (rc) {
		printf("# open: %s\nBail out!\n", err);
		return 1;
	}
	s.nq = o.num_queues;
	w = calloc(s.nq, sizeof(*w));
	for (q = 0; q < s.nq; q++) {
		w[q].s = &s;
		w[q].q = q;
		for (i = 0; i < DEPTH; i++)
			w[q].buf[i] = vblk_mem_alloc(s.dev, BS);
		pthread_create(&w[q].tid, NULL, work, &w[q]);
	}

	for (i = 0; i < rounds; i++) {
		sleep_ms(500);
		/* swap to the other backend while I/O runs */
		rc = set_backend_timed(&s, fd[!s.current], !s.current, &secs);
		if (rc) {
			swap_fail++;
			snprintf(why, sizeof(why), "swap: %s", vblk_errmsg(s.dev));
		}
		worst = secs > worst ? secs : worst;
		sleep_ms(500);
		/* unset under load: the old backend must be quiet afterwards */
		rc = set_backend_timed(&s, -1, 0, &secs);
		worst = secs > worst ? secs : worst;
		if (rc) {
			unset_fail++;
			snprintf(why, sizeof(why), "unset: %s", vblk_errmsg(s.dev));
			continue;
		}
		if (area_sum(path[s.current], s.nq, &sum1))
			drain_fail++;
		sleep_ms(300);
		if (area_sum(path[s.current], s.nq, &sum2) || sum1 != sum2)
			drain_fail++;
		rc = set_backend_timed(&s, fd[s.current], s.current, &secs);
		if (rc) {
			unset_fail++;
			snprintf(why, sizeof(why), "set again: %s",
				 vblk_errmsg(s.dev));
		}
	}
	sleep_ms(500);
	__atomic_store_n(&s.stop, 1, __ATOMIC_RELEASE);
	for (q = 0; q < s.nq; q++) {
		pthread_join(w[q].tid, NULL);
		total += w[q].rounds;
		stable += w[q].stable_rounds;
		mism += w[q].mismatches;
		errs += w[q].errors;
		if ((w[q].errors || w[q].mismatches) && !*why)
			snprintf(why, sizeof(why), "%s", w[q].why);
	}
	vblk_close(s.dev);
	printf("# %llu rounds (%llu stable) on %u queues, slowest SET_BACKEND %.3fs\n",
	       (unsigned long long)total, (unsigned long long)stable, s.nq, worst);

	fails += ktap_result(&n, "swap_under_load", !swap_fail, why);
	fails += ktap_result(&n, "unset_and_set_under_load", !unset_fail, why);
	fails += ktap_result(&n, "unset_drains", !drain_fail,
			     "backend bytes changed after SET_BACKEND(-1) returned");
	fails += ktap_result(&n, "all_requests_ok", !errs, why);
	fails += ktap_result(&n, "read_back_matches", !mism && stable > 0,
			     stable ? why : "no stable round at all");
	for (q = 0, rc = 0; q < s.nq; q++)
		rc |= check_final(&w[q], path[w[q].last_backend]);
	fails += ktap_result(&n, "writes_land_on_current_backend", !rc,
			     "last blocks written are not on the backend set then");
	printf("# totals: pass:%u fail:%u skip:0\n", n - fails, fails);
	return fails ? 1 : 0;
}
