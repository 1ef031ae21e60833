// SPDX-License-Identifier: GPL-2.0
/*
 * Kernel transport: program /dev/vhost-blk with the standard vhost ioctls
 * and the device's own (include/uapi/linux/vhost_blk.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/vhost.h>
#include <linux/vhost_blk.h>
#include <linux/virtio_config.h>

#include "vblk_int.h"

#define BIT(n)	(1ULL << (n))

int vblk_kern_ioctl(struct vblk_dev *dev, unsigned long req, const char *name,
		    void *arg)
{
	if (ioctl(dev->fd, req, arg) < 0)
		return vblk_fail(dev, -errno, "%s: %s", name, strerror(errno));
	return 0;
}

#define KIOCTL(dev, req, arg)	vblk_kern_ioctl(dev, req, #req, arg)

static int kern_connect(struct vblk_dev *dev, const char *backend,
			const struct vblk_opts *o)
{
	const char *path = o->vhost_dev ? o->vhost_dev : "/dev/vhost-blk";
	uint64_t f;
	int rc;

	(void)backend;
	dev->fd = open(path, O_RDWR | O_CLOEXEC);
	if (dev->fd < 0)
		return vblk_fail(dev, -errno, "%s: %s", path, strerror(errno));
	rc = KIOCTL(dev, VHOST_SET_OWNER, NULL);
	if (!rc)
		rc = KIOCTL(dev, VHOST_GET_FEATURES, &f);
	if (rc)
		return rc;
	dev->info.offered = f;
	dev->info.max_queues = VHOST_BLK_MAX_VQS;
	return 0;
}

/*
 * VHOST_SET_FEATURES with @f (what the device offers that we want), and
 * the ring options it decides; VERSION_1 is required (vhost-blk and
 * vhost-scsi alike speak modern virtio only).
 */
int vblk_kern_set_features(struct vblk_dev *dev, uint64_t f)
{
	int rc;

	if (!(f & BIT(VIRTIO_F_VERSION_1)))
		return vblk_fail(dev, -ENOTSUP,
				 "device does not offer VERSION_1");
	rc = KIOCTL(dev, VHOST_SET_FEATURES, &f);
	if (rc)
		return rc;
	dev->info.features = f;
	dev->event_idx = !!(f & BIT(VIRTIO_RING_F_EVENT_IDX));
	dev->indirect = !!(f & BIT(VIRTIO_RING_F_INDIRECT_DESC));
	return 0;
}

int vblk_kern_set_mem_table(struct vblk_dev *dev)
{
	struct vhost_memory *m;
	int rc;

	m = calloc(1, sizeof(*m) + sizeof(m->regions[0]));
	if (!m)
		return -ENOMEM;
	m->nregions = 1;
	m->regions[0].guest_phys_addr = dev->mem.gpa_base;
	m->regions[0].memory_size = dev->mem.size;
	m->regions[0].userspace_addr = (uintptr_t)dev->mem.base;
	rc = KIOCTL(dev, VHOST_SET_MEM_TABLE, m);
	free(m);
	return rc;
}

int vblk_kern_set_vring(struct vblk_dev *dev, struct vblk_vq *vq)
{
	struct vhost_vring_state num = { vq->idx, vq->num };
	struct vhost_vring_state base = { vq->idx, 0 };
	struct vhost_vring_addr addr = {
		.index = vq->idx,
		.desc_user_addr = (uintptr_t)vq->desc,
		.avail_user_addr = (uintptr_t)vq->avail,
		.used_user_addr = (uintptr_t)vq->used,
	};
	struct vhost_vring_file kick = { vq->idx, vq->kick_fd };
	struct vhost_vring_file call = { vq->idx, vq->call_fd };
	struct vhost_vring_file err = { vq->idx, vq->err_fd };
	int rc;

	rc = KIOCTL(dev, VHOST_SET_VRING_NUM, &num);
	if (!rc)
		rc = KIOCTL(dev, VHOST_SET_VRING_BASE, &base);
	if (!rc)
		rc = KIOCTL(dev, VHOST_SET_VRING_ADDR, &addr);
	if (!rc)
		rc = KIOCTL(dev, VHOST_SET_VRING_KICK, &kick);
	if (!rc)
		rc = KIOCTL(dev, VHOST_SET_VRING_CALL, &call);
	if (!rc)
		rc = KIOCTL(dev, VHOST_SET_VRING_ERR, &err);
	return rc;
}

static void kconfig_to_info(struct vblk_info *info,
			    const struct vhost_blk_config *c)
{
	info->capacity = c->capacity;
	info->blk_size = c->logical_block_size;
	info->phys_blk_size = c->physical_block_size;
	info->seg_max = c->seg_max;
	info->size_max = c->size_max;
	info->max_discard_sectors = c->max_discard_sectors;
	info->max_discard_seg = c->max_discard_sectors ?
				(c->max_discard_seg ? c->max_discard_seg : 1) : 0;
	info->discard_align = c->discard_granularity;
	info->max_write_zeroes_sectors = c->max_write_zeroes_sectors;
	info->max_write_zeroes_seg = c->max_write_zeroes_sectors ?
				     (c->max_discard_seg ? c->max_discard_seg : 1) : 0;
	info->seg_alignment = c->seg_alignment;
	info->write_zeroes_may_unmap = c->max_write_zeroes_sectors != 0;
	info->readonly = !!(c->flags & VHOST_BLK_CONFIG_F_RO);
	info->flush = !!(c->flags & VHOST_BLK_CONFIG_F_FLUSH);
	if (c->num_queues)
		info->max_queues = c->num_queues;
}

static int refresh_config(struct vblk_dev *dev)
{
	struct vhost_blk_config c;
	int rc;

	memset(&c, 0, sizeof(c));
	rc = KIOCTL(dev, VHOST_BLK_GET_CONFIG, &c);
	if (!rc)
		kconfig_to_info(&dev->info, &c);
	return rc;
}

int vblk_set_backend(struct vblk_dev *dev, int fd)
{
	int rc;

	if (dev->info.transport != VBLK_TR_KERNEL)
		return vblk_fail(dev, -EOPNOTSUPP,
				 "backends are set on the kernel transport only");
	rc = KIOCTL(dev, VHOST_BLK_SET_BACKEND, &fd);
	if (rc || fd < 0)
		return rc;
	return refresh_config(dev);
}

int vblk_vhost_fd(const struct vblk_dev *dev)
{
	return dev->info.transport == VBLK_TR_KERNEL ? dev->fd : -1;
}

static int set_backend_path(struct vblk_dev *dev, const char *backend,
			    bool ro)
{
	int fd, rc;

	fd = open(backend, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0)
		return vblk_fail(dev, -errno, "%s: %s", backend,
				 strerror(errno));
	rc = vblk_set_backend(dev, fd);
	close(fd);	/* the device holds its own reference */
	return rc;
}

static int set_extras(struct vblk_dev *dev, const struct vblk_opts *o)
{
	struct vhost_blk_serial s;
	uint32_t w = o->workers;
	unsigned int i;
	int rc = 0;

	if (w)
		rc = KIOCTL(dev, VHOST_BLK_SET_WORKERS, &w);
	for (i = 0; !rc && o->busyloop_us && i < dev->nvqs; i++) {
		struct vhost_vring_state bl = { i, o->busyloop_us };

		rc = KIOCTL(dev, VHOST_SET_VRING_BUSYLOOP_TIMEOUT, &bl);
	}
	if (!rc && o->serial) {
		memset(&s, 0, sizeof(s));
		memcpy(s.id, o->serial, strnlen(o->serial, sizeof(s.id)));
		rc = KIOCTL(dev, VHOST_BLK_SET_SERIAL, &s);
	}
	return rc;
}

static int kern_program(struct vblk_dev *dev, const char *backend,
			const struct vblk_opts *o)
{
	unsigned int i;
	int rc;

	rc = vblk_kern_set_features(dev,
				    dev->info.offered & vblk_wanted_features(o));
	if (!rc)
		rc = vblk_kern_set_mem_table(dev);
	for (i = 0; !rc && i < dev->nvqs; i++)
		rc = vblk_kern_set_vring(dev, &dev->vqs[i]);
	if (!rc)
		rc = set_extras(dev, o);
	if (rc || o->no_backend || !backend)
		return rc;
	return set_backend_path(dev, backend, o->readonly);
}

static void kern_disconnect(struct vblk_dev *dev)
{
	close(dev->fd);
	dev->fd = -1;
}

const struct vblk_ops vblk_kernel_ops = {
	.name = "vhost-kernel",
	.connect = kern_connect,
	.program = kern_program,
	.disconnect = kern_disconnect,
};
