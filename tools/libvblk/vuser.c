// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-user transport: connect to a vhost-user-blk back-end (such as
 * qemu-storage-daemon --export type=vhost-user-blk), negotiate, share the
 * guest memfd and set up the vrings.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/virtio_config.h>

#include "vuser.h"

#define BIT(n)	(1ULL << (n))

static int sock_connect(struct vblk_dev *dev, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (!path || strlen(path) >= sizeof(sa.sun_path))
		return vblk_fail(dev, -EINVAL, "bad socket path");
	strcpy(sa.sun_path, path);
	dev->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (dev->fd < 0)
		return vblk_fail(dev, -errno, "socket: %s", strerror(errno));
	if (connect(dev->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return vblk_fail(dev, -errno, "%s: %s", path, strerror(errno));
	return 0;
}

static int negotiate_protocol(struct vblk_dev *dev)
{
	uint64_t pf, want = BIT(VU_PROTO_F_MQ) | BIT(VU_PROTO_F_CONFIG) |
			    BIT(VU_PROTO_F_REPLY_ACK);
	uint64_t nq = 1;
	int rc;

	rc = vu_get_u64(dev, VU_GET_PROTOCOL_FEATURES, &pf);
	if (rc)
		return rc;
	pf &= want;
	if (!(pf & BIT(VU_PROTO_F_CONFIG)))
		return vblk_fail(dev, -ENOTSUP,
				 "vhost-user peer lacks the CONFIG protocol feature");
	/* REPLY_ACK takes effect after this message, which gets no ack */
	rc = vu_request(dev, VU_SET_PROTOCOL_FEATURES, &pf, sizeof(pf), NULL,
			0, NULL);
	if (rc)
		return rc;
	dev->proto_features = pf;
	if (pf & BIT(VU_PROTO_F_MQ)) {
		rc = vu_get_u64(dev, VU_GET_QUEUE_NUM, &nq);
		if (rc)
			return rc;
	}
	dev->info.max_queues = nq ? nq : 1;
	return 0;
}

static int user_connect(struct vblk_dev *dev, const char *backend,
			const struct vblk_opts *o)
{
	uint64_t f;
	int rc;

	(void)o;
	rc = sock_connect(dev, backend);
	if (!rc)
		rc = vu_get_u64(dev, VU_GET_FEATURES, &f);
	if (rc)
		return rc;
	dev->info.offered = f;
	if (!(f & BIT(VU_F_PROTOCOL_FEATURES)))
		return vblk_fail(dev, -ENOTSUP,
				 "vhost-user peer lacks protocol features");
	rc = negotiate_protocol(dev);
	if (!rc)
		rc = vu_request(dev, VU_SET_OWNER, NULL, 0, NULL, 0, NULL);
	return rc;
}

static int set_mem_table(struct vblk_dev *dev)
{
	struct vu_mem m;

	memset(&m, 0, sizeof(m));
	m.nregions = 1;
	m.regions[0].gpa = dev->mem.gpa_base;
	m.regions[0].size = dev->mem.size;
	m.regions[0].uaddr = (uintptr_t)dev->mem.base;
	m.regions[0].mmap_offset = 0;
	return vu_set(dev, VU_SET_MEM_TABLE, &m,
		      offsetof(struct vu_mem, regions[1]), &dev->mem.fd, 1);
}

static int set_vring(struct vblk_dev *dev, struct vblk_vq *vq)
{
	struct vu_state num = { vq->idx, vq->num };
	struct vu_state base = { vq->idx, 0 };
	struct vu_state enable = { vq->idx, 1 };
	struct vu_addr addr = {
		.index = vq->idx,
		.desc = (uintptr_t)vq->desc,
		.used = (uintptr_t)vq->used,
		.avail = (uintptr_t)vq->avail,
	};
	uint64_t idx = vq->idx;
	int rc;

	rc = vu_set(dev, VU_SET_VRING_NUM, &num, sizeof(num), NULL, 0);
	if (!rc)
		rc = vu_set(dev, VU_SET_VRING_BASE, &base, sizeof(base), NULL, 0);
	if (!rc)
		rc = vu_set(dev, VU_SET_VRING_ADDR, &addr, sizeof(addr), NULL, 0);
	if (!rc)
		rc = vu_set(dev, VU_SET_VRING_CALL, &idx, sizeof(idx),
			    &vq->call_fd, 1);
	if (!rc)
		rc = vu_set(dev, VU_SET_VRING_ERR, &idx, sizeof(idx),
			    &vq->err_fd, 1);
	if (!rc)
		rc = vu_set(dev, VU_SET_VRING_KICK, &idx, sizeof(idx),
			    &vq->kick_fd, 1);
	if (!rc)
		rc = vu_set(dev, VU_SET_VRING_ENABLE, &enable, sizeof(enable),
			    NULL, 0);
	return rc;
}

static int get_config(struct vblk_dev *dev)
{
	struct virtio_blk_config cfg;
	struct vu_config c;
	struct vu_msg r;
	uint32_t len = offsetof(struct virtio_blk_config, unused1) + 3;
	int rc;

	memset(&c, 0, sizeof(c));
	c.offset = 0;
	c.size = len;
	rc = vu_request(dev, VU_GET_CONFIG, &c,
			offsetof(struct vu_config, data) + len, NULL, 0, &r);
	if (rc)
		return rc;
	if (r.size != offsetof(struct vu_config, data) + len ||
	    r.p.config.size != len)
		return vblk_fail(dev, -EPROTO,
				 "vhost-user GET_CONFIG: peer refused (size %u)",
				 r.size);
	memset(&cfg, 0, sizeof(cfg));
	memcpy(&cfg, r.p.config.data, len);
	vblk_config_to_info(&dev->info, &cfg);
	return 0;
}

static int user_program(struct vblk_dev *dev, const char *backend,
			const struct vblk_opts *o)
{
	uint64_t f = dev->info.offered & vblk_wanted_features(o);
	unsigned int i;
	int rc;

	(void)backend;
	if (!(f & BIT(VIRTIO_F_VERSION_1)))
		return vblk_fail(dev, -ENOTSUP, "peer does not offer VERSION_1");
	dev->info.features = f;
	f |= BIT(VU_F_PROTOCOL_FEATURES);
	rc = vu_set(dev, VU_SET_FEATURES, &f, sizeof(f), NULL, 0);
	if (rc)
		return rc;
	dev->event_idx = !!(f & BIT(VIRTIO_RING_F_EVENT_IDX));
	dev->indirect = !!(f & BIT(VIRTIO_RING_F_INDIRECT_DESC));
	rc = get_config(dev);
	if (!rc)
		rc = set_mem_table(dev);
	for (i = 0; !rc && i < dev->nvqs; i++)
		rc = set_vring(dev, &dev->vqs[i]);
	return rc;
}

static void user_disconnect(struct vblk_dev *dev)
{
	shutdown(dev->fd, SHUT_RDWR);
	close(dev->fd);
	dev->fd = -1;
}

const struct vblk_ops vblk_user_ops = {
	.name = "vhost-user",
	.connect = user_connect,
	.program = user_program,
	.disconnect = user_disconnect,
};
