// SPDX-License-Identifier: GPL-2.0
/*
 * vblk_fuzz: mutated virtio-blk descriptor chains against /dev/vhost-blk,
 * through libvblk's raw-chain interface, deterministic from a seed.
 *
 * Each batch puts a few chains on queue 0: headers of odd lengths or split
 * over descriptors, status descriptors missing, read-only, not last or of
 * odd size, absurd data lengths, sectors past the capacity, unknown types,
 * descriptor loops and links out of the table, indirect tables of bad
 * sizes or nested, addresses outside the memory table, bare heads and
 * avail index jumps. Every request must complete (with OK, IOERR or UNSUPP
 * or no status at all) or the device must mark the queue broken; a queue
 * that neither answers nor breaks within the timeout is a failure. After
 * each batch a valid write and read-back must succeed (after a reset, that
 * is a new device on the same backend, when the queue broke), and canary
 * bytes in guest memory that no writable descriptor names, plus guard
 * pages mapped just around guest memory, must be unchanged.
 *
 *   vblk_fuzz BACKEND [--iters N] [--seed S] [--batch B] [-v]
 *
 * N requests in all (default 2000). Exit 0, 1 on a failure (the batch
 * seed to reproduce it is printed: --seed S --iters B with that seed).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../tools/libvblk/vblk_int.h"

#define TIMEOUT_MS	10000
#define MAX_CHAIN	48
#define MAX_BATCH	16
#define DATA_BYTES	(256 << 10)
#define TABLE_BYTES	(64 << 10)
#define CANARY_BYTES	(16 << 10)
#define CANARY		0xa5

struct fuzz {
	const char *backend;
	struct vblk_dev *dev;
	uint64_t rng;
	unsigned int qsize;
	uint64_t cap;		/* sectors */
	uint8_t *hdrs;		/* MAX_BATCH headers of 64 bytes */
	uint8_t *status;	/* MAX_BATCH status bytes, 64 apart */
	uint8_t *data;		/* writable data: DATA_BYTES */
	uint8_t *tables;	/* indirect tables: TABLE_BYTES */
	uint8_t *canary;	/* never named by a writable descriptor */
	uint8_t *check;		/* 4 KiB for the after-batch write/read */
	uint8_t *guard[2];	/* pages just outside guest memory, or NULL */
	bool verbose;
	bool plant;		/* self-test: aim one read at the canary */
	bool hard;		/* this chain may break the queue */
	bool tainted;		/* a chain of this batch may reach another's */
	/* counts */
	unsigned long reqs, ok, ioerr, unsupp, nostatus, other, broken, resets,
		      bare, jumps, batches;
};

static uint64_t rnd(struct fuzz *f)
{
	/* xorshift64*: small, deterministic, good enough to pick cases */
	f->rng ^= f->rng >> 12;
	f->rng ^= f->rng << 25;
	f->rng ^= f->rng >> 27;
	return f->rng * 0x2545F4914F6CDD1DULL;
}

static uint64_t below(struct fuzz *f, uint64_t n)
{
	return n ? rnd(f) % n : 0;
}

static bool chance(struct fuzz *f, unsigned int percent)
{
	return below(f, 100) < percent;
}

static uint64_t gpa(struct fuzz *f, const void *p)
{
	return vblk_gpa(f->dev, p);
}

/* Map a canary page at addr if nothing is there (else leave it out). */
static uint8_t *map_guard(void *addr)
{
	uint8_t *p = mmap(addr, VBLK_PAGE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
			  -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (p != addr) {
		munmap(p, VBLK_PAGE);
		return NULL;
	}
	memset(p, CANARY, VBLK_PAGE);
	return p;
}

static void unmap_guards(struct fuzz *f)
{
	int i;

	for (i = 0; i < 2; i++) {
		if (f->guard[i])
			munmap(f->guard[i], VBLK_PAGE);
		f->guard[i] = NULL;
	}
}

static int open_dev(struct fuzz *f)
{
	struct vblk_opts o = { .transport = VBLK_TR_KERNEL, .queue_size = 256,
			       .data_mem = 2 << 20 };
	char err[256];
	int rc;

	rc = vblk_open(&f->dev, f->backend, &o, err, sizeof(err));
	if (rc) {
		printf("# open %s: %s\n", f->backend, err);
		return rc;
	}
	f->qsize = vblk_info(f->dev)->queue_size;
	f->cap = vblk_info(f->dev)->capacity;
	f->hdrs = vblk_mem_alloc(f->dev, 4096);
	f->status = vblk_mem_alloc(f->dev, 4096);
	f->data = vblk_mem_alloc(f->dev, DATA_BYTES);
	f->tables = vblk_mem_alloc(f->dev, TABLE_BYTES);
	f->canary = vblk_mem_alloc(f->dev, CANARY_BYTES);
	f->check = vblk_mem_alloc(f->dev, 4096);
	if (!f->hdrs || !f->status || !f->data || !f->tables || !f->canary ||
	    !f->check) {
		printf("# out of guest memory\n");
		return -ENOMEM;
	}
	memset(f->canary, CANARY, CANARY_BYTES);
	f->guard[0] = map_guard(f->dev->mem.base - VBLK_PAGE);
	f->guard[1] = map_guard(f->dev->mem.base + f->dev->mem.size);
	return 0;
}

static void close_dev(struct fuzz *f)
{
	unmap_guards(f);
	vblk_close(f->dev);
	f->dev = NULL;
}

static int check_canaries(struct fuzz *f)
{
	unsigned int i, g;

	for (i = 0; i < CANARY_BYTES; i++) {
		if (f->canary[i] != CANARY) {
			printf("# canary in guest memory changed at +%u\n", i);
			return -1;
		}
	}
	for (g = 0; g < 2; g++) {
		for (i = 0; f->guard[g] && i < VBLK_PAGE; i++) {
			if (f->guard[g][i] != CANARY) {
				printf("# guard page %s guest memory changed\n",
				       g ? "after" : "before");
				return -1;
			}
		}
	}
	return 0;
}

/* ---- building one hostile chain ---------------------------------------- */

/* An address the chain may name. Writable: only the data area. */
static uint64_t pick_addr(struct fuzz *f, uint32_t len, bool writable)
{
	uint64_t base = f->dev->mem.gpa_base, size = f->dev->mem.size;

	if (f->hard && chance(f, 30)) {
		switch (below(f, 6)) {
		case 0: return 0;
		case 1: return base - 4096;
		case 2: return base + size - below(f, 64);	/* straddles the end */
		case 3: return base + size + below(f, 1 << 20);
		case 4: return ~0ULL - below(f, 4096);
		default: return rnd(f);
		}
	}
	if (!writable && chance(f, 20))
		return base + below(f, size);	/* reads may name anything */
	if (len > DATA_BYTES)
		len = DATA_BYTES;
	if (chance(f, 10))
		return gpa(f, f->data) + below(f, DATA_BYTES - len + 1);
	return gpa(f, f->data) + (below(f, DATA_BYTES - len + 1) & ~511ULL);
}

static uint32_t pick_len(struct fuzz *f)
{
	switch (below(f, 10)) {
	case 0: return 0;
	case 1: return 1 + below(f, 511);
	case 2: return f->hard ? 0xffffffffu - below(f, 2) : 4096;
	case 3: return f->hard ? 1u << below(f, 32) : 1u << below(f, 13);
	case 4: return DATA_BYTES;
	default: return 512 * (1 + below(f, 16));
	}
}

static uint32_t pick_type(struct fuzz *f)
{
	static const uint32_t t[] = {
		VIRTIO_BLK_T_IN, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT,
		VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_GET_ID,
		VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_WRITE_ZEROES,
		2 /* SCSI_CMD */, 5, 7, 9, 0x7fffffff, 0xffffffff,
		VIRTIO_BLK_T_IN | 0x80000000u, VIRTIO_BLK_T_SECURE_ERASE,
	};

	return t[below(f, sizeof(t) / sizeof(t[0]))];
}

static uint64_t pick_sector(struct fuzz *f)
{
	switch (below(f, 8)) {
	case 0: return f->cap;
	case 1: return f->cap - 1;
	case 2: return f->cap + below(f, 1000);
	case 3: return ~0ULL - below(f, 8);
	case 4: return 1ULL << below(f, 64);
	default: return f->cap > 256 ? below(f, f->cap - 256) : 0;
	}
}

struct chain {
	struct vblk_raw_desc d[MAX_CHAIN];
	unsigned int n;
	bool clean;		/* no mutation but type and sector */
	uint32_t type;
	uint64_t sector;
	uint32_t data_len;
};

static void add(struct chain *c, uint64_t addr, uint32_t len, uint16_t flags)
{
	if (c->n == MAX_CHAIN)
		return;
	c->d[c->n].addr = addr;
	c->d[c->n].len = len;
	c->d[c->n].flags = flags;
	c->d[c->n].next = c->n + 1;
	c->n++;
}

static void link_chain(struct chain *c)
{
	unsigned int i;

	for (i = 0; i + 1 < c->n; i++)
		c->d[i].flags |= VRING_DESC_F_NEXT;
}

/* Fill request slot k's header and build its chain in c. */
static void build(struct fuzz *f, unsigned int k, struct chain *c)
{
	struct virtio_blk_outhdr *h = (void *)(f->hdrs + 64 * k);
	uint8_t *st = f->status + 64 * k;
	uint16_t dflag;
	unsigned int i, nseg;
	uint32_t len;

	memset(c, 0, sizeof(*c));
	c->clean = true;
	/* a few chains per batch may break the queue, so most get answers */
	f->hard = chance(f, 5);
	c->type = chance(f, 70) ? (chance(f, 50) ? VIRTIO_BLK_T_IN :
				   VIRTIO_BLK_T_OUT) : pick_type(f);
	c->sector = chance(f, 70) ? below(f, f->cap > 64 ? f->cap - 64 : 1) :
		    pick_sector(f);
	h->type = htole32(c->type);
	h->ioprio = chance(f, 5) ? htole32(rnd(f)) : 0;
	h->sector = htole64(c->sector);
	*st = VBLK_S_NONE;

	/* header */
	if (chance(f, 85)) {
		add(c, gpa(f, h), 16, 0);
	} else if (chance(f, 50)) {
		len = 1 + below(f, 15);		/* split in two */
		add(c, gpa(f, h), len, 0);
		add(c, gpa(f, h) + len, 16 - len, 0);
	} else {
		uint16_t fl = chance(f, 20) ? VRING_DESC_F_WRITE : 0;

		/* writable: only over the headers' own page */
		c->clean = false;
		add(c, fl || chance(f, 70) ? gpa(f, h) : pick_addr(f, 16, false),
		    (uint32_t[]){ 0, 8, 15, 17, 32, 4096, 0xffffffff }[below(f, 7)],
		    fl);
	}

	/* data */
	dflag = c->type == VIRTIO_BLK_T_IN || c->type == VIRTIO_BLK_T_GET_ID ?
		VRING_DESC_F_WRITE : 0;
	nseg = c->type == VIRTIO_BLK_T_FLUSH ? 0 : 1 + below(f, 3);
	if (chance(f, 5)) {
		nseg = below(f, MAX_CHAIN - 4);
		c->clean = false;
	}
	for (i = 0; i < nseg; i++) {
		uint16_t fl = dflag;

		len = chance(f, 85) ? 512 * (1 + below(f, 8)) : pick_len(f);
		if (len % 512 || len > 4096)
			c->clean = false;
		if (f->hard && chance(f, 30)) {
			fl ^= VRING_DESC_F_WRITE;
			c->clean = false;
		}
		add(c, pick_addr(f, len, fl & VRING_DESC_F_WRITE), len, fl);
		if (c->d[c->n - 1].addr % 512 ||
		    c->d[c->n - 1].addr < gpa(f, f->data) ||
		    c->d[c->n - 1].addr >= gpa(f, f->data) + DATA_BYTES)
			c->clean = false;
		c->data_len += len;
	}
	if (c->type == VIRTIO_BLK_T_GET_ID || c->type == VIRTIO_BLK_T_DISCARD ||
	    c->type == VIRTIO_BLK_T_WRITE_ZEROES)
		c->clean = false;	/* no oracle for these here */

	/* status */
	switch (chance(f, 85) ? 0 : below(f, 5)) {
	case 0:
		add(c, gpa(f, st), 1, VRING_DESC_F_WRITE);
		break;
	case 1:		/* missing */
		c->clean = false;
		break;
	case 2:		/* read-only */
		add(c, gpa(f, st), 1, 0);
		c->clean = false;
		break;
	case 3:		/* not last */
		c->clean = false;
		if (!f->hard)
			break;
		if (c->n > 1) {
			struct vblk_raw_desc t = c->d[c->n - 1];

			c->d[c->n - 1] = (struct vblk_raw_desc){ gpa(f, st), 1,
				VRING_DESC_F_WRITE, 0 };
			add(c, t.addr, t.len, t.flags);
		}
		break;
	default:	/* odd size: the status byte leads a larger buffer */
		c->clean = false;
		add(c, gpa(f, st), chance(f, 50) ? 0 : 64, VRING_DESC_F_WRITE);
		break;
	}
	if (!c->n)
		add(c, gpa(f, h), 16, 0);
	link_chain(c);

	/* links */
	if (f->hard && chance(f, 50)) {
		c->clean = false;
		f->tainted = true;
		i = below(f, c->n);
		c->d[i].flags |= VRING_DESC_F_NEXT;
		switch (below(f, 3)) {
		case 0: c->d[i].next = below(f, i + 1); break;	/* loop */
		case 1: c->d[i].next = f->qsize + below(f, 0x10000 - f->qsize);
			break;
		default: c->d[i].next = c->n + below(f, f->qsize); break;
		}
	}
	if (f->hard && chance(f, 40)) {
		c->clean = false;
		f->tainted = true;
		c->d[below(f, c->n)].flags ^= 1u << below(f, 16);
	}
}

/* Move the chain into indirect table k (maybe damaged): c gets one entry. */
static void make_indirect(struct fuzz *f, unsigned int k, struct chain *c)
{
	struct vring_desc *t = (void *)(f->tables + 4096 * k);
	uint32_t len = c->n * sizeof(*t);
	unsigned int i;
	uint16_t flags = VRING_DESC_F_INDIRECT;
	uint64_t addr = gpa(f, t);

	for (i = 0; i < c->n; i++) {
		t[i].addr = htole64(c->d[i].addr);
		t[i].len = htole32(c->d[i].len);
		t[i].flags = htole16(c->d[i].flags);
		t[i].next = htole16(c->d[i].next);
	}
	if (f->hard) {
		c->clean = false;
		f->tainted = true;
		switch (below(f, 7)) {
		case 0: len = 0; break;
		case 1: len += 1 + below(f, 15); break;
		case 2: len = 0xfffffff0u; break;
		case 3: len = 4096 * 2; break;		/* runs into table k+1 */
		case 4:		/* nested */
			t[below(f, c->n)].flags |= htole16(VRING_DESC_F_INDIRECT);
			break;
		case 5:
			flags |= VRING_DESC_F_NEXT | (chance(f, 50) ?
						      VRING_DESC_F_WRITE : 0);
			break;
		default:
			addr = pick_addr(f, len, false);
			break;
		}
	}
	c->n = 0;
	add(c, addr, len, flags);
}

/* Self-test: a valid read whose data lands on the canary. */
static void plant_canary(struct fuzz *f, struct chain *c)
{
	struct virtio_blk_outhdr *h = (void *)f->hdrs;

	h->type = htole32(VIRTIO_BLK_T_IN);
	h->sector = 0;
	c->n = 0;
	c->clean = false;
	add(c, gpa(f, h), 16, 0);
	add(c, gpa(f, f->canary), 4096, VRING_DESC_F_WRITE);
	add(c, gpa(f, f->status), 1, VRING_DESC_F_WRITE);
	link_chain(c);
}

/* ---- running batches -------------------------------------------------- */

static void count_status(struct fuzz *f, uint8_t s)
{
	switch (s) {
	case VIRTIO_BLK_S_OK: f->ok++; break;
	case VIRTIO_BLK_S_IOERR: f->ioerr++; break;
	case VIRTIO_BLK_S_UNSUPP: f->unsupp++; break;
	case VBLK_S_NONE: f->nostatus++; break;
	default: f->other++; break;
	}
}

/* What a clean chain must get back. */
static int oracle(struct fuzz *f, const struct chain *c, uint8_t s)
{
	uint8_t want;

	if (!c->clean || f->tainted)
		return s == VIRTIO_BLK_S_OK || s == VIRTIO_BLK_S_IOERR ||
		       s == VIRTIO_BLK_S_UNSUPP || s == VBLK_S_NONE ? 0 : -1;
	switch (c->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		/* as virtio-blk devices judge it: a 0-byte I/O at the end is OK */
		want = c->sector > f->cap || c->data_len / 512 > f->cap - c->sector ?
		       VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
		break;
	case VIRTIO_BLK_T_FLUSH:
		want = VIRTIO_BLK_S_OK;
		break;
	case 2: case 5: case 7: case 9: case 0x7fffffff: case 0xffffffff:
	case VIRTIO_BLK_T_IN | 0x80000000u: case VIRTIO_BLK_T_SECURE_ERASE:
		want = VIRTIO_BLK_S_UNSUPP;
		break;
	default:
		return 0;
	}
	if (s == want)
		return 0;
	printf("# clean type %u sector %llu len %u: got %s, want %s\n", c->type,
	       (unsigned long long)c->sector, c->data_len, vblk_status_name(s),
	       vblk_status_name(want));
	return -1;
}

/* A valid write of a random pattern and its read-back. */
static int still_works(struct fuzz *f)
{
	struct iovec iov = { f->check, 4096 };
	struct vblk_req r = { .type = VIRTIO_BLK_T_OUT, .iov = &iov, .iovcnt = 1 };
	uint8_t pat = rnd(f);
	int rc;

	r.sector = below(f, f->cap / 8) * 8;
	memset(f->check, pat, 4096);
	rc = vblk_do(f->dev, 0, &r, TIMEOUT_MS);
	if (rc || r.status != VIRTIO_BLK_S_OK) {
		printf("# valid write afterwards: rc %d status %s\n", rc,
		       vblk_status_name(r.status));
		return -1;
	}
	memset(f->check, ~pat, 4096);
	r.type = VIRTIO_BLK_T_IN;
	rc = vblk_do(f->dev, 0, &r, TIMEOUT_MS);
	if (rc || r.status != VIRTIO_BLK_S_OK) {
		printf("# valid read afterwards: rc %d status %s\n", rc,
		       vblk_status_name(r.status));
		return -1;
	}
	for (rc = 0; rc < 4096; rc++) {
		if (f->check[rc] != pat) {
			printf("# read back differs at %d\n", rc);
			return -1;
		}
	}
	return 0;
}

static int reset(struct fuzz *f)
{
	close_dev(f);
	f->resets++;
	return open_dev(f);
}

/* One batch of up to nreq requests; 0, or -1 on a failure. */
static int batch(struct fuzz *f, unsigned int nreq)
{
	static struct vblk_req r[MAX_BATCH];
	struct chain c[MAX_BATCH];
	struct vblk_req *done[MAX_BATCH];
	unsigned int k, sub = 0, got = 0, i;
	bool broken = false, tamper = false;
	int rc;

	f->batches++;
	f->tainted = false;
	for (k = 0; k < nreq; k++) {
		build(f, k, &c[k]);
		if (f->dev->indirect && chance(f, 15))
			make_indirect(f, k, &c[k]);
		if (f->plant && k == 0)
			plant_canary(f, &c[k]);
		r[k] = (struct vblk_req){ .raw_status = f->status + 64 * k,
					  .priv = &c[k] };
		rc = vblk_raw_submit(f->dev, 0, c[k].d, c[k].n, &r[k]);
		if (rc == -EAGAIN)
			break;
		if (rc) {
			printf("# raw submit: %d\n", rc);
			return -1;
		}
		sub++;
		f->reqs++;
	}
	if (chance(f, 2)) {
		f->tainted = tamper = true;
		/* bare heads: a stale descriptor, or an index jump past the ring */
		unsigned int n = chance(f, 50) ? 1 : f->qsize + 1 + below(f, 8);

		for (i = 0; i < n; i++)
			vblk_raw_avail(f->dev, 0, chance(f, 50) ? below(f, f->qsize) :
				       rnd(f));
		if (n > 1)
			f->jumps++;
		else
			f->bare++;
	}
	vblk_kick(f->dev, 0);
	while (got < sub) {
		rc = vblk_reap(f->dev, 0, done, MAX_BATCH, 1, TIMEOUT_MS);
		if (rc < 0 || vblk_broken(f->dev, 0)) {
			broken = true;
			break;
		}
		if (rc == 0) {
			printf("# %u of %u requests neither completed nor broke the queue in %d ms\n",
			       sub - got, sub, TIMEOUT_MS);
			return -1;
		}
		for (i = 0; i < (unsigned int)rc; i++) {
			struct chain *ch = done[i]->priv;

			count_status(f, done[i]->status);
			if (oracle(f, ch, done[i]->status))
				return -1;
		}
		got += rc;
	}
	if (check_canaries(f))
		return -1;
	if (broken || tamper) {
		/* after bare heads the ring is no longer the driver's: reset */
		f->broken += broken;
		if (f->verbose)
			printf("# batch %lu: queue broken (%s), reset\n", f->batches,
			       vblk_errmsg(f->dev));
		if (reset(f))
			return -1;
	}
	return still_works(f);
}

static void usage(FILE *o)
{
	fprintf(o, "usage: vblk_fuzz BACKEND [--iters N] [--seed S] [--batch B] [-v] [--plant-canary]\n"
		"  mutated descriptor chains against /dev/vhost-blk (N requests in all,\n"
		"  B per batch, default 2000 and 8); deterministic from S\n"
		"  --plant-canary: self-test, a read into the canary must be caught\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "iters", 1, NULL, 'n' }, { "seed", 1, NULL, 's' },
		{ "batch", 1, NULL, 'b' }, { "verbose", 0, NULL, 'v' },
		{ "plant-canary", 0, NULL, 'p' },
		{ "help", 0, NULL, 'h' }, { 0 }
	};
	struct fuzz f = { 0 };
	unsigned long iters = 2000, seed = 1, bsize = 8, left;
	uint64_t bseed;
	int opt, rc = 0;

	while ((opt = getopt_long(argc, argv, "n:s:b:vh", lo, NULL)) != -1) {
		switch (opt) {
		case 'n': iters = strtoul(optarg, NULL, 0); break;
		case 's': seed = strtoul(optarg, NULL, 0); break;
		case 'b': bsize = strtoul(optarg, NULL, 0); break;
		case 'v': f.verbose = true; break;
		case 'p': f.plant = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind + 1 != argc || !bsize || bsize > MAX_BATCH) {
		usage(stderr);
		return 2;
	}
	f.backend = argv[optind];
	if (open_dev(&f))
		return 1;
	printf("# vblk_fuzz %s --iters %lu --seed %lu --batch %lu: capacity %llu, queue %u, indirect %d, guards %d/%d\n",
	       f.backend, iters, seed, bsize, (unsigned long long)f.cap, f.qsize,
	       f.dev->indirect, !!f.guard[0], !!f.guard[1]);
	for (left = iters; left; ) {
		unsigned long n = left < bsize ? left : bsize;

		/* each batch from its own seed: a failure names it */
		bseed = seed * 1000003ULL + f.batches + 1;
		f.rng = bseed * 0x9E3779B97F4A7C15ULL | 1;
		if (batch(&f, n)) {
			printf("# FAILED in batch %lu; reproduce: vblk_fuzz %s --seed %lu --iters %lu --batch %lu -v\n",
			       f.batches, f.backend, seed, (f.batches) * bsize, bsize);
			rc = 1;
			break;
		}
		left -= n;
	}
	printf("# vhost-blk fuzz: %lu requests in %lu batches: %lu OK, %lu IOERR, %lu UNSUPP, %lu without status, %lu other; queue broken %lu times (%lu resets), %lu bare heads, %lu avail jumps\n",
	       f.reqs, f.batches, f.ok, f.ioerr, f.unsupp, f.nostatus, f.other,
	       f.broken, f.resets, f.bare, f.jumps);
	if (f.other) {
		printf("# %lu status bytes that are no virtio status\n", f.other);
		rc = 1;
	}
	if (f.dev)
		close_dev(&f);
	return rc;
}
