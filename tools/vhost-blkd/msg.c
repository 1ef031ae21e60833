// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-user messages: each payload checked for its exact size and fd
 * count, then handed to the memory, ring or device code. A handler that
 * fails has logged why; the connection is then closed.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "vhost_blkd.h"

/* Expected payload size of each request with a fixed one, 0 for none. */
static int want_size(uint32_t req)
{
	switch (req) {
	case VU_GET_FEATURES:
	case VU_GET_PROTOCOL_FEATURES:
	case VU_GET_QUEUE_NUM:
	case VU_SET_OWNER:
	case VU_RESET_OWNER:
	case VU_RESET_DEVICE:
		return 0;
	case VU_SET_FEATURES:
	case VU_SET_PROTOCOL_FEATURES:
	case VU_SET_VRING_KICK:
	case VU_SET_VRING_CALL:
	case VU_SET_VRING_ERR:
		return sizeof(uint64_t);
	case VU_SET_VRING_NUM:
	case VU_SET_VRING_BASE:
	case VU_GET_VRING_BASE:
	case VU_SET_VRING_ENABLE:
		return sizeof(struct vu_state);
	case VU_SET_VRING_ADDR:
		return sizeof(struct vu_addr);
	default:
		return -1;	/* variable (checked by the handler) */
	}
}

/* Requests that carry fds; any other request must come with none. */
static bool takes_fds(uint32_t req)
{
	return req == VU_SET_MEM_TABLE || req == VU_SET_LOG_BASE ||
	       req == VU_SET_LOG_FD || req == VU_SET_VRING_KICK ||
	       req == VU_SET_VRING_CALL || req == VU_SET_VRING_ERR;
}

static int reply(struct vud_conn *c, struct vud_msg *m, uint32_t size)
{
	m->flags = VU_VERSION | VU_FLAG_REPLY;
	m->size = size;
	return vud_send(c, m);
}

static int reply_u64(struct vud_conn *c, struct vud_msg *m, uint64_t v)
{
	m->p.u64 = v;
	return reply(c, m, sizeof(v));
}

static int set_features(struct vud_conn *c, uint64_t f)
{
	uint64_t k;
	int rc;

	if (f & ~vud_offered_features(c)) {
		vud_log("SET_FEATURES: 0x%llx not offered",
			(unsigned long long)(f & ~vud_offered_features(c)));
		return -EINVAL;
	}
	if ((f & VUD_BIT(VHOST_F_LOG_ALL)) &&
	    (!vud_log_covers_mem(c) || !vud_vqs_log_ok(c))) {
		vud_log("SET_FEATURES: dirty logging without a log that "
			"covers guest memory (SET_LOG_BASE first)");
		return -EINVAL;
	}
	/* what only the daemon implements stays here */
	k = f & ~(VUD_BIT(VU_F_PROTOCOL_FEATURES) |
		  VUD_BIT(VIRTIO_BLK_F_TOPOLOGY));
	rc = VUD_IOCTL(c, VHOST_SET_FEATURES, &k);
	if (rc)
		return rc;
	c->acked = f;
	c->features_set = true;
	return vud_vqs_sync(c);
}

static int get_config(struct vud_conn *c, struct vud_msg *m)
{
	struct vu_config *cfg = &m->p.config;
	struct virtio_blk_config blk;
	uint8_t space[VU_CONFIG_MAX];
	uint32_t hdr = offsetof(struct vu_config, data);

	if (m->size < hdr || cfg->size > VU_CONFIG_MAX ||
	    cfg->offset > VU_CONFIG_MAX - cfg->size ||
	    m->size != hdr + cfg->size) {
		vud_log("GET_CONFIG: bad request (offset %u size %u in %u bytes)",
			cfg->offset, cfg->size, m->size);
		return -EINVAL;
	}
	memset(space, 0, sizeof(space));
	vud_config_fill(c, &blk);
	memcpy(space, &blk, sizeof(blk));
	memcpy(cfg->data, space + cfg->offset, cfg->size);
	return reply(c, m, m->size);
}

/* RESET_OWNER / RESET_DEVICE: a fresh kernel device, nothing kept. */
static int reset(struct vud_conn *c)
{
	vud_kdev_close(c);	/* drains and releases the rings */
	vud_vqs_free(c);
	vud_mem_free(c);
	vud_log_free(c);
	c->acked = 0;
	c->features_set = false;
	return vud_kdev_open(c);
}

static int set_log_fd(struct vud_conn *c, struct vud_msg *m)
{
	int fd, rc;

	if (m->size || c->nfds != 1 || !vud_is_eventfd(c->fds[0])) {
		vud_log("SET_LOG_FD: one eventfd expected");
		return -EINVAL;
	}
	fd = vud_take_fd(c);
	rc = VUD_IOCTL(c, VHOST_SET_LOG_FD, &fd);
	close(fd);
	return rc;
}

/* Requests whose reply carries data; their result is the reply. */
static int handle_get(struct vud_conn *c, struct vud_msg *m, bool *done)
{
	int rc;

	*done = true;
	switch (m->request) {
	case VU_GET_FEATURES:
		return reply_u64(c, m, vud_offered_features(c));
	case VU_GET_PROTOCOL_FEATURES:
		return reply_u64(c, m, vud_offered_protocol());
	case VU_GET_QUEUE_NUM:
		return reply_u64(c, m, c->o->queues);
	case VU_GET_CONFIG:
		return get_config(c, m);
	case VU_GET_VRING_BASE:
		rc = vud_vq_get_base(c, &m->p.state);
		return rc ? rc : reply(c, m, sizeof(m->p.state));
	case VU_SET_LOG_BASE:
		/* answered even without REPLY_ACK: the front-end waits */
		rc = vud_log_set(c, m);
		return rc ? rc : reply_u64(c, m, 0);
	}
	*done = false;
	return 0;
}

static int handle_set(struct vud_conn *c, struct vud_msg *m)
{
	switch (m->request) {
	case VU_SET_FEATURES:
		return set_features(c, m->p.u64);
	case VU_SET_PROTOCOL_FEATURES:
		if (m->p.u64 & ~vud_offered_protocol()) {
			vud_log("SET_PROTOCOL_FEATURES: 0x%llx not offered",
				(unsigned long long)m->p.u64);
			return -EINVAL;
		}
		c->proto = m->p.u64;
		return 0;
	case VU_SET_OWNER:
		return 0;	/* the daemon owns the kernel device already */
	case VU_RESET_OWNER:
	case VU_RESET_DEVICE:
		return reset(c);
	case VU_SET_MEM_TABLE:
		return vud_mem_set(c, m);
	case VU_SET_LOG_FD:
		return set_log_fd(c, m);
	case VU_SET_VRING_NUM:
		return vud_vq_set_num(c, &m->p.state);
	case VU_SET_VRING_BASE:
		return vud_vq_set_base(c, &m->p.state);
	case VU_SET_VRING_ADDR:
		return vud_vq_set_addr(c, &m->p.addr);
	case VU_SET_VRING_KICK:
		return vud_vq_set_kick(c, m->p.u64);
	case VU_SET_VRING_CALL:
		return vud_vq_set_file(c, m->p.u64, true);
	case VU_SET_VRING_ERR:
		return vud_vq_set_file(c, m->p.u64, false);
	case VU_SET_VRING_ENABLE:
		return vud_vq_set_enable(c, &m->p.state);
	default:
		vud_log("request %u (%s) is not supported", m->request,
			vu_req_name(m->request));
		return -EOPNOTSUPP;
	}
}

/* 0: go on; <0: close the connection (the reason was logged). */
int vud_msg_handle(struct vud_conn *c, struct vud_msg *m)
{
	int size = want_size(m->request);
	bool done, ack;
	int rc;

	if (size >= 0 && m->size != (uint32_t)size) {
		vud_log("%s: payload of %u bytes, %d expected",
			vu_req_name(m->request), m->size, size);
		return -EINVAL;
	}
	if (c->nfds && !takes_fds(m->request)) {
		vud_log("%s: %u unexpected fds", vu_req_name(m->request),
			c->nfds);
		return -EINVAL;
	}
	rc = handle_get(c, m, &done);
	if (done)
		return rc;
	ack = (m->flags & VU_FLAG_NEED_REPLY) &&
	      (c->proto & VUD_BIT(VU_PROTO_F_REPLY_ACK));
	rc = handle_set(c, m);
	if (ack) {
		int rc2 = reply_u64(c, m, rc ? 1 : 0);

		rc = rc ? rc : rc2;
	}
	return rc;
}
