// SPDX-License-Identifier: GPL-2.0
/*
 * Device lifetime: pick the transport, reach the device, lay out guest
 * memory and virtqueues, let the transport program them, and undo it all.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vblk_int.h"

#define DEF_DATA_MEM	(64UL << 20)

int vblk_fail(struct vblk_dev *dev, int rc, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&dev->err_lock);
	va_start(ap, fmt);
	vsnprintf(dev->err, sizeof(dev->err), fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&dev->err_lock);
	return rc;
}

const char *vblk_errmsg(const struct vblk_dev *dev)
{
	return dev->err;
}

const struct vblk_info *vblk_info(const struct vblk_dev *dev)
{
	return &dev->info;
}

static enum vblk_transport pick_transport(const char *backend,
					  enum vblk_transport want)
{
	struct stat st;

	if (want != VBLK_TR_AUTO)
		return want;
	if (backend && !strncmp(backend, "scsi:", 5))
		return VBLK_TR_SCSI;
	if (backend && !stat(backend, &st) && S_ISSOCK(st.st_mode))
		return VBLK_TR_USER;
	return VBLK_TR_KERNEL;
}

static int check_opts(struct vblk_dev *dev, const struct vblk_opts *o,
		      unsigned int *nq, unsigned int *qsize)
{
	*nq = o->num_queues ? o->num_queues : 1;
	*qsize = o->queue_size ? o->queue_size : VBLK_DEF_QUEUE_SIZE;
	if (*qsize & (*qsize - 1) || *qsize > VBLK_MAX_QUEUE_SIZE)
		return vblk_fail(dev, -EINVAL,
				 "queue size %u: a power of 2 up to %u", *qsize,
				 VBLK_MAX_QUEUE_SIZE);
	if (*nq > VBLK_MAX_QUEUES || *nq > dev->info.max_queues)
		return vblk_fail(dev, -EINVAL,
				 "%u queues: the device offers %u", *nq,
				 dev->info.max_queues < VBLK_MAX_QUEUES ?
				 dev->info.max_queues : VBLK_MAX_QUEUES);
	return 0;
}

static const struct vblk_ops *transport_ops(enum vblk_transport t)
{
	switch (t) {
	case VBLK_TR_USER:
		return &vblk_user_ops;
	case VBLK_TR_SCSI:
		return &vblk_scsi_ops;
	default:
		return &vblk_kernel_ops;
	}
}

static int setup_queues(struct vblk_dev *dev, const struct vblk_opts *o)
{
	unsigned int nq, qsize, i;
	size_t data = o->data_mem ? o->data_mem : DEF_DATA_MEM;
	int rc;

	rc = check_opts(dev, o, &nq, &qsize);
	if (rc)
		return rc;
	rc = vblk_mem_init(&dev->mem, data + nq * vblk_vq_mem_bytes(qsize) +
			   dev->extra_mem);
	if (rc)
		return vblk_fail(dev, rc, "guest memory: %s", strerror(-rc));
	dev->vqs = calloc(nq, sizeof(*dev->vqs));
	if (!dev->vqs)
		return vblk_fail(dev, -ENOMEM, "out of memory");
	for (i = 0; i < nq; i++) {
		dev->nvqs = i + 1;
		rc = vblk_vq_init(dev, &dev->vqs[i], dev->vq_base + i, qsize);
		if (rc)
			return vblk_fail(dev, rc, "vq %u: %s", i, strerror(-rc));
	}
	dev->info.num_queues = nq;
	dev->info.queue_size = qsize;
	return 0;
}

int vblk_open(struct vblk_dev **devp, const char *backend,
	      const struct vblk_opts *opts, char *err, size_t errlen)
{
	static const struct vblk_opts defaults;
	const struct vblk_opts *o = opts ? opts : &defaults;
	struct vblk_dev *dev;
	int rc;

	*devp = NULL;
	dev = calloc(1, sizeof(*dev));
	if (!dev) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&dev->err_lock, NULL);
	dev->fd = -1;
	dev->mem.fd = -1;
	dev->poll_us = o->poll_us;
	dev->info.transport = pick_transport(backend, o->transport);
	dev->ops = transport_ops(dev->info.transport);
	rc = dev->ops->connect(dev, backend, o);
	if (!rc)
		rc = setup_queues(dev, o);
	if (!rc)
		rc = dev->ops->program(dev, backend, o);
	if (rc) {
		snprintf(err, errlen, "%s", dev->err[0] ? dev->err :
			 strerror(-rc));
		vblk_close(dev);
		return rc;
	}
	*devp = dev;
	return 0;
}

void vblk_close(struct vblk_dev *dev)
{
	unsigned int i;

	if (!dev)
		return;
	/* the device stops using guest memory before we unmap it */
	if (dev->fd >= 0)
		dev->ops->disconnect(dev);
	for (i = 0; i < dev->nvqs; i++)
		vblk_vq_fini(dev, &dev->vqs[i]);
	free(dev->vqs);
	if (dev->mem.base)
		vblk_mem_fini(&dev->mem);
	pthread_mutex_destroy(&dev->err_lock);
	free(dev);
}
