// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-scsi requests: a virtio-blk request of the library API becomes a
 * virtio_scsi_cmd_req with a SCSI CDB; the virtio_scsi_cmd_resp the device
 * writes back becomes a virtio-blk status. Nothing the device wrote is
 * trusted: the response is copied once, then checked.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "scsi.h"

#define OP_SYNCHRONIZE_CACHE_10	0x35
#define OP_UNMAP		0x42
#define OP_READ_16		0x88
#define OP_WRITE_16		0x8a
#define OP_WRITE_SAME_16	0x93
#define OP_INQUIRY		0x12
#define WRITE_SAME_UNMAP	0x08
#define UNMAP_PARAM_BYTES	24
#define VPD_UNIT_SERIAL		0x80

enum xdir { X_NONE, X_IN, X_OUT };

/* A translated request: the CDB and where its data is. */
struct xlat {
	uint8_t cdb[16];
	enum xdir dir;
	void *buf;		/* our own buffer; NULL: the request's iov */
	uint32_t buf_len;
};

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	put_be16(p, v >> 16);
	put_be16(p + 2, v);
}

static void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, v >> 32);
	put_be32(p + 4, v);
}

static uint8_t *slot_area(struct vblk_dev *dev, struct vblk_vq *vq,
			  unsigned int slot)
{
	struct scsi_state *s = dev->tr;

	return s->area[vq->idx - dev->vq_base] +
	       (size_t)slot * SCSI_SLOT_BYTES;
}

static uint64_t iov_bytes(const struct vblk_req *req)
{
	uint64_t n = 0;
	unsigned int i;

	for (i = 0; i < req->iovcnt; i++)
		n += req->iov[i].iov_len;
	return n;
}

/* 512-byte sectors and bytes to logical blocks: whole blocks only. */
static int to_blocks(struct vblk_dev *dev, uint64_t sector, uint64_t bytes,
		     uint64_t *lba, uint32_t *nblk)
{
	struct scsi_state *s = dev->tr;
	uint64_t mask = (1ULL << s->blk_shift) - 1;

	if (sector > UINT64_MAX >> 9 || (sector << 9) & mask || bytes & mask ||
	    bytes >> s->blk_shift > UINT32_MAX)
		return vblk_fail(dev, -EINVAL,
				 "sector %llu, %llu bytes: not whole %u-byte blocks",
				 (unsigned long long)sector,
				 (unsigned long long)bytes, 1U << s->blk_shift);
	*lba = (sector << 9) >> s->blk_shift;
	*nblk = bytes >> s->blk_shift;
	return 0;
}

static int xlat_rw(struct vblk_dev *dev, const struct vblk_req *req,
		   struct xlat *x)
{
	bool in = req->type == VIRTIO_BLK_T_IN;
	uint64_t lba;
	uint32_t nblk;
	int rc;

	rc = to_blocks(dev, req->sector, iov_bytes(req), &lba, &nblk);
	if (rc)
		return rc;
	x->cdb[0] = in ? OP_READ_16 : OP_WRITE_16;
	put_be64(x->cdb + 2, lba);
	put_be32(x->cdb + 10, nblk);
	x->dir = in ? X_IN : X_OUT;
	return 0;
}

/* One range: a caller-built segment list has no SCSI equivalent here. */
static int range_blocks(struct vblk_dev *dev, const struct vblk_req *req,
			uint64_t *lba, uint32_t *nblk)
{
	if (req->iovcnt)
		return vblk_fail(dev, -EOPNOTSUPP,
				 "vhost-scsi: %s takes one range, not a segment list",
				 vblk_type_name(req->type));
	/* zero blocks would mean "to the end of the device" to WRITE SAME */
	if (!req->nsectors)
		return vblk_fail(dev, -EINVAL, "%s of 0 sectors",
				 vblk_type_name(req->type));
	return to_blocks(dev, req->sector, (uint64_t)req->nsectors << 9, lba,
			 nblk);
}

static int xlat_discard(struct vblk_dev *dev, const struct vblk_req *req,
			uint8_t *param, struct xlat *x)
{
	uint64_t lba;
	uint32_t nblk;
	int rc;

	rc = range_blocks(dev, req, &lba, &nblk);
	if (rc)
		return rc;
	memset(param, 0, UNMAP_PARAM_BYTES);
	put_be16(param, UNMAP_PARAM_BYTES - 2);	/* UNMAP data length */
	put_be16(param + 2, 16);		/* block descriptors length */
	put_be64(param + 8, lba);
	put_be32(param + 16, nblk);
	x->cdb[0] = OP_UNMAP;
	put_be16(x->cdb + 7, UNMAP_PARAM_BYTES);
	x->dir = X_OUT;
	x->buf = param;
	x->buf_len = UNMAP_PARAM_BYTES;
	return 0;
}

static int xlat_write_zeroes(struct vblk_dev *dev, const struct vblk_req *req,
			     struct xlat *x)
{
	struct scsi_state *s = dev->tr;
	uint64_t lba;
	uint32_t nblk;
	int rc;

	rc = range_blocks(dev, req, &lba, &nblk);
	if (rc)
		return rc;
	x->cdb[0] = OP_WRITE_SAME_16;
	/* ask to unmap only where the target says it can (LBPWS) */
	if (req->flags & VBLK_REQ_UNMAP && s->ws_unmap)
		x->cdb[1] = WRITE_SAME_UNMAP;
	put_be64(x->cdb + 2, lba);
	put_be32(x->cdb + 10, nblk);
	x->dir = X_OUT;
	x->buf = s->zero;
	x->buf_len = 1U << s->blk_shift;
	return 0;
}

/* GET_ID: the unit serial number page; copied out on completion. */
static void xlat_get_id(uint8_t *param, struct xlat *x)
{
	x->cdb[0] = OP_INQUIRY;
	x->cdb[1] = 1;				/* EVPD */
	x->cdb[2] = VPD_UNIT_SERIAL;
	put_be16(x->cdb + 3, SCSI_PARAM_BYTES);
	x->dir = X_IN;
	x->buf = param;
	x->buf_len = SCSI_PARAM_BYTES;
}

static int translate(struct vblk_dev *dev, const struct vblk_req *req,
		     uint8_t *area, struct xlat *x)
{
	struct scsi_state *s = dev->tr;

	memset(x, 0, sizeof(*x));
	switch (req->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		return xlat_rw(dev, req, x);
	case VIRTIO_BLK_T_FLUSH:
		x->cdb[0] = OP_SYNCHRONIZE_CACHE_10;	/* LBA 0, 0: all */
		return 0;
	case VIRTIO_BLK_T_DISCARD:
		return xlat_discard(dev, req, area + SCSI_SLOT_PARAM, x);
	case VIRTIO_BLK_T_WRITE_ZEROES:
		return xlat_write_zeroes(dev, req, x);
	case VIRTIO_BLK_T_GET_ID:
		xlat_get_id(area + SCSI_SLOT_PARAM, x);
		return 0;
	case SCSI_T_CDB:
		if (req->priv != &s->icmd)
			break;
		memcpy(x->cdb, s->icmd.cdb, sizeof(x->cdb));
		x->dir = req->iovcnt ? (s->icmd.data_in ? X_IN : X_OUT) : X_NONE;
		return 0;
	}
	return vblk_fail(dev, -EOPNOTSUPP, "vhost-scsi: no SCSI command for %s",
			 vblk_type_name(req->type));
}

static int add_payload(struct vblk_dev *dev, struct vblk_chain *c,
		       const struct vblk_req *req, const struct xlat *x,
		       bool writable)
{
	if (!x->buf)
		return vblk_chain_add_data(dev, c, req, writable);
	vblk_chain_add(c, vblk_gpa(dev, x->buf), x->buf_len, writable);
	return 0;
}

static void fill_header(struct scsi_state *s, struct virtio_scsi_cmd_req *h,
			const struct xlat *x)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->lun, s->lun, sizeof(h->lun));
	h->tag = htole64(__atomic_add_fetch(&s->tag, 1, __ATOMIC_RELAXED));
	h->task_attr = VIRTIO_SCSI_S_SIMPLE;
	memcpy(h->cdb, x->cdb, sizeof(x->cdb));
}

/* Chain: request header, data-out; response, data-in (virtio-scsi order). */
int vblk_scsi_build(struct vblk_dev *dev, struct vblk_vq *vq,
		    unsigned int slot, const struct vblk_req *req,
		    struct vblk_chain *c)
{
	uint8_t *area = slot_area(dev, vq, slot);
	struct virtio_scsi_cmd_req *h = (void *)(area + SCSI_SLOT_REQ);
	struct virtio_scsi_cmd_resp *r = (void *)(area + SCSI_SLOT_RESP);
	struct xlat x;
	int rc;

	rc = translate(dev, req, area, &x);
	if (rc)
		return rc;
	fill_header(dev->tr, h, &x);
	memset(r, 0, sizeof(*r));
	r->response = SCSI_RESP_NONE;
	c->n = 0;
	vblk_chain_add(c, vblk_gpa(dev, h), sizeof(*h), false);
	if (x.dir == X_OUT) {
		rc = add_payload(dev, c, req, &x, false);
		if (rc)
			return rc;
	}
	vblk_chain_add(c, vblk_gpa(dev, r), sizeof(*r), true);
	if (x.dir == X_IN)
		rc = add_payload(dev, c, req, &x, true);
	return rc;
}

/* ---- completion ---- */

static uint8_t fail_status(struct vblk_dev *dev, uint8_t st,
			   const struct vblk_req *req, const char *what,
			   unsigned int v)
{
	vblk_fail(dev, -EIO, "vhost-scsi: %s at sector %llu: %s %u",
		  vblk_type_name(req->type), (unsigned long long)req->sector,
		  what, v);
	return st;
}

/* Copy the serial of a unit serial number page into the GET_ID buffer. */
static uint8_t copy_serial(struct vblk_dev *dev, const struct vblk_req *req,
			   const uint8_t *page)
{
	size_t n = (size_t)page[2] << 8 | page[3], done = 0, k;
	unsigned int i;

	if (page[1] != VPD_UNIT_SERIAL)
		return fail_status(dev, VIRTIO_BLK_S_IOERR, req,
				   "INQUIRY returned page", page[1]);
	if (n > SCSI_PARAM_BYTES - 4)
		n = SCSI_PARAM_BYTES - 4;
	if (n > VIRTIO_BLK_ID_BYTES)
		n = VIRTIO_BLK_ID_BYTES;
	for (i = 0; i < req->iovcnt; i++) {
		k = req->iov[i].iov_len;
		if (k > VIRTIO_BLK_ID_BYTES - done)
			k = VIRTIO_BLK_ID_BYTES - done;
		memset(req->iov[i].iov_base, 0, k);
		if (done < n)
			memcpy(req->iov[i].iov_base, page + 4 + done,
			       n - done < k ? n - done : k);
		done += k;
	}
	return VIRTIO_BLK_S_OK;
}

static uint8_t good_status(struct vblk_dev *dev, const struct vblk_req *req,
			   const uint8_t *area, uint32_t resid)
{
	switch (req->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		/* virtio-blk has no short transfers: all or an error */
		if (resid)
			return fail_status(dev, VIRTIO_BLK_S_IOERR, req,
					   "residual bytes", resid);
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_GET_ID:
		return copy_serial(dev, req, area + SCSI_SLOT_PARAM);
	default:
		return VIRTIO_BLK_S_OK;
	}
}

/* Sense key, ASC and ASCQ of fixed (70h/71h) or descriptor (72h/73h) sense. */
static void parse_sense(const uint8_t *b, uint32_t len, struct scsi_cdb *out)
{
	out->key = out->asc = out->ascq = 0;
	if (!len)
		return;
	switch (b[0] & 0x7f) {
	case 0x70:
	case 0x71:
		if (len >= 3)
			out->key = b[2] & 0xf;
		if (len >= 14) {
			out->asc = b[12];
			out->ascq = b[13];
		}
		break;
	case 0x72:
	case 0x73:
		if (len >= 4) {
			out->key = b[1] & 0xf;
			out->asc = b[2];
			out->ascq = b[3];
		}
		break;
	}
}

static uint8_t check_condition(struct vblk_dev *dev,
			       const struct vblk_req *req,
			       const struct scsi_cdb *sn)
{
	bool rw = req->type == VIRTIO_BLK_T_IN || req->type == VIRTIO_BLK_T_OUT;

	vblk_fail(dev, -EIO,
		  "vhost-scsi: %s at sector %llu: CHECK CONDITION, sense key 0x%x asc 0x%02x ascq 0x%02x",
		  vblk_type_name(req->type), (unsigned long long)req->sector,
		  sn->key, sn->asc, sn->ascq);
	/* invalid opcode or field: the target does not do this command */
	if (!rw && sn->key == SENSE_ILLEGAL_REQUEST &&
	    (sn->asc == 0x20 || sn->asc == 0x24))
		return VIRTIO_BLK_S_UNSUPP;
	return VIRTIO_BLK_S_IOERR;
}

uint8_t vblk_scsi_status(struct vblk_dev *dev, struct vblk_vq *vq,
			 unsigned int slot, uint32_t used_len)
{
	struct scsi_state *s = dev->tr;
	const struct vblk_req *req = vq->slots[slot].req;
	uint8_t *area = slot_area(dev, vq, slot);
	struct virtio_scsi_cmd_resp r;
	struct scsi_cdb sn = { 0 };
	uint32_t sense_len;

	/* one copy: the checks and the use see the same bytes */
	memcpy(&r, area + SCSI_SLOT_RESP, sizeof(r));
	if (r.response == SCSI_RESP_NONE)
		return fail_status(dev, VBLK_S_NONE, req,
				   "no response written, used length", used_len);
	/* vhost-scsi reports 0; a peer that reports must cover the header */
	if (used_len && used_len < offsetof(struct virtio_scsi_cmd_resp, sense))
		return fail_status(dev, VIRTIO_BLK_S_IOERR, req,
				   "response shorter than its header", used_len);
	if (r.response != VIRTIO_SCSI_S_OK)
		return fail_status(dev, VIRTIO_BLK_S_IOERR, req,
				   "virtio-scsi response", r.response);
	sense_len = le32toh(r.sense_len);
	if (sense_len > sizeof(r.sense))
		return fail_status(dev, VIRTIO_BLK_S_IOERR, req,
				   "sense_len beyond the buffer", sense_len);
	sn.status = r.status;
	if (r.status == SAM_CHECK_CONDITION)
		parse_sense(r.sense, sense_len, &sn);
	if (req->type == SCSI_T_CDB && req->priv == &s->icmd)
		s->icmd = (struct scsi_cdb){ .status = sn.status, .key = sn.key,
					     .asc = sn.asc, .ascq = sn.ascq };
	if (r.status == SAM_GOOD)
		return good_status(dev, req, area, le32toh(r.resid));
	if (r.status == SAM_CHECK_CONDITION)
		return check_condition(dev, req, &sn);
	return fail_status(dev, VIRTIO_BLK_S_IOERR, req, "SCSI status",
			   r.status);
}
