// SPDX-License-Identifier: GPL-2.0
/*
 * Raw chains for hostile-request tests: descriptors are written exactly
 * as the caller gives them (flags, lengths, addresses, links), only the
 * bookkeeping of which ring slots they occupy stays ours.
 */
#include <errno.h>

#include "vblk_int.h"

int vblk_raw_submit(struct vblk_dev *dev, unsigned int q,
		    const struct vblk_raw_desc *d, unsigned int n,
		    struct vblk_req *req)
{
	uint16_t ids[VBLK_MAX_QUEUE_SIZE];
	struct vblk_vq *vq;
	unsigned int i;
	int slot, rc;

	if (q >= dev->nvqs || !n || n > VBLK_MAX_QUEUE_SIZE)
		return -EINVAL;
	vq = &dev->vqs[q];
	if (vq->broken)
		return -EIO;
	slot = vblk_vq_get_slot(vq);
	if (slot < 0)
		return slot;
	rc = vblk_vq_alloc_descs(vq, n, ids);
	if (rc) {
		vblk_vq_put_slot(vq, slot);
		return rc;
	}
	for (i = 0; i < n; i++) {
		vq->desc[ids[i]].addr = htole64(d[i].addr);
		vq->desc[ids[i]].len = htole32(d[i].len);
		vq->desc[ids[i]].flags = htole16(d[i].flags);
		vq->desc[ids[i]].next = htole16(d[i].next < n ?
						ids[d[i].next] : d[i].next);
	}
	req->status = VBLK_S_NONE;
	req->used_len = 0;
	vq->slots[slot].req = req;
	vq->slots[slot].raw = true;
	vblk_vq_publish(dev, vq, slot, ids[0], n);
	return 0;
}

int vblk_raw_avail(struct vblk_dev *dev, unsigned int q, uint16_t head)
{
	struct vblk_vq *vq;

	if (q >= dev->nvqs)
		return -EINVAL;
	vq = &dev->vqs[q];
	vq->avail->ring[vq->avail_idx % vq->num] = htole16(head);
	vq->avail_idx++;
	__atomic_store_n(&vq->avail->idx, htole16(vq->avail_idx),
			 __ATOMIC_RELEASE);
	return 0;
}

int vblk_raw_ring_state(const struct vblk_dev *dev, unsigned int q,
			uint16_t *avail_idx, uint16_t *used_idx,
			uint16_t *avail_event)
{
	const struct vblk_vq *vq;

	if (q >= dev->nvqs)
		return -EINVAL;
	vq = &dev->vqs[q];
	*avail_idx = vq->avail_idx;
	*used_idx = le16toh(__atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE));
	/* the device's view of avail, right after the used ring (EVENT_IDX) */
	*avail_event = le16toh(__atomic_load_n(
		(const uint16_t *)&vq->used->ring[vq->num], __ATOMIC_ACQUIRE));
	return 0;
}
