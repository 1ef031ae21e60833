// SPDX-License-Identifier: GPL-2.0
/*
 * virtio-blk requests: build the chain (header, data, status) directly in
 * the ring or in the slot's indirect table, and collect completions.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vblk_int.h"

void vblk_chain_add(struct vblk_chain *c, uint64_t addr, uint32_t len,
		    bool writable)
{
	c->d[c->n].addr = htole64(addr);
	c->d[c->n].len = htole32(len);
	c->d[c->n].flags = htole16(writable ? VRING_DESC_F_WRITE : 0);
	c->d[c->n].next = 0;
	c->n++;
}

static bool data_writable(uint32_t type)
{
	return type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
}

int vblk_chain_add_data(struct vblk_dev *dev, struct vblk_chain *c,
			const struct vblk_req *req, bool w)
{
	unsigned int i;

	if (req->iovcnt > VBLK_MAX_SEGS)
		return vblk_fail(dev, -EINVAL, "%u segments, at most %u",
				 req->iovcnt, VBLK_MAX_SEGS);
	for (i = 0; i < req->iovcnt; i++) {
		uint64_t gpa = vblk_gpa(dev, req->iov[i].iov_base);

		if (gpa == UINT64_MAX || req->iov[i].iov_len > UINT32_MAX ||
		    !vblk_hva(dev, gpa, req->iov[i].iov_len))
			return vblk_fail(dev, -EFAULT,
					 "segment %u is not in guest memory", i);
		vblk_chain_add(c, gpa, req->iov[i].iov_len, w);
	}
	return 0;
}

static int build_chain(struct vblk_dev *dev, struct vblk_slot *s,
		       const struct vblk_req *req, struct vblk_chain *c)
{
	int rc;

	s->hdr->type = htole32(req->type);
	s->hdr->ioprio = 0;
	s->hdr->sector = htole64(req->sector);
	*s->status = VBLK_S_NONE;
	c->n = 0;
	vblk_chain_add(c, vblk_gpa(dev, s->hdr), sizeof(*s->hdr), false);
	switch (req->type) {
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (req->iovcnt) {	/* caller-built segment list */
			rc = vblk_chain_add_data(dev, c, req, false);
			if (rc)
				return rc;
			break;
		}
		s->dwz->sector = htole64(req->sector);
		s->dwz->num_sectors = htole32(req->nsectors);
		s->dwz->flags = htole32(req->type == VIRTIO_BLK_T_WRITE_ZEROES &&
					(req->flags & VBLK_REQ_UNMAP) ?
					VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0);
		vblk_chain_add(c, vblk_gpa(dev, s->dwz), sizeof(*s->dwz), false);
		break;
	default:
		rc = vblk_chain_add_data(dev, c, req,
					 data_writable(req->type));
		if (rc)
			return rc;
	}
	vblk_chain_add(c, vblk_gpa(dev, s->status), 1, true);
	return 0;
}

/* Copy the chain into the ring (direct) or the slot's table (indirect). */
static int place_chain(struct vblk_dev *dev, struct vblk_vq *vq,
		       struct vblk_slot *s, struct vblk_chain *c, uint16_t *headp,
		       uint16_t *ndescp)
{
	uint16_t ids[VBLK_MAX_SEGS + 2];
	unsigned int i;
	int rc;

	if (dev->indirect && c->n > 1) {
		rc = vblk_vq_alloc_descs(vq, 1, ids);
		if (rc)
			return rc;
		for (i = 0; i < c->n; i++) {
			s->itable[i] = c->d[i];
			if (i + 1 < c->n) {
				s->itable[i].flags |= htole16(VRING_DESC_F_NEXT);
				s->itable[i].next = htole16(i + 1);
			}
		}
		vq->desc[ids[0]].addr = htole64(vblk_gpa(dev, s->itable));
		vq->desc[ids[0]].len = htole32(c->n * sizeof(struct vring_desc));
		vq->desc[ids[0]].flags = htole16(VRING_DESC_F_INDIRECT);
		vq->desc[ids[0]].next = 0;
		*headp = ids[0];
		*ndescp = 1;
		return 0;
	}
	rc = vblk_vq_alloc_descs(vq, c->n, ids);
	if (rc)
		return rc;
	for (i = 0; i < c->n; i++) {
		vq->desc[ids[i]] = c->d[i];
		if (i + 1 < c->n) {
			vq->desc[ids[i]].flags |= htole16(VRING_DESC_F_NEXT);
			vq->desc[ids[i]].next = htole16(ids[i + 1]);
		}
	}
	*headp = ids[0];
	*ndescp = c->n;
	return 0;
}

int vblk_submit(struct vblk_dev *dev, unsigned int q, struct vblk_req *req)
{
	struct vblk_vq *vq;
	struct vblk_chain c;
	uint16_t head, ndesc;
	int slot, rc;

	if (q >= dev->nvqs)
		return vblk_fail(dev, -EINVAL, "no queue %u", q);
	vq = &dev->vqs[q];
	if (vq->broken)
		return -EIO;
	slot = vblk_vq_get_slot(vq);
	if (slot < 0)
		return slot;
	if (dev->ops->build)
		rc = dev->ops->build(dev, vq, slot, req, &c);
	else
		rc = build_chain(dev, &vq->slots[slot], req, &c);
	if (!rc)
		rc = place_chain(dev, vq, &vq->slots[slot], &c, &head, &ndesc);
	if (rc) {
		vblk_vq_put_slot(vq, slot);
		return rc;
	}
	req->status = VBLK_S_NONE;
	req->used_len = 0;
	vq->slots[slot].req = req;
	vq->slots[slot].raw = false;
	vblk_vq_publish(dev, vq, slot, head, ndesc);
	return 0;
}

int vblk_kick(struct vblk_dev *dev, unsigned int q)
{
	if (q >= dev->nvqs)
		return -EINVAL;
	return vblk_vq_kick(dev, &dev->vqs[q]);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Spin on the used ring for up to dev->poll_us; true when it has entries. */
static bool poll_used(struct vblk_dev *dev, struct vblk_vq *vq)
{
	int64_t end;

	if (!dev->poll_us)
		return false;
	end = now_us() + dev->poll_us;
	do {
		if (vblk_vq_has_used(vq))
			return true;
	} while (now_us() < end);
	return false;
}

static void drain_eventfd(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
}

/* Wait for the call (or error) eventfd; -EIO when the vq is broken. */
static int wait_call(struct vblk_dev *dev, struct vblk_vq *vq, int timeout)
{
	struct pollfd p[3] = {
		{ .fd = vq->call_fd, .events = POLLIN },
		{ .fd = vq->err_fd, .events = POLLIN },
		{ .fd = dev->info.transport == VBLK_TR_USER ? dev->fd : -1,
		  .events = POLLRDHUP },
	};
	int n;

	n = poll(p, 3, timeout);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	if (p[0].revents & POLLIN)
		drain_eventfd(vq->call_fd);
	if (p[1].revents & POLLIN) {
		vq->broken = true;
		return vblk_fail(dev, -EIO, "vq %u: device signalled an error",
				 vq->idx);
	}
	if (p[2].revents & (POLLRDHUP | POLLHUP | POLLERR)) {
		vq->broken = true;
		return vblk_fail(dev, -EIO, "vq %u: vhost-user peer hung up",
				 vq->idx);
	}
	return 0;
}

int vblk_reap(struct vblk_dev *dev, unsigned int q, struct vblk_req **out,
	      unsigned int max, unsigned int min, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	struct vblk_vq *vq;
	unsigned int n = 0;
	int rc, left;

	if (q >= dev->nvqs)
		return -EINVAL;
	vq = &dev->vqs[q];
	if (min > max)
		min = max;
	for (;;) {
		while (n < max) {
			rc = vblk_vq_pop_used(dev, vq, &out[n]);
			if (rc < 0)
				return n ? (int)n : rc;
			if (!rc)
				break;
			n++;
		}
		if (n >= min || n == max)
			return n;
		if (poll_used(dev, vq))
			continue;
		vblk_vq_want_irq(dev, vq);
		if (vblk_vq_has_used(vq))
			continue;
		left = deadline < 0 ? -1 : (int)(deadline - now_ms());
		if (deadline >= 0 && left <= 0)
			return n;
		rc = wait_call(dev, vq, left);
		if (rc < 0 && !vblk_vq_has_used(vq))
			return n ? (int)n : rc;
	}
}

unsigned int vblk_inflight(const struct vblk_dev *dev, unsigned int q)
{
	return q < dev->nvqs ? dev->vqs[q].inflight : 0;
}

bool vblk_broken(const struct vblk_dev *dev, unsigned int q)
{
	return q < dev->nvqs && dev->vqs[q].broken;
}

int vblk_do(struct vblk_dev *dev, unsigned int q, struct vblk_req *req,
	    int timeout_ms)
{
	struct vblk_req *done;
	int rc;

	rc = vblk_submit(dev, q, req);
	if (!rc)
		rc = vblk_kick(dev, q);
	if (rc)
		return rc;
	for (;;) {
		rc = vblk_reap(dev, q, &done, 1, 1, timeout_ms);
		if (rc < 0)
			return rc;
		if (rc == 0)
			return vblk_fail(dev, -ETIMEDOUT,
					 "%s request timed out on vq %u",
					 vblk_type_name(req->type), q);
		if (done == req)
			return 0;
	}
}
