// SPDX-License-Identifier: GPL-2.0
/*
 * The backend and the kernel device: the DEVICE|FILE opened once, a
 * /dev/vhost-blk per connection (owner, workers, serial, backend), the
 * features and virtio-blk config space offered from what the kernel says.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "vhost_blkd.h"

int vud_backend_open(struct vud_opts *o)
{
	int fd = open(o->backend, (o->readonly ? O_RDONLY : O_RDWR) |
		      O_CLOEXEC);

	if (fd < 0) {
		vud_log("%s: %s", o->backend, strerror(errno));
		return -errno;
	}
	o->backend_fd = fd;
	return 0;
}

int vud_kioctl(struct vud_conn *c, unsigned long req, const char *name,
	       void *arg)
{
	if (ioctl(c->vhost, req, arg) < 0) {
		int rc = -errno;

		vud_log("%s: %s", name, strerror(errno));
		return rc;
	}
	return 0;
}

/* Drain every queue: the kernel completes what it started, then stops. */
int vud_backend_pause(struct vud_conn *c)
{
	int fd = -1;

	return VUD_IOCTL(c, VHOST_BLK_SET_BACKEND, &fd);
}

/* Serve again every queue whose kick the kernel holds. */
int vud_backend_resume(struct vud_conn *c)
{
	int fd = c->o->backend_fd;

	return VUD_IOCTL(c, VHOST_BLK_SET_BACKEND, &fd);
}

static int kdev_setup(struct vud_conn *c)
{
	const struct vud_opts *o = c->o;
	struct vhost_blk_serial s;
	uint32_t w = o->workers;
	unsigned int i;
	int rc;

	rc = VUD_IOCTL(c, VHOST_SET_OWNER, NULL);
	if (!rc)
		rc = VUD_IOCTL(c, VHOST_GET_FEATURES, &c->kfeatures);
	if (!rc && w)
		rc = VUD_IOCTL(c, VHOST_BLK_SET_WORKERS, &w);
	for (i = 0; !rc && o->busyloop_us && i < VHOST_BLK_MAX_VQS; i++) {
		struct vhost_vring_state bl = { i, o->busyloop_us };

		rc = VUD_IOCTL(c, VHOST_SET_VRING_BUSYLOOP_TIMEOUT, &bl);
	}
	if (!rc && o->busyloop_us)
		vud_log("the kernel worker polls each ring for %u us",
			o->busyloop_us);
	if (!rc && o->serial) {
		memset(&s, 0, sizeof(s));
		memcpy(s.id, o->serial, strnlen(o->serial, sizeof(s.id)));
		rc = VUD_IOCTL(c, VHOST_BLK_SET_SERIAL, &s);
	}
	/* no ring is served yet: the kernel gets no kick fd before it's ready */
	if (!rc)
		rc = vud_backend_resume(c);
	if (!rc)
		rc = VUD_IOCTL(c, VHOST_BLK_GET_CONFIG, &c->kcfg);
	return rc;
}

int vud_kdev_open(struct vud_conn *c)
{
	const char *path = c->o->vhost_dev ? c->o->vhost_dev :
			   "/dev/vhost-blk";
	int rc;

	c->vhost = open(path, O_RDWR | O_CLOEXEC);
	if (c->vhost < 0) {
		rc = -errno;
		vud_log("%s: %s", path, strerror(errno));
		return rc;
	}
	rc = kdev_setup(c);
	if (rc)
		vud_kdev_close(c);
	return rc;
}

/* Closing the device drains and releases everything the kernel holds. */
void vud_kdev_close(struct vud_conn *c)
{
	if (c->vhost >= 0)
		close(c->vhost);
	c->vhost = -1;
}

uint64_t vud_offered_features(const struct vud_conn *c)
{
	uint64_t f = c->kfeatures;

	/* no IOTLB over vhost-user here: guest memory comes as fds */
	f &= ~VUD_BIT(VIRTIO_F_ACCESS_PLATFORM);
	if (!(c->kcfg.flags & VHOST_BLK_CONFIG_F_RO))
		f &= ~VUD_BIT(VIRTIO_BLK_F_RO);
	if (!(c->kcfg.flags & VHOST_BLK_CONFIG_F_FLUSH))
		f &= ~VUD_BIT(VIRTIO_BLK_F_FLUSH);
	if (!c->kcfg.max_discard_sectors)
		f &= ~VUD_BIT(VIRTIO_BLK_F_DISCARD);
	if (!c->kcfg.max_write_zeroes_sectors)
		f &= ~VUD_BIT(VIRTIO_BLK_F_WRITE_ZEROES);
	/* the topology lives in the config space, which the daemon serves */
	f |= VUD_BIT(VIRTIO_BLK_F_TOPOLOGY) | VUD_BIT(VIRTIO_BLK_F_MQ);
	return f | VUD_BIT(VU_F_PROTOCOL_FEATURES);
}

uint64_t vud_offered_protocol(void)
{
	return VUD_BIT(VU_PROTO_F_MQ) | VUD_BIT(VU_PROTO_F_LOG_SHMFD) |
	       VUD_BIT(VU_PROTO_F_REPLY_ACK) | VUD_BIT(VU_PROTO_F_CONFIG) |
	       VUD_BIT(VU_PROTO_F_RESET_DEVICE);
}

static unsigned int ilog2_u32(uint32_t v)
{
	unsigned int n = 0;

	while (v > 1) {
		v >>= 1;
		n++;
	}
	return n;
}

void vud_config_fill(const struct vud_conn *c, struct virtio_blk_config *cfg)
{
	const struct vhost_blk_config *k = &c->kcfg;
	uint32_t lbs = k->logical_block_size ? k->logical_block_size : 512;
	uint32_t pbs = k->physical_block_size > lbs ?
		       k->physical_block_size : lbs;
	uint32_t segs = k->max_discard_seg ? k->max_discard_seg : 1;

	memset(cfg, 0, sizeof(*cfg));
	cfg->capacity = htole64(k->capacity);
	cfg->size_max = htole32(k->size_max);
	cfg->seg_max = htole32(k->seg_max);
	cfg->blk_size = htole32(lbs);
	cfg->physical_block_exp = ilog2_u32(pbs / lbs);
	cfg->min_io_size = htole16(pbs / lbs);
	cfg->num_queues = htole16(c->o->queues);
	cfg->max_discard_sectors = htole32(k->max_discard_sectors);
	cfg->max_discard_seg = htole32(k->max_discard_sectors ? segs : 0);
	cfg->discard_sector_alignment = htole32(k->discard_granularity / 512);
	cfg->max_write_zeroes_sectors = htole32(k->max_write_zeroes_sectors);
	cfg->max_write_zeroes_seg =
		htole32(k->max_write_zeroes_sectors ? segs : 0);
	cfg->write_zeroes_may_unmap = !!k->max_write_zeroes_sectors;
}
