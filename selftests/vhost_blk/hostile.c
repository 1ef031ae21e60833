// SPDX-License-Identifier: GPL-2.0
/*
 * hostile: malformed requests against /dev/vhost-blk, each with the
 * answer it must get: a status (IOERR, UNSUPP), a completion without a
 * status (no writable byte to put it in), or the virtqueue marked broken
 * (the error eventfd fires and nothing completes). After every case that
 * does not break the queue, a valid request on the same queue must still
 * succeed; after one that does, a new device on the same backend must.
 *
 *   hostile BACKEND [CASE...]     (KTAP on stdout; exit 0, 1 on failure)
 *   hostile BACKEND --flood N     N unknown-type requests, all UNSUPP
 *   hostile BACKEND --head-reuse N  one head offered N rings over
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/virtio_ring.h>

#include "../../tools/libvblk/vblk.h"

#define TIMEOUT_MS	10000
#define MAX_DESC	300

enum expect { EXP_STATUS, EXP_NOSTATUS, EXP_BROKEN };

struct ctx {
	const char *backend;
	bool readonly;
	bool no_size_max;	/* the next device: SIZE_MAX not negotiated */
	struct vblk_dev *dev;
	struct vblk_raw_desc d[MAX_DESC];
	unsigned int n;
	uint8_t *status;	/* where the device must put the status */
	struct virtio_blk_outhdr *hdr;
	uint8_t *buf;		/* 1 MiB of guest memory for data */
	uint8_t *table;		/* 64 KiB for indirect tables and segments */
	char why[512];
};

static uint64_t gpa(struct ctx *c, const void *p)
{
	return vblk_gpa(c->dev, p);
}

static void add(struct ctx *c, const void *p, uint32_t len, uint16_t flags)
{
	c->d[c->n].addr = gpa(c, p);
	c->d[c->n].len = len;
	c->d[c->n].flags = flags;
	c->d[c->n].next = c->n + 1;
	c->n++;
}

/* Link the chain (NEXT on all but the last) unless the case did itself. */
static void link_chain(struct ctx *c)
{
	unsigned int i;

	for (i = 0; i + 1 < c->n; i++)
		c->d[i].flags |= VRING_DESC_F_NEXT;
}

static void header(struct ctx *c, uint32_t type, uint64_t sector)
{
	c->hdr->type = htole32(type);
	c->hdr->ioprio = 0;
	c->hdr->sector = htole64(sector);
	c->n = 0;
}

static int open_dev_qs(struct ctx *c, bool ro, unsigned int qsize)
{
	struct vblk_opts o = { .transport = VBLK_TR_KERNEL, .readonly = ro,
			       .queue_size = qsize, .data_mem = 4 << 20,
			       .no_size_max = c->no_size_max };
	char err[256];
	int rc;

	rc = vblk_open(&c->dev, c->backend, &o, err, sizeof(err));
	if (rc) {
		snprintf(c->why, sizeof(c->why), "open: %s", err);
		return rc;
	}
	c->readonly = ro;
	c->hdr = vblk_mem_alloc(c->dev, 4096);
	c->status = vblk_mem_alloc(c->dev, 4096);
	c->buf = vblk_mem_alloc(c->dev, 1 << 20);
	c->table = vblk_mem_alloc(c->dev, 64 << 10);
	if (!c->hdr || !c->status || !c->buf || !c->table) {
		snprintf(c->why, sizeof(c->why), "out of guest memory");
		return -ENOMEM;
	}
	return 0;
}

static int open_dev(struct ctx *c, bool ro)
{
	return open_dev_qs(c, ro, 512);
}

static void close_dev(struct ctx *c)
{
	vblk_close(c->dev);
	c->dev = NULL;
}

/* A plain valid read on queue 0 must still work. */
static int still_works(struct ctx *c)
{
	struct iovec iov = { c->buf, 4096 };
	struct vblk_req r = { .type = VIRTIO_BLK_T_IN, .sector = 0,
			      .iov = &iov, .iovcnt = 1 };
	int rc = vblk_do(c->dev, 0, &r, TIMEOUT_MS);

	if (rc || r.status != VIRTIO_BLK_S_OK) {
		snprintf(c->why, sizeof(c->why),
			 "valid read afterwards: rc %d status %s", rc,
			 vblk_status_name(r.status));
		return -1;
	}
	return 0;
}

static int submit_and_wait(struct ctx *c, struct vblk_req *r)
{
	struct vblk_req *done;
	int rc;

	r->raw_status = c->status;
	*c->status = VBLK_S_NONE;
	rc = vblk_raw_submit(c->dev, 0, c->d, c->n, r);
	if (!rc)
		rc = vblk_kick(c->dev, 0);
	if (rc)
		return rc;
	rc = vblk_reap(c->dev, 0, &done, 1, 1, TIMEOUT_MS);
	if (rc == 0)
		return -ETIMEDOUT;
	return rc < 0 ? rc : 0;
}

/* Submit the chain built in c and judge the outcome. */
static int expect(struct ctx *c, enum expect e, uint8_t status)
{
	struct vblk_req r = { 0 };
	int rc = submit_and_wait(c, &r);

	switch (e) {
	case EXP_BROKEN:
		if (rc == -EIO && vblk_broken(c->dev, 0))
			return 0;
		snprintf(c->why, sizeof(c->why),
			 "expected a broken vq, got rc %d status %s", rc,
			 rc ? "-" : vblk_status_name(r.status));
		return -1;
	case EXP_NOSTATUS:
		if (rc || r.used_len || *c->status != VBLK_S_NONE) {
			snprintf(c->why, sizeof(c->why),
				 "expected completion without status, got rc %d used %u byte 0x%02x",
				 rc, r.used_len, *c->status);
			return -1;
		}
		return still_works(c);
	case EXP_STATUS:
		if (rc || r.status != status) {
			snprintf(c->why, sizeof(c->why),
				 "expected %s, got rc %d status %s", vblk_status_name(status),
				 rc, rc ? "-" : vblk_status_name(r.status));
			return -1;
		}
		return still_works(c);
	}
	return -1;
}

static uint64_t cap(struct ctx *c)
{
	return vblk_info(c->dev)->capacity;
}

/* ---- the cases ---------------------------------------------------------- */

static int short_header(struct ctx *c)
{
	header(c, VIRTIO_BLK_T_IN, 0);
	add(c, c->hdr, 8, 0);
	add(c, c->buf, 4096, VRING_DESC_F_WRITE);
	add(c, c->status, 1, VRING_DESC_F_WRITE);
	link_chain(c);
	return expect(c, EXP_STATUS, VIRTIO_BLK_S_IOERR);
}

static int long_header(struct ctx *c)
{
	/* 16 header bytes plus 16 more device-readable bytes on a read */
	header(c, VIRTIO_BLK_T_IN, 0);
	add(c, c->hdr, 32, 0);
	add(c, c->buf, 4096, VRING_DESC_F_WRITE);
	add(c, c->status, 1, VRING_DESC_F_WRITE);
	link_chain(c);
	return expect(c, EXP_STATUS, VIRTIO_BLK_S_IOERR);
}

static int split_header(struct ctx *c)
{
	/* any layout: a header in two descriptors is valid */
	header(c, VIRTIO_BLK_T_IN, 0);
	add(c, c->hdr, 4, 0);
	add(c, (uint8_t *)c->hdr + 4, 12, 0);
	add(c, c->buf, 4096, VRING_DESC_F_WRITE);
	add(c, c->status, 1, VRING_DESC_F_WRITE);
	link_chain(c);
	return expect(c, EXP_STATUS, VIRTIO_BLK_S_OK);
}

static int status_missing(struct ctx *c)
{
	header(c, VIRTIO_BLK_T_FLUSH, 0);
	add(c, c->hdr, 16, 0);
	link_chain(c);
	return expect(c, EXP_NOSTATUS, 0);
}

static int status_readonly(struct ctx *c)
{
	/* a write whose status descriptor is device-readable */
	header(c, VIRTIO_BLK_T_OUT, 8);
	add(c, c->hdr, 16, 0);
	add(c, c->buf, 4096, 0);
	add(c, c->status, 1, 0);
	link_chain(c);
	if (c->readonly)
		return 0;
	return expect(c, EXP_NOSTATUS, 0);
}

static int status_not_last(struct ctx *c)
{
	uint8_t *status = c->status;
	int rc;

	/* status byte first among the writable ones: the device takes the
	 * last writable byte, which leaves 4096 bytes of data in segments
	 * of 1 and 4095 bytes: a valid read (only the total length must be
	 * a multiple of the block size), its status in that last byte.
	 */
	header(c, VIRTIO_BLK_T_IN, 0);
	add(c, c->hdr, 16, 0);
	add(c, c->table, 1, VRING_DESC_F_WRITE);
	add(c, c->buf, 4096, VRING_DESC_F_WRITE);
	link_chain(c);
	c->status = c->buf + 4095;
	rc = expect(c, EXP_STATUS, VIRTIO_BLK_S_OK);
	c->status = status;
	return rc;
}

static int in_with_readable_data(struct ctx *c)
{
	header(c, VIRTIO_BLK_T_IN, 0);
	add(c, c->hdr, 16, 0);
	add(c, c->buf, 4096, 0);
	add(c, c->status, 1, VRING_DESC_F_WRITE);
	link_chain(c);
	return expect(c, EXP_STATUS, VIRTIO_BLK_S_IOERR);
}

static int out_with_writable_data(struct ctx *c)
{
	header(c, VIRTIO_BLK_T_OUT, 0);
	add(c, c->hdr, 16, 0);
	add(c, c->buf, 4096, VRING_DESC_F_WRITE);
	add(c, c->status, 1, VRING_DESC_F_WRITE);
	link_chain(c);
	return expect(c, EXP_STATUS, VIRTIO_BLK_S_IOERR);
}

static int flush_with_data(struct ctx *c)
{
	header(c, VIRTIO_BLK_T_FLUSH, 0);
	add(c, c->hdr, 16, 0);
	add(c, c->buf, 512, VRING_DESC_F_WRITE);
	add(c, c->status, 1, VRING_DESC_F_WRITE);
	link_chain(c);
	return expect(c, EXP_STATUS, VIRTIO_BLK_S_IOERR);
}

static int read_at_capacity(struct ctx *c)
{
	header(c, VIRTIO_BLK_T_IN, cap(c));
	add(c, c->hdr, 16, 0);
	add(c, c->buf, 512, VRING_DESC_F_WRITE);
	add(c, c->status, 1, VRING_DESC_F_WRITE);
	link_chain(c);
	return expect(c, EXP_STATUS, VIRTIO_BLK_S_IOERR);
}

static int read_across_capacity(struct ctx *c)
{
	header(c, VIRTIO_BLK_T_IN, cap(c) - 1);
	add(c, c->hdr, 16, 0);
	add(c, c->buf, 4096, VRING_DESC_F_WRITE);
	add(c, c->status, 1, VRING_DESC_F_WRITE);
	link_chain(c);
	return expect(c, EXP_STATUS, VIRTIO_BLK_S_IOERR);
}

static int write_sector_overflow(struct ctx *c)
{
	/* sector + length wraps around 2^64 */
	header(c, VIRTIO_BLK_T_OUT, UINT64_MAX - 3);
	add(c, c->hdr, 16, 0);
	add(c, c->buf, 4096, 0);
	add(c, c->status, 1, VRING_DESC_F_WRITE);
	link_chain(c);
	return expect(c, EXP_STATUS, VIRTIO_BLK_S_IOERR);
}

static int too_many_segments(struct ctx *c)
{
	unsigned int i, nseg = vblk_info(c->dev)->seg_max + 1;

	if (nseg + 2 > MAX_DESC || nseg * 512 > (1 << 20)) {
		snprintf(c->why, sizeof(c->why), "seg_max %u too large to test",
			 nseg - 1);
		return -1;
	}
	header(c, VIRTIO_BLK_T_IN, 0);
	add(c, c->hdr, 16, 0);
	for (i = 0; i < nseg; i++)
		add(c, c->buf + i * 512, 512, VRING_DESC_F_WRITE);
	add(c, c->status, 1, VRING_DESC_F_WRITE);
	link_chain(c);
	return expect(c, EXP_STATUS, VIRTIO_BLK_S_IOERR);
}

static int segment_above_size_max(struct ctx *c)
{
	uint32_t sm = vblk_info(c->dev)->size_max;

	if (!sm || sm >= (1 << 20)) {
		snprintf(c->why, sizeof(c->why), "size_max %u not testable", sm);
		return -1;
	}
	header(c, VIRTIO_BLK_T_IN, 0);
	add(c, c->hdr, 16, 0);
	add(c, c->buf, sm + 512, VRING_DESC_F_WRITE);
	add(c, c->status, 1, VRING_DESC_F_WRITE);
	link_chain(c);
	return expect(c, EXP_STATUS, VIRTIO_BLK_S_IOERR);
}

/*
 * Valid: a driver that did not accept VIRTIO_BLK_F_SIZE_MAX (OVMF) may
 * put a whole request in one segment, here 512 KiB at an unaligned
 * address (bounced); the module refused it before.
 */
static int big_segment_no_size_max(struct ctx *c)
{
	header(c, VIRTIO_BLK_T_IN, 0);
	add(c, c->hdr, 16, 0);
	add(c, c->buf + 8, 512 << 10, VRING_DESC_F_WRITE);
	add(c, c->status, 1, VRING_DESC_F_WRITE);
	link_chain(c);
	return expect(c, EXP_STATUS, VIRTIO_BLK_S_OK);
}

/* ... up to seg_max x size_max (16 MiB) in all: 17 MiB is refused. */
static int request_above_max_no_size_max(struct ctx *c)
{
	unsigned int i;

	header(c, VIRTIO_BLK_T_IN, 0);
	add(c, c->hdr, 16, 0);
	for (i = 0; i < 17; i++)	/* the same MiB, 17 times over */
		add(c, c->buf, 1 << 20, VRING_DESC_F_WRITE);
	add(c, c->status, 1, VRING_DESC_F_WRITE);
	link_chain(c);
	return expect(c, EXP_STATUS, VIRTIO_BLK_S_IOERR);
}

/* Valid: only the sector and the total length are bound by blk_size. */
static int unaligned_address(struct ctx *c)
{
	header(c, VIRTIO_BLK_T_IN, 0);
	add(c, c->hdr, 16, 0);
	add(c, c->buf + 1, 4096, VRING_DESC_F_WRITE);
	add(c, c->status, 1, VRING_DESC_F_WRITE);
	link_chain(c);
	return expect(c, EXP_STATUS, VIRTIO_BLK_S_OK);
}

static int misaligned_length(struct ctx *c)
{
	header(c, VIRTIO_BLK_T_IN, 0);
	add(c, c->hdr, 16, 0);
	add(c, c->buf, 100, VRING_DESC_F_WRITE);
	add(c, c->status, 1, VRING_DESC_F_WRITE);
	link_chain(c);
	return expect(c, EXP_STATUS, VIRTIO_BLK_S_IOERR);
}

static int unknown_type(struct ctx *c)
{
	header(c, 0x42, 0);
	add(c, c->hdr, 16, 0);
	add(c, c->status, 1, VRING_DESC_F_WRITE);
	link_chain(c);
	return expect(c, EXP_STATUS, VIRTIO_BLK_S_UNSUPP);
}

static int scsi_cmd(struct ctx *c)
{
	header(c, 2 /* VIRTIO_BLK_T_SCSI_CMD */, 0);
	add(c, c->hdr, 16, 0);
	add(c, c->buf, 512, VRING_DESC_F_WRITE);
	add(c, c->status, 1, VRING_DESC_F_WRITE);
	link_chain(c);
	return expect(c, EXP_STATUS, VIRTIO_BLK_S_UNSUPP);
}

static int range_req(struct ctx *c, uint32_t type, uint64_t sector,
		     uint32_t nsect, uint32_t flags, uint32_t seglen)
{
	struct virtio_blk_discard_write_zeroes *s = (void *)c->table;

	s->sector = htole64(sector);
	s->num_sectors = htole32(nsect);
	s->flags = htole32(flags);
	header(c, type, 0);
	add(c, c->hdr, 16, 0);
	add(c, s, seglen, 0);
	add(c, c->status, 1, VRING_DESC_F_WRITE);
	link_chain(c);
	return 0;
}

static int wz_unknown_flags(struct ctx *c)
{
	range_req(c, VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 0x2, 16);
	return expect(c, EXP_STATUS, VIRTIO_BLK_S_UNSUPP);
}

static int discard_with_unmap(struct ctx *c)
{
	range_req(c, VIRTIO_BLK_T_DISCARD, 0, 8,
		  VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP, 16);
	return expect(c, EXP_STATUS, VIRTIO_BLK_S_UNSUPP);
}

/*
 * A backend without discard (config max_discard_sectors 0, e.g. brd on
 * 6.1) answers every discard UNSUPP before looking at it; one with
 * discard must refuse the malformed one with IOERR.
 */
static uint8_t bad_discard_status(struct ctx *c)
{
	return vblk_info(c->dev)->max_discard_sectors ? VIRTIO_BLK_S_IOERR :
							VIRTIO_BLK_S_UNSUPP;
}

static int discard_short_segment(struct ctx *c)
{
	range_req(c, VIRTIO_BLK_T_DISCARD, 0, 8, 0, 15);
	return expect(c, EXP_STATUS, bad_discard_status(c));
}

static int discard_beyond_capacity(struct ctx *c)
{
	range_req(c, VIRTIO_BLK_T_DISCARD, cap(c) - 8, 16, 0, 16);
	return expect(c, EXP_STATUS, bad_discard_status(c));
}

static int wz_beyond_capacity(struct ctx *c)
{
	range_req(c, VIRTIO_BLK_T_WRITE_ZEROES, cap(c), 8, 0, 16);
	return expect(c, EXP_STATUS, VIRTIO_BLK_S_IOERR);
}

static int ro_write(struct ctx *c)
{
	header(c, VIRTIO_BLK_T_OUT, 0);
	add(c, c->hdr, 16, 0);
	add(c, c->buf, 4096, 0);
	add(c, c->status, 1, VRING_DESC_F_WRITE);
	link_chain(c);
	return expect(c, EXP_STATUS, VIRTIO_BLK_S_IOERR);
}

static int ro_discard(struct ctx *c)
{
	range_req(c, VIRTIO_BLK_T_DISCARD, 0, 8, 0, 16);
	return expect(c, EXP_STATUS, bad_discard_status(c));
}

static int ro_write_zeroes(struct ctx *c)
{
	range_req(c, VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 0, 16);
	return expect(c, EXP_STATUS, VIRTIO_BLK_S_IOERR);
}

static int desc_loop(struct ctx *c)
{
	header(c, VIRTIO_BLK_T_IN, 0);
	add(c, c->hdr, 16, 0);
	add(c, c->buf, 512, VRING_DESC_F_WRITE);
	add(c, c->status, 1, VRING_DESC_F_WRITE);
	link_chain(c);
	c->d[2].flags |= VRING_DESC_F_NEXT;
	c->d[2].next = 0;		/* back to the head */
	return expect(c, EXP_BROKEN, 0);
}

static int next_out_of_table(struct ctx *c)
{
	header(c, VIRTIO_BLK_T_IN, 0);
	add(c, c->hdr, 16, 0);
	add(c, c->status, 1, VRING_DESC_F_WRITE);
	link_chain(c);
	c->d[0].next = 0xfff0;		/* beyond the queue size */
	return expect(c, EXP_BROKEN, 0);
}

static int address_outside_memory(struct ctx *c)
{
	header(c, VIRTIO_BLK_T_IN, 0);
	add(c, c->hdr, 16, 0);
	add(c, c->buf, 4096, VRING_DESC_F_WRITE);
	add(c, c->status, 1, VRING_DESC_F_WRITE);
	link_chain(c);
	c->d[1].addr = 0x7ff000000000ULL;
	return expect(c, EXP_BROKEN, 0);
}

static int readable_after_writable(struct ctx *c)
{
	header(c, VIRTIO_BLK_T_IN, 0);
	add(c, c->buf, 512, VRING_DESC_F_WRITE);
	add(c, c->hdr, 16, 0);
	add(c, c->status, 1, VRING_DESC_F_WRITE);
	link_chain(c);
	return expect(c, EXP_BROKEN, 0);
}

static int bad_head(struct ctx *c)
{
	struct vblk_req *done;
	int rc;

	vblk_raw_avail(c->dev, 0, 0xfffe);
	vblk_kick(c->dev, 0);
	rc = vblk_reap(c->dev, 0, &done, 1, 1, TIMEOUT_MS);
	if (rc == -EIO && vblk_broken(c->dev, 0))
		return 0;
	snprintf(c->why, sizeof(c->why), "expected a broken vq, got %d", rc);
	return -1;
}

static struct vring_desc *itable(struct ctx *c, unsigned int i)
{
	return (struct vring_desc *)(c->table + 4096) + i;
}

static void set_idesc(struct ctx *c, unsigned int i, const void *p,
		      uint32_t len, uint16_t flags, uint16_t next)
{
	itable(c, i)->addr = htole64(gpa(c, p));
	itable(c, i)->len = htole32(len);
	itable(c, i)->flags = htole16(flags);
	itable(c, i)->next = htole16(next);
}

static int indirect_loop(struct ctx *c)
{
	header(c, VIRTIO_BLK_T_IN, 0);
	set_idesc(c, 0, c->hdr, 16, VRING_DESC_F_NEXT, 1);
	set_idesc(c, 1, c->buf, 512, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 0);
	c->n = 0;
	add(c, itable(c, 0), 2 * sizeof(struct vring_desc), VRING_DESC_F_INDIRECT);
	return expect(c, EXP_BROKEN, 0);
}

static int indirect_nested(struct ctx *c)
{
	header(c, VIRTIO_BLK_T_IN, 0);
	set_idesc(c, 0, c->hdr, 16, VRING_DESC_F_NEXT, 1);
	set_idesc(c, 1, itable(c, 0), 32, VRING_DESC_F_INDIRECT, 0);
	c->n = 0;
	add(c, itable(c, 0), 2 * sizeof(struct vring_desc), VRING_DESC_F_INDIRECT);
	return expect(c, EXP_BROKEN, 0);
}

static int indirect_bad_length(struct ctx *c)
{
	header(c, VIRTIO_BLK_T_IN, 0);
	set_idesc(c, 0, c->hdr, 16, 0, 0);
	c->n = 0;
	add(c, itable(c, 0), 20, VRING_DESC_F_INDIRECT);	/* not n * 16 */
	return expect(c, EXP_BROKEN, 0);
}

static int valid_indirect(struct ctx *c)
{
	header(c, VIRTIO_BLK_T_IN, 0);
	set_idesc(c, 0, c->hdr, 16, VRING_DESC_F_NEXT, 1);
	set_idesc(c, 1, c->buf, 4096, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2);
	set_idesc(c, 2, c->status, 1, VRING_DESC_F_WRITE, 0);
	c->n = 0;
	add(c, itable(c, 0), 3 * sizeof(struct vring_desc), VRING_DESC_F_INDIRECT);
	return expect(c, EXP_STATUS, VIRTIO_BLK_S_OK);
}

static const struct hcase {
	const char *name;
	int (*fn)(struct ctx *c);
	bool ro;		/* on a read-only backend */
	bool breaks;		/* the vq ends up broken */
	bool no_size_max;	/* SIZE_MAX not negotiated */
} cases[] = {
#define OK(f)		{ #f, f, false, false, false }
#define RO(f)		{ #f, f, true, false, false }
#define BREAKS(f)	{ #f, f, false, true, false }
#define NOSM(f)		{ #f, f, false, false, true }
	OK(valid_indirect),
	OK(split_header),
	OK(short_header),
	OK(long_header),
	OK(status_missing),
	OK(status_readonly),
	OK(status_not_last),
	OK(in_with_readable_data),
	OK(out_with_writable_data),
	OK(flush_with_data),
	OK(read_at_capacity),
	OK(read_across_capacity),
	OK(write_sector_overflow),
	OK(too_many_segments),
	OK(segment_above_size_max),
	NOSM(big_segment_no_size_max),
	NOSM(request_above_max_no_size_max),
	OK(unaligned_address),
	OK(misaligned_length),
	OK(unknown_type),
	OK(scsi_cmd),
	OK(wz_unknown_flags),
	OK(discard_with_unmap),
	OK(discard_short_segment),
	OK(discard_beyond_capacity),
	OK(wz_beyond_capacity),
	RO(ro_write),
	RO(ro_discard),
	RO(ro_write_zeroes),
	BREAKS(desc_loop),
	BREAKS(next_out_of_table),
	BREAKS(address_outside_memory),
	BREAKS(readable_after_writable),
	BREAKS(bad_head),
	BREAKS(indirect_loop),
	BREAKS(indirect_nested),
	BREAKS(indirect_bad_length),
};

static bool selected(const struct hcase *h, int argc, char **argv)
{
	int i;

	if (argc <= 2)
		return true;
	for (i = 2; i < argc; i++)
		if (!strcmp(argv[i], h->name))
			return true;
	return false;
}

static int run_case(struct ctx *c, const struct hcase *h)
{
	int rc;

	c->why[0] = 0;
	c->no_size_max = h->no_size_max;
	rc = open_dev(c, h->ro);
	c->no_size_max = false;
	if (rc)
		return -1;
	rc = h->fn(c);
	close_dev(c);
	/* a new device on the same backend serves again */
	if (!rc && h->breaks) {
		if (open_dev(c, false))
			return -1;
		rc = still_works(c);
		close_dev(c);
	}
	return rc;
}

/* Many refused requests in batches: every one must come back UNSUPP. */
static int flood(struct ctx *c, unsigned int total)
{
	static struct vblk_req r[256];
	struct vblk_req *done[256];
	unsigned int i, batch, got, bad = 0;
	int rc;

	if (open_dev(c, false)) {
		printf("%s\n", c->why);
		return 1;
	}
	header(c, 0x42, 0);
	add(c, c->hdr, 16, 0);
	add(c, c->status, 1, VRING_DESC_F_WRITE);
	link_chain(c);
	while (total) {
		batch = total < 64 ? total : 64;
		for (i = 0; i < batch; i++) {
			/* each request its own status byte */
			c->d[1].addr = gpa(c, c->table + i);
			r[i] = (struct vblk_req){ .raw_status = c->table + i };
			c->table[i] = VBLK_S_NONE;
			if (vblk_raw_submit(c->dev, 0, c->d, c->n, &r[i]))
				return 1;
		}
		vblk_kick(c->dev, 0);
		for (got = 0; got < batch; got += rc) {
			rc = vblk_reap(c->dev, 0, done, 256, 1, TIMEOUT_MS);
			if (rc <= 0) {
				printf("no completion (%d)\n", rc);
				return 1;
			}
			for (i = 0; i < (unsigned int)rc; i++)
				bad += done[i]->status != VIRTIO_BLK_S_UNSUPP;
		}
		total -= batch;
	}
	close_dev(c);
	printf("%u requests not answered UNSUPP\n", bad);
	return bad ? 1 : 0;
}

/*
 * One head offered over and over (the vhost core does not track heads
 * the device already took): a ring of REUSE_QS entries all naming the
 * same 4 KiB read, offered again each time the device has read them all
 * (its avail event caught up), for @rounds rounds, on a slow backend
 * (dm-delay) so the reads stay in flight. The device must never take
 * more than the ring size without completing them: between our avail
 * index and the used index there are at most the taken-not-completed
 * requests plus one ring of offered-not-taken ones. Then everything
 * offered completes, and a new device on the same backend works.
 */
#define REUSE_QS	8
static int head_reuse(struct ctx *c, unsigned int rounds)
{
	uint16_t avail, used, ev, gap, maxgap = 0;
	unsigned int i, pushed = 0, waited = 0;
	struct vblk_req r = { 0 };

	if (open_dev_qs(c, false, REUSE_QS)) {
		printf("%s\n", c->why);
		return 1;
	}
	header(c, VIRTIO_BLK_T_IN, 0);
	add(c, c->hdr, 16, 0);
	add(c, c->buf, 4096, VRING_DESC_F_WRITE);
	add(c, c->status, 1, VRING_DESC_F_WRITE);
	link_chain(c);
	r.raw_status = c->status;
	/* a fresh queue: the first chain starts at descriptor 0 */
	if (vblk_raw_submit(c->dev, 0, c->d, c->n, &r))
		return 1;
	for (i = 1; i < REUSE_QS; i++)
		vblk_raw_avail(c->dev, 0, 0);
	vblk_kick(c->dev, 0);
	while (pushed < rounds && waited < 30000 && !vblk_broken(c->dev, 0)) {
		vblk_raw_ring_state(c->dev, 0, &avail, &used, &ev);
		gap = avail - used;
		if (gap > maxgap)
			maxgap = gap;
		if (ev == avail) {	/* all read: offer the ring again */
			for (i = 0; i < REUSE_QS; i++)
				vblk_raw_avail(c->dev, 0, 0);
			vblk_kick(c->dev, 0);
			pushed++;
		}
		usleep(500);
		waited++;
	}
	/* everything offered completes */
	for (waited = 0; waited < 60000; waited++) {
		vblk_raw_ring_state(c->dev, 0, &avail, &used, &ev);
		if (used == avail || vblk_broken(c->dev, 0))
			break;
		usleep(1000);
	}
	printf("# %u rounds of %u offers of one head; at most %u between avail and used (ring %u); used %u of %u\n",
	       pushed, REUSE_QS, maxgap, REUSE_QS, used, avail);
	if (pushed < rounds) {
		printf("the device stopped reading the ring after %u rounds\n",
		       pushed);
		return 1;
	}
	if (vblk_broken(c->dev, 0) || used != avail) {
		printf("not all offered requests completed (queue %s)\n",
		       vblk_broken(c->dev, 0) ? "broken" : "stuck");
		return 1;
	}
	if (maxgap > 2 * REUSE_QS) {
		printf("the device took more than the ring size into flight\n");
		return 1;
	}
	close_dev(c);
	if (open_dev(c, false) || still_works(c)) {
		printf("%s\n", c->why);
		return 1;
	}
	close_dev(c);
	return 0;
}

int main(int argc, char **argv)
{
	struct ctx c = { 0 };
	unsigned int i, n = 0, fails = 0;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		printf("usage: hostile BACKEND [CASE...]\ncases:");
		for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
			printf(" %s", cases[i].name);
		printf("\n");
		return argc < 2 ? 2 : 0;
	}
	c.backend = argv[1];
	if (argc == 4 && !strcmp(argv[2], "--flood"))
		return flood(&c, atoi(argv[3]));
	if (argc == 4 && !strcmp(argv[2], "--head-reuse"))
		return head_reuse(&c, atoi(argv[3]));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		n += selected(&cases[i], argc, argv);
	printf("TAP version 13\n1..%u\n", n);
	for (i = 0, n = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (!selected(&cases[i], argc, argv))
			continue;
		n++;
		if (run_case(&c, &cases[i])) {
			printf("# %s: %s\nnot ok %u %s\n", cases[i].name, c.why,
			       n, cases[i].name);
			fails++;
		} else {
			printf("ok %u %s\n", n, cases[i].name);
		}
		fflush(stdout);
	}
	printf("# totals: pass:%u fail:%u skip:0\n", n - fails, fails);
	return fails ? 1 : 0;
}
