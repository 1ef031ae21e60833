// SPDX-License-Identifier: GPL-2.0
/*
 * vblk verify: one thread per virtqueue writes a seeded pattern over its
 * share of the blocks (block b belongs to queue b % queues), keeping up to
 * --depth requests in flight; then a flush, then the same threads read
 * everything back and compare. Each 512-byte sector carries its own
 * number, the seed and the pass, so misplaced and stale data show.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vblk_cmd.h"

struct verify {
	struct vblk_dev *dev;
	const struct cli *c;
	uint64_t start;			/* byte offset of the range */
	uint64_t len;			/* bytes */
	size_t bs;
	uint64_t nblocks;
	unsigned int nq;
	unsigned int depth;
	uint32_t pass;
};

struct slot {
	struct vblk_req req;
	struct iovec iov[VBLK_MAX_SEGS];
	uint8_t *buf;
	uint64_t block;
	bool busy;
};

struct qctx {
	struct verify *v;
	unsigned int q;
	bool writing;
	struct slot *slots;
	uint64_t reqs;
	uint64_t bad_sectors;
	uint64_t first_bad;
	int rc;
	pthread_t tid;
};

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static void fill_sector(uint64_t *w, uint64_t sector, uint32_t seed,
			uint32_t pass)
{
	uint64_t tag = (uint64_t)pass << 32 | seed;
	unsigned int k;

	w[0] = sector;
	w[1] = tag;
	for (k = 2; k < 64; k++)
		w[k] = mix(sector ^ (tag << 7) ^ k);
}

static void block_span(const struct verify *v, uint64_t b, uint64_t *off,
		       size_t *len)
{
	uint64_t o = (uint64_t)b * v->bs;

	*off = v->start + o;
	*len = v->len - o < v->bs ? v->len - o : v->bs;
}

static void fill_block(const struct verify *v, struct slot *s)
{
	uint64_t off;
	size_t len, i;

	block_span(v, s->block, &off, &len);
	for (i = 0; i < len / 512; i++)
		fill_sector((uint64_t *)(s->buf + i * 512), off / 512 + i,
			    v->c->seed, v->pass);
}

static void check_block(struct qctx *qc, struct slot *s)
{
	uint64_t want[64], off;
	size_t len, i;

	block_span(qc->v, s->block, &off, &len);
	for (i = 0; i < len / 512; i++) {
		fill_sector(want, off / 512 + i, qc->v->c->seed, qc->v->pass);
		if (!memcmp(want, s->buf + i * 512, 512))
			continue;
		if (!qc->bad_sectors++) {
			const uint64_t *got = (const uint64_t *)(s->buf + i * 512);

			qc->first_bad = off / 512 + i;
			fprintf(stderr,
				"vblk verify: sector %llu differs (it holds sector %llu, tag 0x%llx; expected tag 0x%llx)\n",
				(unsigned long long)qc->first_bad,
				(unsigned long long)got[0],
				(unsigned long long)got[1],
				(unsigned long long)want[1]);
		}
	}
}

static int complete(struct qctx *qc, struct vblk_req *r)
{
	struct slot *s = r->priv;
	uint64_t off;
	size_t len;
	int rc;

	s->busy = false;
	block_span(qc->v, s->block, &off, &len);
	rc = status_exit(qc->writing ? "write" : "read", off / 512, r->status);
	if (rc)
		return rc;
	if (!qc->writing)
		check_block(qc, s);
	return 0;
}

static int reap_some(struct qctx *qc, unsigned int min)
{
	struct vblk_req *done[VBLK_MAX_QUEUE_SIZE];
	int n, i, rc;

	n = vblk_reap(qc->v->dev, qc->q, done, qc->v->depth, min,
		      qc->v->c->timeout_ms);
	if (n < 0)
		return errno_exit("verify", qc->v->dev, n);
	if ((unsigned int)n < min) {
		fprintf(stderr, "vblk verify: queue %u: no completion in %d ms\n",
			qc->q, qc->v->c->timeout_ms);
		return EX_FAIL;
	}
	for (i = 0; i < n; i++) {
		rc = complete(qc, done[i]);
		if (rc)
			return rc;
	}
	return 0;
}

static struct slot *free_slot(struct qctx *qc)
{
	unsigned int i;

	for (i = 0; i < qc->v->depth; i++)
		if (!qc->slots[i].busy)
			return &qc->slots[i];
	return NULL;
}

static int submit_block(struct qctx *qc, struct slot *s, uint64_t b)
{
	struct verify *v = qc->v;
	uint64_t off;
	size_t len;
	int n, rc;

	s->block = b;
	block_span(v, b, &off, &len);
	if (qc->writing)
		fill_block(v, s);
	else
		memset(s->buf, 0xa5, len);
	n = io_build_iov(v->dev, s->buf, len, s->iov, VBLK_MAX_SEGS);
	if (n < 0)
		return EX_FAIL;
	s->req = (struct vblk_req){
		.type = qc->writing ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN,
		.sector = off / 512, .iov = s->iov, .iovcnt = n, .priv = s,
	};
	rc = vblk_submit(v->dev, qc->q, &s->req);
	if (rc)
		return errno_exit("verify: submit", v->dev, rc);
	s->busy = true;
	qc->reqs++;
	return 0;
}

static void *run_queue(void *arg)
{
	struct qctx *qc = arg;
	struct verify *v = qc->v;
	uint64_t b;
	struct slot *s;

	qc->rc = 0;
	for (b = qc->q; !qc->rc && b < v->nblocks; b += v->nq) {
		while (!qc->rc && !(s = free_slot(qc))) {
			qc->rc = vblk_kick(v->dev, qc->q);
			if (!qc->rc)
				qc->rc = reap_some(qc, 1);
		}
		if (!qc->rc)
			qc->rc = submit_block(qc, s, b);
		if (!qc->rc && vblk_inflight(v->dev, qc->q) >= v->depth / 2)
			qc->rc = vblk_kick(v->dev, qc->q);
	}
	if (!qc->rc)
		qc->rc = vblk_kick(v->dev, qc->q) ? EX_FAIL : 0;
	while (!qc->rc && vblk_inflight(v->dev, qc->q))
		qc->rc = reap_some(qc, 1);
	return NULL;
}

static int run_phase(struct verify *v, struct qctx *qcs, bool writing)
{
	unsigned int q;
	int rc = 0;

	for (q = 0; q < v->nq; q++) {
		qcs[q].writing = writing;
		if (pthread_create(&qcs[q].tid, NULL, run_queue, &qcs[q])) {
			fprintf(stderr, "vblk verify: cannot start threads\n");
			exit(EX_FAIL);
		}
	}
	for (q = 0; q < v->nq; q++) {
		pthread_join(qcs[q].tid, NULL);
		if (qcs[q].rc && !rc)
			rc = qcs[q].rc;
	}
	return rc;
}

static int flush(struct verify *v)
{
	struct vblk_req req = { .type = VIRTIO_BLK_T_FLUSH };
	int rc;

	if (!vblk_info(v->dev)->flush)
		return 0;
	rc = vblk_do(v->dev, 0, &req, v->c->timeout_ms);
	return rc ? errno_exit("flush", v->dev, rc) :
		    status_exit("flush", 0, req.status);
}

static int setup(struct verify *v, struct qctx **qcsp)
{
	uint64_t cap = vblk_info(v->dev)->capacity * 512;
	struct qctx *qcs;
	unsigned int q, i;

	if (v->c->offset % 512 || v->c->size % 512 || v->c->offset >= cap) {
		fprintf(stderr, "vblk verify: range outside the %llu-byte device or not 512-aligned\n",
			(unsigned long long)cap);
		return EX_USAGE;
	}
	v->start = v->c->offset;
	v->len = v->c->size ? v->c->size : cap - v->start;
	if (v->len > cap - v->start)
		v->len = cap - v->start;
	v->bs = v->c->bs < io_chunk_max(v->dev) ? v->c->bs : io_chunk_max(v->dev);
	v->nblocks = (v->len + v->bs - 1) / v->bs;
	v->nq = vblk_info(v->dev)->num_queues;
	v->depth = v->c->depth < vblk_info(v->dev)->queue_size ?
		   v->c->depth : vblk_info(v->dev)->queue_size;
	qcs = calloc(v->nq, sizeof(*qcs));
	for (q = 0; qcs && q < v->nq; q++) {
		qcs[q].v = v;
		qcs[q].q = q;
		qcs[q].slots = calloc(v->depth, sizeof(struct slot));
		for (i = 0; qcs[q].slots && i < v->depth; i++) {
			qcs[q].slots[i].buf = vblk_mem_alloc(v->dev, v->bs);
			if (!qcs[q].slots[i].buf)
				break;
		}
		if (!qcs[q].slots || i < v->depth) {
			fprintf(stderr, "vblk verify: out of guest memory (lower --depth or --bs)\n");
			return EX_FAIL;
		}
	}
	*qcsp = qcs;
	return qcs ? 0 : EX_FAIL;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int one_pass(struct verify *v, struct qctx *qcs)
{
	int rc = 0;

	if (v->c->mode != VERIFY_CHECK) {
		rc = run_phase(v, qcs, true);
		if (!rc)
			rc = flush(v);
	}
	if (!rc && v->c->mode != VERIFY_WRITE)
		rc = run_phase(v, qcs, false);
	return rc;
}

static void summary(const struct verify *v, const struct qctx *qcs,
		    double secs, int rc)
{
	uint64_t reqs = 0, bad = 0;
	unsigned int q;

	for (q = 0; q < v->nq; q++) {
		reqs += qcs[q].reqs;
		bad += qcs[q].bad_sectors;
	}
	printf("verify: %s, %llu bytes at %llu, %u queues, depth %u, bs %zu, "
	       "%u passes, %llu requests, %llu bad sectors, %.1f MiB/s: %s\n",
	       vblk_transport_name(vblk_info(v->dev)->transport),
	       (unsigned long long)v->len, (unsigned long long)v->start, v->nq,
	       v->depth, v->bs, v->pass, (unsigned long long)reqs,
	       (unsigned long long)bad,
	       secs > 0 ? reqs * (double)v->bs / secs / 1048576 : 0.0,
	       rc ? "FAILED" : "OK");
}

int cmd_verify(struct cli *c)
{
	struct verify v = { .c = c };
	struct qctx *qcs = NULL;
	double t0;
	int rc, mism = 0;
	unsigned int q;

	if (c->nargs) {
		usage_cmd(c->cmd, stderr);
		return EX_USAGE;
	}
	if ((rc = cli_open(c, &v.dev)))
		return rc;
	rc = setup(&v, &qcs);
	t0 = now_s();
	for (v.pass = 0; !rc && !mism && (!c->passes || v.pass < c->passes);) {
		rc = one_pass(&v, qcs);
		v.pass++;
		for (q = 0; q < v.nq; q++)
			mism |= qcs[q].bad_sectors != 0;
	}
	if (!rc && mism)
		rc = EX_MISMATCH;
	if (qcs && !c->quiet)
		summary(&v, qcs, now_s() - t0, rc);
	vblk_close(v.dev);
	for (q = 0; qcs && q < v.nq; q++)
		free(qcs[q].slots);
	free(qcs);
	return rc;
}
