// SPDX-License-Identifier: GPL-2.0
/*
 * Virtqueues: what the front-end said about each ring, and when the
 * kernel serves it. The kernel serves a ring from the moment it holds the
 * ring's kick fd (and the backend is set), so the daemon keeps the kick
 * fd until the ring is complete (size, addresses inside guest memory,
 * features, memory table) and enabled, and takes it back to stop it.
 * Stopping drains: the backend is unset (the kernel completes every
 * request it started, on every ring) and set again for the other rings.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <linux/virtio_ring.h>

#include "vhost_blkd.h"

void vud_vqs_init(struct vud_conn *c)
{
	unsigned int i;

	memset(c->vq, 0, sizeof(c->vq));
	for (i = 0; i < VHOST_BLK_MAX_VQS; i++)
		c->vq[i].kick_fd = -1;
}

void vud_vqs_free(struct vud_conn *c)
{
	unsigned int i;

	for (i = 0; i < VHOST_BLK_MAX_VQS; i++)
		if (c->vq[i].kick_fd >= 0)
			close(c->vq[i].kick_fd);
	vud_vqs_init(c);
}

int vud_vq_index(const struct vud_conn *c, uint64_t idx, const char *what)
{
	if (idx >= c->o->queues) {
		vud_log("%s: ring %llu, only %u offered", what,
			(unsigned long long)idx, c->o->queues);
		return -EINVAL;
	}
	return (int)idx;
}

static uint64_t used_bytes(unsigned int num)
{
	return 4 + 8ULL * num + 2;
}

/* Give the kernel the ring's addresses, as the daemon maps them. */
static int vq_apply_addr(struct vud_conn *c, unsigned int i)
{
	struct vud_vq *vq = &c->vq[i];
	const struct vu_addr *a = &vq->addr;
	struct vhost_vring_addr k = {
		.index = i,
		.flags = a->flags,
		.log_guest_addr = a->log,
	};
	void *desc = vud_mem_map_fe(c, a->desc, 16ULL * vq->num);
	void *avail = vud_mem_map_fe(c, a->avail, 4 + 2ULL * vq->num + 2);
	void *used = vud_mem_map_fe(c, a->used, used_bytes(vq->num));

	if (!desc || !avail || !used) {
		vud_log("ring %u: %s ring is not inside guest memory", i,
			!desc ? "descriptor" : !avail ? "available" : "used");
		return -EINVAL;
	}
	if ((a->flags & VUD_BIT(VHOST_VRING_F_LOG)) &&
	    (a->log + used_bytes(vq->num) < a->log ||
	     !vud_log_covers(c, a->log + used_bytes(vq->num)))) {
		vud_log("ring %u: the dirty log does not cover the used ring", i);
		return -EINVAL;
	}
	k.desc_user_addr = (uintptr_t)desc;
	k.avail_user_addr = (uintptr_t)avail;
	k.used_user_addr = (uintptr_t)used;
	return VUD_IOCTL(c, VHOST_SET_VRING_ADDR, &k);
}

static bool vq_ready(const struct vud_conn *c, const struct vud_vq *vq)
{
	bool enabled = vq->enabled ||
		       !(c->acked & VUD_BIT(VU_F_PROTOCOL_FEATURES));

	return vq->kick_fd >= 0 && vq->num && vq->addr_set &&
	       c->mem.nregions && c->features_set && enabled;
}

static int vq_start(struct vud_conn *c, unsigned int i)
{
	struct vud_vq *vq = &c->vq[i];
	struct vhost_vring_file kick = { i, vq->kick_fd };
	int rc;

	rc = vq_apply_addr(c, i);
	if (!rc)
		rc = VUD_IOCTL(c, VHOST_SET_VRING_KICK, &kick);
	if (!rc)
		vq->running = true;
	return rc;
}

static int vq_stop(struct vud_conn *c, unsigned int i)
{
	struct vhost_vring_file kick = { i, -1 };
	int rc, rc2;

	if (!c->vq[i].running)
		return 0;
	c->vq[i].running = false;
	rc = VUD_IOCTL(c, VHOST_SET_VRING_KICK, &kick);
	if (!rc)
		rc = vud_backend_pause(c);
	rc2 = vud_backend_resume(c);
	return rc ? rc : rc2;
}

static int vq_sync(struct vud_conn *c, unsigned int i)
{
	bool want = vq_ready(c, &c->vq[i]);

	if (want == c->vq[i].running)
		return 0;
	return want ? vq_start(c, i) : vq_stop(c, i);
}

int vud_vqs_sync(struct vud_conn *c)
{
	unsigned int i;
	int rc = 0;

	for (i = 0; !rc && i < c->o->queues; i++)
		rc = vq_sync(c, i);
	return rc;
}

/* New memory table, backend unset: running rings get new addresses. */
int vud_vqs_readdress(struct vud_conn *c)
{
	unsigned int i;
	int rc = 0;

	for (i = 0; !rc && i < c->o->queues; i++)
		if (c->vq[i].running)
			rc = vq_apply_addr(c, i);
	return rc;
}

bool vud_vqs_log_ok(const struct vud_conn *c)
{
	unsigned int i;

	for (i = 0; i < c->o->queues; i++) {
		const struct vud_vq *vq = &c->vq[i];

		if (vq->addr_set && (vq->addr.flags & VUD_BIT(VHOST_VRING_F_LOG)) &&
		    !vud_log_covers(c, vq->addr.log + used_bytes(vq->num)))
			return false;
	}
	return true;
}

static int vq_idle(struct vud_conn *c, int i, const char *what)
{
	if (i >= 0 && c->vq[i].running) {
		vud_log("%s: ring %d is running", what, i);
		return -EBUSY;
	}
	return i;
}

int vud_vq_set_num(struct vud_conn *c, const struct vu_state *s)
{
	struct vhost_vring_state k = { s->index, s->num };
	int i = vq_idle(c, vud_vq_index(c, s->index, "SET_VRING_NUM"),
			"SET_VRING_NUM");

	if (i < 0)
		return i;
	if (!s->num || s->num > 32768 || (s->num & (s->num - 1))) {
		vud_log("SET_VRING_NUM: ring %d: bad size %u", i, s->num);
		return -EINVAL;
	}
	c->vq[i].num = 0;
	if (VUD_IOCTL(c, VHOST_SET_VRING_NUM, &k))
		return -EINVAL;
	c->vq[i].num = s->num;
	return 0;
}

int vud_vq_set_base(struct vud_conn *c, const struct vu_state *s)
{
	struct vhost_vring_state k = { s->index, s->num };
	int i = vq_idle(c, vud_vq_index(c, s->index, "SET_VRING_BASE"),
			"SET_VRING_BASE");

	if (i < 0)
		return i;
	return VUD_IOCTL(c, VHOST_SET_VRING_BASE, &k);
}

/* Stop the ring (the kernel drains it first) and say where it stopped. */
int vud_vq_get_base(struct vud_conn *c, struct vu_state *s)
{
	struct vhost_vring_state k = { s->index, 0 };
	int i = vud_vq_index(c, s->index, "GET_VRING_BASE");
	int rc;

	if (i < 0)
		return i;
	rc = vq_stop(c, i);
	if (!rc)
		rc = VUD_IOCTL(c, VHOST_GET_VRING_BASE, &k);
	if (rc)
		return rc;
	if (c->vq[i].kick_fd >= 0)
		close(c->vq[i].kick_fd);
	c->vq[i].kick_fd = -1;
	s->num = k.num;
	return 0;
}

int vud_vq_set_addr(struct vud_conn *c, const struct vu_addr *a)
{
	int i = vud_vq_index(c, a->index, "SET_VRING_ADDR");
	struct vud_vq *vq;

	if (i < 0)
		return i;
	vq = &c->vq[i];
	if (a->flags & ~VUD_BIT(VHOST_VRING_F_LOG)) {
		vud_log("SET_VRING_ADDR: ring %d: unknown flags 0x%x", i,
			a->flags);
		return -EINVAL;
	}
	if (!vq->num) {
		vud_log("SET_VRING_ADDR: ring %d has no size yet", i);
		return -EINVAL;
	}
	vq->addr = *a;
	vq->addr_set = true;
	/* a running ring (logging switched on or off) changes at once */
	return vq->running ? vq_apply_addr(c, i) : vq_sync(c, i);
}

/* Index and fd of SET_VRING_KICK/CALL/ERR; *fd -1 with NOFD. */
static int vq_file(struct vud_conn *c, uint64_t arg, const char *what,
		   int *fd)
{
	int i = vud_vq_index(c, arg & VU_VRING_IDX_MASK, what);

	*fd = -1;
	if (i < 0)
		return i;
	if (arg & ~(VU_VRING_IDX_MASK | VU_VRING_NOFD)) {
		vud_log("%s: reserved bits set (0x%llx)", what,
			(unsigned long long)arg);
		return -EINVAL;
	}
	if (arg & VU_VRING_NOFD) {
		if (c->nfds) {
			vud_log("%s: fd sent with NOFD", what);
			return -EINVAL;
		}
		return i;
	}
	if (c->nfds != 1) {
		vud_log("%s: %u fds, 1 expected", what, c->nfds);
		return -EINVAL;
	}
	*fd = vud_take_fd(c);
	if (!vud_is_eventfd(*fd)) {
		vud_log("%s: ring %d: the fd is not an eventfd", what, i);
		close(*fd);
		*fd = -1;
		return -EINVAL;
	}
	return i;
}

int vud_vq_set_kick(struct vud_conn *c, uint64_t arg)
{
	int fd, i = vq_file(c, arg, "SET_VRING_KICK", &fd);
	int rc;

	if (i < 0)
		return i;
	if (fd < 0) {
		vud_log("SET_VRING_KICK: ring %d: polling mode (no kick fd) "
			"is not supported", i);
		return -EINVAL;
	}
	rc = vq_stop(c, i);
	if (c->vq[i].kick_fd >= 0)
		close(c->vq[i].kick_fd);
	c->vq[i].kick_fd = fd;
	return rc ? rc : vq_sync(c, i);
}

/* call and err go to the kernel as they came. */
int vud_vq_set_file(struct vud_conn *c, uint64_t arg, bool call)
{
	const char *what = call ? "SET_VRING_CALL" : "SET_VRING_ERR";
	struct vhost_vring_file k;
	int fd, rc, i = vq_file(c, arg, what, &fd);

	if (i < 0)
		return i;
	k.index = i;
	k.fd = fd;
	rc = call ? VUD_IOCTL(c, VHOST_SET_VRING_CALL, &k) :
		    VUD_IOCTL(c, VHOST_SET_VRING_ERR, &k);
	if (fd >= 0)
		close(fd);	/* the kernel holds its own reference */
	return rc;
}

int vud_vq_set_enable(struct vud_conn *c, const struct vu_state *s)
{
	int i = vud_vq_index(c, s->index, "SET_VRING_ENABLE");

	if (i < 0)
		return i;
	if (s->num > 1) {
		vud_log("SET_VRING_ENABLE: ring %d: bad value %u", i, s->num);
		return -EINVAL;
	}
	c->vq[i].enabled = s->num;
	return vq_sync(c, i);
}
