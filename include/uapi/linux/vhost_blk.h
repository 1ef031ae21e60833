/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * vhost-blk: userspace API of /dev/vhost-blk, the in-kernel virtio-blk
 * backend. The standard vhost ioctls of <linux/vhost.h> (owner, features,
 * memory table, vring setup, kick/call/err fds, log base) apply as for any
 * vhost device; these are the device's own. See Documentation/vhost-blk.rst.
 */
#ifndef _UAPI_LINUX_VHOST_BLK_H
#define _UAPI_LINUX_VHOST_BLK_H

#include <linux/types.h>
#include <linux/vhost.h>

/* Maximum number of virtqueues a vhost-blk device offers. */
#define VHOST_BLK_MAX_VQS	16
/* Maximum number of worker threads (VHOST_BLK_SET_WORKERS). */
#define VHOST_BLK_MAX_WORKERS	16
/* Length of the GET_ID string (VIRTIO_BLK_ID_BYTES). */
#define VHOST_BLK_SERIAL_LEN	20

/*
 * Set the backend: the fd of an open block device or regular file. The
 * device takes its own reference; the caller may close the fd. The file's
 * open mode decides read-only (O_RDONLY gives a read-only device). fd -1
 * unsets the backend; this drains every in-flight request before it
 * returns. Replacing one backend by another also drains the old one.
 * Needs VHOST_SET_OWNER first (-EPERM otherwise). Only the virtqueues
 * whose rings are set up (VHOST_SET_VRING_NUM/ADDR/KICK) when the backend
 * is set are served; set the features and rings first. A ring set up
 * later starts with the vring ioctl that completes its setup.
 *
 * Errors: -EBADF (not open for reading), -EINVAL (neither a block device
 * nor a regular file; opened with O_APPEND; a file without read_iter, or
 * without write_iter when open for writing, e.g. /proc/PID/mem),
 * -EOPNOTSUPP (a zoned block device), -EFAULT (a ring that is set up
 * cannot start: its rings are not accessible or its used ring not
 * writable). After an error no backend is set (the previous one, if any,
 * is gone too). A vring ioctl that would start its ring fails the same
 * way (-EFAULT) and leaves that ring stopped.
 */
#define VHOST_BLK_SET_BACKEND	_IOW(VHOST_VIRTIO, 0x50, int)

/*
 * Number of worker threads the virtqueues are spread over (1 to
 * VHOST_BLK_MAX_WORKERS, default 1): virtqueue i is served by worker
 * i % N. Only after VHOST_SET_OWNER and while no backend is set (-EBUSY).
 * On kernels whose vhost core has per-virtqueue workers this creates N
 * core workers (as VHOST_NEW_WORKER + VHOST_ATTACH_VRING_WORKER would);
 * on 6.1 the module runs its own threads in the owner's address space.
 */
#define VHOST_BLK_SET_WORKERS	_IOW(VHOST_VIRTIO, 0x51, __u32)

/* The serial returned by VIRTIO_BLK_T_GET_ID (not NUL-terminated if full). */
struct vhost_blk_serial {
	char id[VHOST_BLK_SERIAL_LEN];
};
#define VHOST_BLK_SET_SERIAL	_IOW(VHOST_VIRTIO, 0x52, struct vhost_blk_serial)

/*
 * What the backend offers, for the VMM to fill the virtio-blk config
 * space. Valid once a backend is set.
 */
struct vhost_blk_config {
	__u64 capacity;			/* in 512-byte sectors */
	__u32 logical_block_size;	/* bytes */
	__u32 physical_block_size;	/* bytes */
	__u32 seg_max;			/* segments per request */
	__u32 size_max;			/* bytes per segment */
	__u32 max_discard_sectors;	/* 0: discard not supported */
	__u32 max_write_zeroes_sectors;	/* 0: write zeroes not supported */
	__u32 discard_granularity;	/* bytes */
	__u32 flags;			/* VHOST_BLK_CONFIG_F_* */
	__u32 num_queues;		/* virtqueues offered */
	/*
	 * bytes: data segments that start and end on this boundary go to
	 * the backend without a copy; others are served through a bounce
	 * buffer (or the page cache). Only the sector and the total length
	 * must be multiples of logical_block_size.
	 */
	__u32 seg_alignment;
	__u32 max_discard_seg;		/* discard/write-zeroes segments */
	__u32 reserved[3];
};
#define VHOST_BLK_CONFIG_F_RO		(1U << 0)
#define VHOST_BLK_CONFIG_F_FLUSH	(1U << 1)
/* -ENXIO while no backend is set. */
#define VHOST_BLK_GET_CONFIG	_IOR(VHOST_VIRTIO, 0x53, struct vhost_blk_config)

#endif /* _UAPI_LINUX_VHOST_BLK_H */
