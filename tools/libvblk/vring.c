// SPDX-License-Identifier: GPL-2.0
/*
 * Split virtqueue, driver side: descriptor table, avail and used rings in
 * guest memory; a private shadow of the chain links and the free list, so
 * that nothing the device writes (or a hostile chain a test wrote) is ever
 * trusted for our own bookkeeping.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vblk_int.h"

#define ALIGN_UP(x, a)	(((x) + (a) - 1) & ~((size_t)(a) - 1))

static size_t desc_bytes(unsigned int num)
{
	return ALIGN_UP(num * sizeof(struct vring_desc), VBLK_PAGE);
}

static size_t avail_bytes(unsigned int num)
{
	return ALIGN_UP(6 + 2 * num, VBLK_PAGE);
}

static size_t used_bytes(unsigned int num)
{
	return ALIGN_UP(6 + 8 * num, VBLK_PAGE);
}

static size_t slots_bytes(unsigned int num)
{
	return ALIGN_UP(num * VBLK_SLOT_BYTES, VBLK_PAGE);
}

size_t vblk_vq_mem_bytes(unsigned int num)
{
	return desc_bytes(num) + avail_bytes(num) + used_bytes(num) +
	       slots_bytes(num);
}

static void init_slots(struct vblk_vq *vq, uint8_t *area)
{
	unsigned int i;

	for (i = 0; i < vq->num; i++) {
		uint8_t *s = area + (size_t)i * VBLK_SLOT_BYTES;

		vq->slots[i].hdr = (void *)s;
		vq->slots[i].dwz = (void *)(s + 16);
		vq->slots[i].status = s + 32;
		vq->slots[i].itable = (void *)(s + 64);
		vq->free_slots[i] = vq->num - 1 - i;
	}
	vq->nfree_slots = vq->num;
}

static void init_free_list(struct vblk_vq *vq)
{
	unsigned int i;

	for (i = 0; i < vq->num; i++)
		vq->next[i] = i + 1;
	vq->free_head = 0;
	vq->num_free = vq->num;
}

static int alloc_host_side(struct vblk_vq *vq)
{
	vq->next = calloc(vq->num, sizeof(*vq->next));
	vq->slots = calloc(vq->num, sizeof(*vq->slots));
	vq->free_slots = calloc(vq->num, sizeof(*vq->free_slots));
	vq->head_slot = calloc(vq->num, sizeof(*vq->head_slot));
	if (!vq->next || !vq->slots || !vq->free_slots || !vq->head_slot)
		return -ENOMEM;
	return 0;
}

static int alloc_guest_side(struct vblk_dev *dev, struct vblk_vq *vq)
{
	vq->desc = vblk_mem_alloc(dev, desc_bytes(vq->num));
	vq->avail = vblk_mem_alloc(dev, avail_bytes(vq->num));
	vq->used = vblk_mem_alloc(dev, used_bytes(vq->num));
	if (!vq->desc || !vq->avail || !vq->used)
		return -ENOMEM;
	vq->slots[0].hdr = vblk_mem_alloc(dev, slots_bytes(vq->num));
	if (!vq->slots[0].hdr)
		return -ENOMEM;
	init_slots(vq, (uint8_t *)vq->slots[0].hdr);
	return 0;
}

int vblk_vq_init(struct vblk_dev *dev, struct vblk_vq *vq, unsigned int idx,
		 unsigned int num)
{
	int rc;

	memset(vq, 0, sizeof(*vq));
	vq->idx = idx;
	vq->num = num;
	vq->kick_fd = vq->call_fd = vq->err_fd = -1;
	rc = alloc_host_side(vq);
	if (!rc)
		rc = alloc_guest_side(dev, vq);
	if (rc)
		return rc;
	init_free_list(vq);
	vq->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	vq->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	vq->err_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vq->kick_fd < 0 || vq->call_fd < 0 || vq->err_fd < 0)
		return -errno;
	return 0;
}

void vblk_vq_fini(struct vblk_dev *dev, struct vblk_vq *vq)
{
	if (vq->slots)
		vblk_mem_free(dev, vq->slots[0].hdr);
	vblk_mem_free(dev, vq->desc);
	vblk_mem_free(dev, vq->avail);
	vblk_mem_free(dev, vq->used);
	free(vq->next);
	free(vq->slots);
	free(vq->free_slots);
	free(vq->head_slot);
	if (vq->kick_fd >= 0)
		close(vq->kick_fd);
	if (vq->call_fd >= 0)
		close(vq->call_fd);
	if (vq->err_fd >= 0)
		close(vq->err_fd);
	memset(vq, 0, sizeof(*vq));
}

int vblk_vq_get_slot(struct vblk_vq *vq)
{
	if (!vq->nfree_slots)
		return -EAGAIN;
	return vq->free_slots[--vq->nfree_slots];
}

void vblk_vq_put_slot(struct vblk_vq *vq, unsigned int slot)
{
	vq->slots[slot].req = NULL;
	vq->free_slots[vq->nfree_slots++] = slot;
}

/* Take n descriptors off the free list, linked in order (shadow links). */
int vblk_vq_alloc_descs(struct vblk_vq *vq, unsigned int n, uint16_t *out)
{
	unsigned int i;
	uint16_t d;

	if (!n || n > vq->num_free)
		return -EAGAIN;
	d = vq->free_head;
	for (i = 0; i < n; i++) {
		out[i] = d;
		d = vq->next[d];
	}
	vq->free_head = d;
	vq->num_free -= n;
	return 0;
}

static void free_descs(struct vblk_vq *vq, uint16_t head, uint16_t n)
{
	uint16_t last = head;
	unsigned int i;

	if (!n)
		return;
	for (i = 1; i < n; i++)
		last = vq->next[last];
	vq->next[last] = vq->free_head;
	vq->free_head = head;
	vq->num_free += n;
}

/* Make a chain whose head is `head` visible to the device. */
void vblk_vq_publish(struct vblk_dev *dev, struct vblk_vq *vq,
		     unsigned int slot, uint16_t head, uint16_t ndesc)
{
	(void)dev;
	vq->slots[slot].head = head;
	vq->slots[slot].ndesc = ndesc;
	vq->head_slot[head] = slot + 1;
	vq->avail->ring[vq->avail_idx % vq->num] = htole16(head);
	vq->avail_idx++;
	vq->inflight++;
	/* ring entry before index: the device reads them in that order */
	__atomic_store_n(&vq->avail->idx, htole16(vq->avail_idx),
			 __ATOMIC_RELEASE);
}

static uint16_t *used_event(struct vblk_vq *vq)
{
	return &vq->avail->ring[vq->num];
}

static uint16_t *avail_event(struct vblk_vq *vq)
{
	return (uint16_t *)&vq->used->ring[vq->num];
}

bool vblk_vq_has_used(struct vblk_vq *vq)
{
	uint16_t idx = le16toh(__atomic_load_n(&vq->used->idx,
					       __ATOMIC_ACQUIRE));

	return idx != vq->last_used;
}

/* Ask for an interrupt on the next used entry, then recheck. */
void vblk_vq_want_irq(struct vblk_dev *dev, struct vblk_vq *vq)
{
	if (dev->event_idx)
		__atomic_store_n(used_event(vq), htole16(vq->last_used),
				 __ATOMIC_RELAXED);
	else
		vq->avail->flags = 0;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/*
 * Pop one used entry. 1 and *reqp set: a request completed; 0: nothing
 * there; -EIO: the device returned an id that is not in flight.
 */
int vblk_vq_pop_used(struct vblk_dev *dev, struct vblk_vq *vq,
		     struct vblk_req **reqp)
{
	struct vring_used_elem e;
	struct vblk_slot *s;
	struct vblk_req *req;
	unsigned int slot;

	if (!vblk_vq_has_used(vq))
		return 0;
	e = vq->used->ring[vq->last_used % vq->num];
	e.id = le32toh(e.id);
	if (e.id >= vq->num || !vq->head_slot[e.id]) {
		vq->broken = true;
		return vblk_fail(dev, -EIO,
				 "vq %u: device returned bad id %u",
				 vq->idx, e.id);
	}
	vq->last_used++;
	slot = vq->head_slot[e.id] - 1;
	vq->head_slot[e.id] = 0;
	s = &vq->slots[slot];
	req = s->req;
	req->used_len = le32toh(e.len);
	if (s->raw)
		req->status = req->raw_status ? *req->raw_status : VBLK_S_NONE;
	else if (dev->ops->status)
		req->status = dev->ops->status(dev, vq, slot, req->used_len);
	else
		req->status = *(volatile uint8_t *)s->status;
	free_descs(vq, s->head, s->ndesc);
	vq->inflight--;
	vblk_vq_put_slot(vq, slot);
	*reqp = req;
	return 1;
}

int vblk_vq_kick(struct vblk_dev *dev, struct vblk_vq *vq)
{
	uint64_t one = 1;
	uint16_t old = vq->kicked_idx, new = vq->avail_idx;
	bool notify;

	if (old == new)
		return 0;
	/* our avail index store before reading the device's suppression */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (dev->event_idx)
		notify = vring_need_event(le16toh(*(volatile uint16_t *)
						  avail_event(vq)), new, old);
	else
		notify = !(le16toh(*(volatile uint16_t *)&vq->used->flags) &
			   VRING_USED_F_NO_NOTIFY);
	vq->kicked_idx = new;
	if (notify && write(vq->kick_fd, &one, sizeof(one)) != sizeof(one))
		return vblk_fail(dev, -errno, "vq %u: kick: %m", vq->idx);
	return 0;
}
