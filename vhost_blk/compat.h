/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhost-blk: every difference between the supported kernels (6.1 and 6.12)
 * lives here, so the rest of the module is written once.
 *
 * 6.1:  one worker per vhost_dev (vhost_work_queue(dev, ...)); no
 *       per-virtqueue worker ioctls; eventfd_signal() takes a count.
 * 6.5+: vhost_worker per virtqueue (vhost_vq_work_queue()), the
 *       VHOST_NEW_WORKER / VHOST_ATTACH_VRING_WORKER ioctls served by
 *       vhost_worker_ioctl().
 * 6.7+: vfs_iocb_iter_write() takes the superblock's write access.
 */
#ifndef _VHOST_BLK_COMPAT_H
#define _VHOST_BLK_COMPAT_H

#include <linux/fs.h>
#include <linux/uaccess.h>
#include <linux/version.h>
#include "vhost.h"

/*
 * vfs_iocb_iter_write() takes the file system's write access itself since
 * 6.7 (kiocb_start_write(), and kiocb_end_write() unless -EIOCBQUEUED);
 * on 6.1 the caller does. Either way, after this call the write access is
 * held only when it returned -EIOCBQUEUED: ki_complete() must drop it.
 */
static inline ssize_t vhost_blk_iocb_write(struct file *file,
					   struct kiocb *iocb,
					   struct iov_iter *from)
{
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 7, 0)
	ssize_t ret;

	kiocb_start_write(iocb);
	ret = vfs_iocb_iter_write(file, iocb, from);
	if (ret != -EIOCBQUEUED)
		kiocb_end_write(iocb);
	return ret;
#else
	return vfs_iocb_iter_write(file, iocb, from);
#endif
}

/*
 * Per-virtqueue workers came with their uapi (6.5): test the feature, not
 * the version number.
 */
#ifdef VHOST_NEW_WORKER

/* The core runs each virtqueue on its own (attachable) worker. */
#define VHOST_BLK_CORE_VQ_WORKERS	1

static inline bool vhost_blk_core_queue(struct vhost_virtqueue *vq,
					struct vhost_work *work)
{
	return vhost_vq_work_queue(vq, work);
}

/* vq->poll: only queued by the core (IOTLB updates), never polled. */
static inline void vhost_blk_poll_init(struct vhost_virtqueue *vq,
				       vhost_work_fn_t fn)
{
	vhost_poll_init(&vq->poll, fn, EPOLLIN, vq->dev, vq);
}

static inline int vhost_blk_init_iotlb(struct vhost_dev *dev)
{
	return vhost_init_device_iotlb(dev);
}

static inline bool vhost_blk_is_core_worker_ioctl(unsigned int ioctl)
{
	return ioctl == VHOST_NEW_WORKER || ioctl == VHOST_FREE_WORKER ||
	       ioctl == VHOST_ATTACH_VRING_WORKER ||
	       ioctl == VHOST_GET_VRING_WORKER;
}

/* Caller holds dev->mutex; argp is a user pointer. */
static inline long vhost_blk_core_worker_ioctl(struct vhost_dev *dev,
					       unsigned int ioctl,
					       void __user *argp)
{
	return vhost_worker_ioctl(dev, ioctl, argp);
}

/*
 * The core exports its worker management only as an ioctl on user
 * memory: these go through a scratch area in the owner's address space
 * (the caller is the owner, so current->mm is the device's mm).
 */
static inline int vhost_blk_core_new_worker(struct vhost_dev *dev,
					    void __user *scratch, u32 *id)
{
	struct vhost_worker_state __user *s = scratch;
	long r;

	r = vhost_worker_ioctl(dev, VHOST_NEW_WORKER, s);
	if (r)
		return r;
	return get_user(*id, &s->worker_id);
}

static inline int vhost_blk_core_get_worker(struct vhost_dev *dev,
					    void __user *scratch,
					    u32 index, u32 *id)
{
	struct vhost_vring_worker __user *w = scratch;
	long r;

	if (put_user(index, &w->index))
		return -EFAULT;
	r = vhost_worker_ioctl(dev, VHOST_GET_VRING_WORKER, w);
	if (r)
		return r;
	return get_user(*id, &w->worker_id);
}

static inline int vhost_blk_core_attach_worker(struct vhost_dev *dev,
					       void __user *scratch,
					       u32 index, u32 id)
{
	struct vhost_vring_worker w = { .index = index, .worker_id = id };

	if (copy_to_user(scratch, &w, sizeof(w)))
		return -EFAULT;
	return vhost_worker_ioctl(dev, VHOST_ATTACH_VRING_WORKER, scratch);
}

static inline int vhost_blk_core_free_worker(struct vhost_dev *dev,
					     void __user *scratch, u32 id)
{
	struct vhost_worker_state s = { .worker_id = id };

	if (copy_to_user(scratch, &s, sizeof(s)))
		return -EFAULT;
	return vhost_worker_ioctl(dev, VHOST_FREE_WORKER, scratch);
}

#else /* 6.1 */

#define VHOST_BLK_CORE_VQ_WORKERS	0

/* One device-wide worker; dev->worker is NULL before SET_OWNER. */
static inline bool vhost_blk_core_queue(struct vhost_virtqueue *vq,
					struct vhost_work *work)
{
	if (!READ_ONCE(vq->dev->worker))
		return false;
	vhost_work_queue(vq->dev, work);
	return true;
}

static inline void vhost_blk_poll_init(struct vhost_virtqueue *vq,
				       vhost_work_fn_t fn)
{
	vhost_poll_init(&vq->poll, fn, EPOLLIN, vq->dev);
}

static inline int vhost_blk_init_iotlb(struct vhost_dev *dev)
{
	return vhost_init_device_iotlb(dev, true);
}

static inline bool vhost_blk_is_core_worker_ioctl(unsigned int ioctl)
{
	return false;
}

static inline long vhost_blk_core_worker_ioctl(struct vhost_dev *dev,
					       unsigned int ioctl,
					       void __user *argp)
{
	return -ENOIOCTLCMD;
}

static inline int vhost_blk_core_new_worker(struct vhost_dev *dev,
					    void __user *scratch, u32 *id)
{
	return -EOPNOTSUPP;
}

static inline int vhost_blk_core_get_worker(struct vhost_dev *dev,
					    void __user *scratch,
					    u32 index, u32 *id)
{
	return -EOPNOTSUPP;
}

static inline int vhost_blk_core_attach_worker(struct vhost_dev *dev,
					       void __user *scratch,
					       u32 index, u32 id)
{
	return -EOPNOTSUPP;
}

static inline int vhost_blk_core_free_worker(struct vhost_dev *dev,
					     void __user *scratch, u32 id)
{
	return -EOPNOTSUPP;
}

#endif

#endif /* _VHOST_BLK_COMPAT_H */
