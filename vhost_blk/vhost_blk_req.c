// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk: parsing of guest requests. Every check of guest-controlled
 * input lives in this file: what leaves vhost_blk_req_parse() with 0 is a
 * request the backends may execute as is (type known, data direction
 * right, sectors inside the capacity, sector and length on the block
 * size, segments within the advertised limits, backend writable when it
 * writes; req->bounce says whether a segment is off the alignment the
 * backend takes directly).
 *
 * Descriptor chains themselves (loops, too many descriptors, out after
 * in, addresses outside the memory table) are refused earlier by
 * vhost_get_vq_desc(), which signals the error eventfd; the caller then
 * stops serving the virtqueue.
 *
 * The layout of a request (any framing, VIRTIO_F_ANY_LAYOUT):
 *   device-readable:  16-byte header [data for OUT | segments for
 *                     DISCARD/WRITE_ZEROES]
 *   device-writable:  [data for IN | id for GET_ID] status byte (last)
 * A chain without a device-writable last byte cannot carry a status: it
 * goes back to the used ring with length 0 and nothing written.
 */
#include <linux/kernel.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/uio.h>
#include "vhost_blk.h"

static size_t iov_bytes(const struct iovec *iov, unsigned int n)
{
	size_t sum = 0;
	unsigned int i;

	/* Each entry is at most U32_MAX and n <= UIO_MAXIOV: no overflow. */
	for (i = 0; i < n; i++)
		sum += iov[i].iov_len;
	return sum;
}

/* Copy len bytes starting at byte skip of the iovecs; the caller checked
 * that they hold skip + len bytes.
 */
static int iov_read(void *dst, const struct iovec *iov, unsigned int n,
		    size_t skip, size_t len)
{
	unsigned int i;

	for (i = 0; i < n && len; i++) {
		size_t l;

		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		l = min(iov[i].iov_len - skip, len);
		if (copy_from_user(dst, iov[i].iov_base + skip, l))
			return -EFAULT;
		dst += l;
		len -= l;
		skip = 0;
	}
	return len ? -EINVAL : 0;
}

/* Drop the first skip bytes of the iovecs, in place. */
static void iov_drop(struct iovec **iov, unsigned int *n, size_t skip)
{
	while (*n && skip >= (*iov)->iov_len) {
		skip -= (*iov)->iov_len;
		(*iov)++;
		(*n)--;
	}
	if (*n && skip) {
		(*iov)->iov_base += skip;
		(*iov)->iov_len -= skip;
	}
}

static bool beyond_capacity(const struct vhost_blk_backend *be, u64 sector,
			    u64 nsect)
{
	/* Written so that no addition can overflow. */
	return sector > be->capacity || nsect > be->capacity - sector;
}

static bool misaligned_sectors(const struct vhost_blk_backend *be,
			       u64 sector, u64 nsect)
{
	u64 mask = (be->lbs >> SECTOR_SHIFT) - 1;

	return (sector | nsect) & mask;
}

static int refuse(struct vhost_blk_req *req, u8 status, const char *why)
{
	vhost_blk_warn("vq %td head %u: %s\n",
		       req->bvq - req->bvq->blk->vqs, req->head, why);
	req->status = status;
	return 1;
}

/*
 * IN and OUT: data segments, capacity, limits. The sector and the total
 * length must be multiples of the logical block size (the spec's rule,
 * blk_size being what the device advertises); a segment's address and
 * length may be anything: segments the backend cannot take as they are
 * mark the request for bouncing.
 */
static int parse_rw(struct vhost_blk_req *req, struct iovec *iov,
		    unsigned int n, u64 sector)
{
	const struct vhost_blk_backend *be = req->be;
	bool size_max = vhost_has_feature(&req->bvq->vq,
					  VIRTIO_BLK_F_SIZE_MAX);
	size_t len = iov_bytes(iov, n);
	unsigned long off = 0;
	unsigned int i;

	if (req->type == VIRTIO_BLK_T_OUT && be->ro)
		return refuse(req, VIRTIO_BLK_S_IOERR, "write to read-only");
	if (n > VHOST_BLK_SEG_MAX)
		return refuse(req, VIRTIO_BLK_S_IOERR, "more than seg_max");
	/*
	 * size_max binds only a driver that accepted VIRTIO_BLK_F_SIZE_MAX.
	 * Others (OVMF) may put a whole request in one segment: such a
	 * request is served up to seg_max x size_max bytes, the bound of
	 * one request's memory (bounce pages) either way.
	 */
	if (!size_max && len > VHOST_BLK_REQ_MAX)
		return refuse(req, VIRTIO_BLK_S_IOERR,
			      "request above seg_max x size_max");
	for (i = 0; i < n; i++) {
		if (size_max && iov[i].iov_len > VHOST_BLK_SIZE_MAX)
			return refuse(req, VIRTIO_BLK_S_IOERR,
				      "segment above size_max");
		off |= (unsigned long)iov[i].iov_base | iov[i].iov_len;
	}
	if (len & (be->lbs - 1))
		return refuse(req, VIRTIO_BLK_S_IOERR,
			      "length not a multiple of the block size");
	if (misaligned_sectors(be, sector, len >> SECTOR_SHIFT))
		return refuse(req, VIRTIO_BLK_S_IOERR, "misaligned sector");
	if (beyond_capacity(be, sector, len >> SECTOR_SHIFT))
		return refuse(req, VIRTIO_BLK_S_IOERR, "beyond capacity");

	req->sector = sector;
	req->len = len;
	req->data = iov;
	req->ndata = n;
	req->bounce = off & be->align_mask;
	return 0;
}

/* DISCARD and WRITE_ZEROES: the segment table after the header. */
static int parse_ranges(struct vhost_blk_req *req, struct iovec *iov,
			unsigned int n, size_t bytes)
{
	struct virtio_blk_discard_write_zeroes seg;
	const struct vhost_blk_backend *be = req->be;
	bool discard = req->type == VIRTIO_BLK_T_DISCARD;
	u32 max = discard ? be->max_discard_sectors : be->max_wz_sectors;
	unsigned int i, nseg = bytes / sizeof(seg);

	if (!max)
		return refuse(req, VIRTIO_BLK_S_UNSUPP,
			      "discard/write-zeroes not supported");
	if (be->ro)
		return refuse(req, VIRTIO_BLK_S_IOERR, "write to read-only");
	if (!bytes || bytes % sizeof(seg) || nseg > VHOST_BLK_DISCARD_SEG)
		return refuse(req, VIRTIO_BLK_S_IOERR, "bad segment table");

	for (i = 0; i < nseg; i++) {
		struct vhost_blk_range *r = &req->ranges[i];
		u32 flags;

		if (iov_read(&seg, iov, n, i * sizeof(seg), sizeof(seg)))
			return refuse(req, VIRTIO_BLK_S_IOERR,
				      "unreadable segment");
		r->sector = le64_to_cpu(seg.sector);
		r->nsect = le32_to_cpu(seg.num_sectors);
		flags = le32_to_cpu(seg.flags);
		if (flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)
			return refuse(req, VIRTIO_BLK_S_UNSUPP, "unknown flags");
		/* The unmap flag is only defined for write zeroes. */
		if (discard && flags)
			return refuse(req, VIRTIO_BLK_S_UNSUPP,
				      "unmap flag on discard");
		r->unmap = flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
		if (r->nsect > max)
			return refuse(req, VIRTIO_BLK_S_IOERR,
				      "segment above the limit");
		if (misaligned_sectors(be, r->sector, r->nsect))
			return refuse(req, VIRTIO_BLK_S_IOERR,
				      "misaligned range");
		if (beyond_capacity(be, r->sector, r->nsect))
			return refuse(req, VIRTIO_BLK_S_IOERR,
				      "range beyond capacity");
	}
	req->nranges = nseg;
	return 0;
}

/* Find the status byte: the last byte of the device-writable area. It is
 * taken out of the iovecs, which then describe the data only.
 */
static int parse_status(struct vhost_blk_req *req, struct iovec *iov,
			unsigned int *in)
{
	struct iovec *last;

	if (!*in) {
		req->no_status = true;
		return refuse(req, VIRTIO_BLK_S_IOERR, "no writable status");
	}
	last = &iov[*in - 1];
	req->status_addr = (u8 __user *)last->iov_base + last->iov_len - 1;
	if (!--last->iov_len)
		(*in)--;
	return 0;
}

/*
 * Returns 0 when the request is valid and must be executed, 1 when it is
 * complete already (req->status set, or req->no_status).
 */
int vhost_blk_req_parse(struct vhost_blk_req *req, struct iovec *iov,
			unsigned int out, unsigned int in)
{
	struct vhost_virtqueue *vq = &req->bvq->vq;
	struct iovec *wr = iov + out;
	struct virtio_blk_outhdr hdr;
	size_t out_len, in_len;
	u64 sector;

	if (parse_status(req, wr, &in))
		return 1;
	in_len = iov_bytes(wr, in);
	out_len = iov_bytes(iov, out);
	if (out_len < sizeof(hdr))
		return refuse(req, VIRTIO_BLK_S_IOERR, "short header");
	if (iov_read(&hdr, iov, out, 0, sizeof(hdr)))
		return refuse(req, VIRTIO_BLK_S_IOERR, "unreadable header");
	req->type = vhost32_to_cpu(vq, hdr.type);
	sector = vhost64_to_cpu(vq, hdr.sector);
	out_len -= sizeof(hdr);
	iov_drop(&iov, &out, sizeof(hdr));

	switch (req->type) {
	case VIRTIO_BLK_T_IN:
		if (out_len)
			return refuse(req, VIRTIO_BLK_S_IOERR,
				      "read with device-readable data");
		return parse_rw(req, wr, in, sector);
	case VIRTIO_BLK_T_OUT:
		if (in_len)
			return refuse(req, VIRTIO_BLK_S_IOERR,
				      "write with device-writable data");
		return parse_rw(req, iov, out, sector);
	case VIRTIO_BLK_T_FLUSH:
		if (out_len || in_len)
			return refuse(req, VIRTIO_BLK_S_IOERR,
				      "flush with data");
		return 0;
	case VIRTIO_BLK_T_GET_ID:
		if (out_len)
			return refuse(req, VIRTIO_BLK_S_IOERR,
				      "get-id with device-readable data");
		req->data = wr;
		req->ndata = in;
		return 0;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (in_len)
			return refuse(req, VIRTIO_BLK_S_IOERR,
				      "discard with device-writable data");
		return parse_ranges(req, iov, out, out_len);
	default:
		return refuse(req, VIRTIO_BLK_S_UNSUPP, "unknown type");
	}
}

/* GET_ID: up to VIRTIO_BLK_ID_BYTES of the serial into the data area. */
void vhost_blk_req_get_id(struct vhost_blk_req *req, const char *serial)
{
	size_t left = VHOST_BLK_SERIAL_LEN;
	unsigned int i;

	for (i = 0; i < req->ndata && left; i++) {
		size_t l = min(req->data[i].iov_len, left);

		if (copy_to_user(req->data[i].iov_base, serial, l)) {
			refuse(req, VIRTIO_BLK_S_IOERR, "unwritable id");
			return;
		}
		serial += l;
		left -= l;
		req->written += l;
	}
	req->status = VIRTIO_BLK_S_OK;
}

/*
 * The data iovecs point into vq->iov, which the next request overwrites:
 * keep a copy in the request while it is in flight. In the worker.
 */
int vhost_blk_req_own_iov(struct vhost_blk_req *req)
{
	req->iov = req->inline_iov;
	if (req->ndata > VHOST_BLK_INLINE_IOV) {
		req->iov = kmalloc_array(req->ndata, sizeof(*req->iov),
					 GFP_NOIO);
		if (!req->iov)
			return -ENOMEM;
	}
	memcpy(req->iov, req->data, req->ndata * sizeof(*req->iov));
	req->data = req->iov;
	return 0;
}
