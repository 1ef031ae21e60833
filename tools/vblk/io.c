// SPDX-License-Identifier: GPL-2.0
/* vblk: synchronous transfers, split into what the device accepts. */
#include <errno.h>

#include "vblk_cmd.h"

static size_t seg_bytes(const struct vblk_dev *dev)
{
	const struct vblk_info *i = vblk_info(dev);

	/* whole pages per segment; size_max 0 means no limit */
	if (!i->size_max || i->size_max >= (1U << 20))
		return 1U << 20;
	return i->size_max >= 4096 ? i->size_max & ~4095U : 512;
}

static unsigned int seg_count(const struct vblk_dev *dev)
{
	unsigned int n = vblk_info(dev)->seg_max;

	if (!n)
		n = 1;
	return n < VBLK_MAX_SEGS ? n : VBLK_MAX_SEGS;
}

/* Largest transfer one request may carry (a multiple of 4 KiB or 512). */
size_t io_chunk_max(const struct vblk_dev *dev)
{
	size_t n = seg_bytes(dev) * seg_count(dev);

	return n < (4U << 20) ? n : (4U << 20);
}

int io_build_iov(const struct vblk_dev *dev, void *buf, size_t len,
		 struct iovec *iov, unsigned int max)
{
	size_t seg = seg_bytes(dev);
	unsigned int n = 0;
	char *p = buf;

	while (len) {
		size_t l = len < seg ? len : seg;

		if (n == max)
			return -E2BIG;
		iov[n].iov_base = p;
		iov[n].iov_len = l;
		n++;
		p += l;
		len -= l;
	}
	return n;
}

/* One request; buf must be guest memory and len <= io_chunk_max(). */
int io_xfer(struct vblk_dev *dev, unsigned int q, uint32_t type,
	    uint64_t offset, void *buf, size_t len, int timeout_ms,
	    uint8_t *status)
{
	struct iovec iov[VBLK_MAX_SEGS];
	struct vblk_req req = { .type = type, .sector = offset / 512 };
	int n, rc;

	n = io_build_iov(dev, buf, len, iov, seg_count(dev));
	if (n < 0)
		return n;
	req.iov = iov;
	req.iovcnt = n;
	rc = vblk_do(dev, q, &req, timeout_ms);
	if (rc)
		return rc;
	*status = req.status;
	return 0;
}
