/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhost-blk: internal structures shared by the module's files. The design
 * (request lifetime, locking, drain protocol) is described at the top of
 * vhost_blk_main.c.
 */
#ifndef _VHOST_BLK_H
#define _VHOST_BLK_H

#include <linux/blkdev.h>
#include <linux/fs.h>
#include <linux/llist.h>
#include <linux/workqueue.h>
#include <linux/virtio_blk.h>
#include <uapi/linux/vhost_blk.h>
#include "vhost.h"

#define VHOST_BLK_FEATURES (VHOST_FEATURES |			\
	(1ULL << VIRTIO_BLK_F_MQ) |				\
	(1ULL << VIRTIO_BLK_F_FLUSH) |				\
	(1ULL << VIRTIO_BLK_F_DISCARD) |			\
	(1ULL << VIRTIO_BLK_F_WRITE_ZEROES) |			\
	(1ULL << VIRTIO_BLK_F_RO) |				\
	(1ULL << VIRTIO_BLK_F_SEG_MAX) |			\
	(1ULL << VIRTIO_BLK_F_SIZE_MAX) |			\
	(1ULL << VIRTIO_BLK_F_BLK_SIZE) |			\
	(1ULL << VIRTIO_F_ACCESS_PLATFORM))
#define VHOST_BLK_BACKEND_FEATURES (1ULL << VHOST_BACKEND_F_IOTLB_MSG_V2)

/* Limits the device advertises (GET_CONFIG) and enforces. */
#define VHOST_BLK_SEG_MAX	128		/* data segments per request */
#define VHOST_BLK_SIZE_MAX	(128U << 10)	/* bytes per data segment */
/* bytes per request (seg_max x size_max) */
#define VHOST_BLK_REQ_MAX	(VHOST_BLK_SEG_MAX * VHOST_BLK_SIZE_MAX)
#define VHOST_BLK_DISCARD_SEG	16		/* discard/wz segments */
#define VHOST_BLK_DISCARD_SECTORS (1U << 22)	/* sectors per discard segment */
#define VHOST_BLK_WZ_SECTORS	(1U << 16)	/* sectors per wz segment */

/*
 * Bounce buffers (bio backend, segments off the backend's alignment): a
 * vq takes no new request while this many bytes of them are in flight.
 */
#define VHOST_BLK_BOUNCE_MAX	(4U << 20)

/* Bounded work per kick, so one queue cannot starve the others. */
#define VHOST_BLK_WEIGHT	256		/* requests */
#define VHOST_BLK_BYTE_WEIGHT	(4U << 20)	/* bytes */

/* Inline arrays of a request, sized for the common 4k..64k I/O. */
#define VHOST_BLK_INLINE_PAGES	17
#define VHOST_BLK_INLINE_IOV	8
#define VHOST_BLK_INLINE_LOG	4

struct vhost_blk;
struct vhost_blk_req;

/* What a backend file is; immutable while set. */
struct vhost_blk_backend {
	struct file *file;
	struct block_device *bdev;	/* NULL: regular file backend */
	u64 capacity;			/* 512-byte sectors */
	u32 lbs;			/* logical block size */
	u32 pbs;
	/*
	 * Alignment - 1 of the address and length of a data segment that
	 * the backend takes as it is; other segments are bounced (bio) or
	 * go through the page cache (file).
	 */
	u32 align_mask;
	u32 max_discard_sectors;	/* 0: no discard */
	u32 max_wz_sectors;		/* 0: no write zeroes */
	u32 discard_granularity;
	bool ro;
	bool direct;			/* file: use IOCB_DIRECT */
};

/* The module's own worker thread (kernels whose core has one worker). */
struct vhost_blk_worker {
	struct task_struct *task;
	struct llist_head work_list;
	struct mm_struct *mm;
};

/* Our poll on a virtqueue's kick eventfd (the core's vq->poll is unused). */
struct vhost_blk_kick {
	poll_table table;
	wait_queue_head_t *wqh;
	wait_queue_entry_t wait;
};

struct vhost_blk_vq {
	struct vhost_virtqueue vq;
	struct vhost_blk *blk;
	struct vhost_work kick_work;	/* parse and submit */
	struct vhost_work done_work;	/* used ring for completed requests */
	struct work_struct orphan_work;	/* completions once workers are gone */
	struct llist_head done;		/* completed, not yet in the used ring */
	struct vhost_blk_kick kick;	/* dev->mutex */
	struct vhost_blk_worker *worker; /* own worker or NULL: the core's */
	bool broken;			/* vq->mutex: vq_err seen */
	/*
	 * Requests of this vq taken and not yet freed. A guest may offer
	 * one head many times over; at vq->num in flight kick_work stops
	 * taking more (throttled, vq->mutex) until completions free some.
	 */
	atomic_t inflight;
	atomic_t bounced;		/* bytes of bounce pages in flight */
	bool throttled;
};

struct vhost_blk {
	struct vhost_dev dev;
	struct vhost_blk_vq vqs[VHOST_BLK_MAX_VQS];
	struct vhost_virtqueue *vq_ptrs[VHOST_BLK_MAX_VQS];
	struct vhost_blk_backend *be;	/* dev->mutex */
	wait_queue_head_t drain_wq;	/* a vq's inflight reached 0 */
	char serial[VHOST_BLK_SERIAL_LEN];
	/* Workers, dev->mutex: own threads (6.1) or core worker ids. */
	struct vhost_blk_worker *workers;
	unsigned int nworkers;
	u32 core_ids[VHOST_BLK_MAX_WORKERS];
	unsigned int ncore;
};

/* One discard / write-zeroes range, validated. */
struct vhost_blk_range {
	u64 sector;
	u32 nsect;
	bool unmap;
};

/*
 * A request, from vhost_get_vq_desc() to the used ring. Fields up to
 * `iocb` are zeroed at allocation; the rest is written before it is read.
 */
struct vhost_blk_req {
	struct llist_node node;		/* vhost_blk_vq.done */
	struct vhost_blk_vq *bvq;
	struct vhost_blk_backend *be;
	u16 head;
	u8 status;			/* VIRTIO_BLK_S_* */
	bool no_status;			/* no writable status byte */
	u32 type;
	u64 sector;
	u32 len;			/* data bytes */
	u32 written;			/* bytes written to the guest (data) */
	bool bounce;			/* a data segment is off align_mask */
	u8 __user *status_addr;
	/* Data segments: point into vq->iov until submitted. */
	struct iovec *data;
	unsigned int ndata;
	unsigned int nranges;
	/*
	 * Dirty log of the device-writable area (VHOST_F_LOG_ALL): guest
	 * addresses, or with an IOTLB the host addresses and lengths of the
	 * device-writable iovecs (logged by translating back).
	 */
	struct vhost_log *log;
	bool log_hva;
	unsigned int log_num;
	u64 log_len;
	/* bio backend: pinned guest pages (or, bounce, our own pages) */
	struct page **pages;
	unsigned int npages;
	atomic_t pending;
	/* our copy of the data iovecs (file backend, bounced IN) */
	struct iovec *iov;
	/* Not zeroed: */
	struct kiocb iocb;		/* init_sync_kiocb() */
	struct work_struct sync_work;	/* file FLUSH/DISCARD/WZ: INIT_WORK() */
	struct vhost_blk_range ranges[VHOST_BLK_DISCARD_SEG]; /* nranges */
	struct page *inline_pages[VHOST_BLK_INLINE_PAGES];
	struct iovec inline_iov[VHOST_BLK_INLINE_IOV];
	struct vhost_log inline_log[VHOST_BLK_INLINE_LOG];
};

/* vhost_blk_req.c: every check of guest input. */
int vhost_blk_req_parse(struct vhost_blk_req *req, struct iovec *iov,
			unsigned int out, unsigned int in);
void vhost_blk_req_get_id(struct vhost_blk_req *req, const char *serial);
int vhost_blk_req_own_iov(struct vhost_blk_req *req);

/* vhost_blk_main.c */
extern struct workqueue_struct *vhost_blk_wq;
void vhost_blk_req_done(struct vhost_blk_req *req);

/* vhost_blk_bio.c */
int vhost_blk_bio_open(struct vhost_blk_backend *be);
int vhost_blk_bio_bounce(struct vhost_blk_req *req);
void vhost_blk_bio_submit(struct vhost_blk_req *req);
int vhost_blk_bio_copy_out(struct vhost_blk_req *req);
void vhost_blk_bio_release(struct vhost_blk_req *req);

/* vhost_blk_file.c */
int vhost_blk_file_open(struct vhost_blk_backend *be);
void vhost_blk_file_submit(struct vhost_blk_req *req);

/* vhost_blk_worker.c */
bool vhost_blk_queue(struct vhost_blk_vq *bvq, struct vhost_work *work);
int vhost_blk_set_workers(struct vhost_blk *blk, u32 n);
void vhost_blk_flush(struct vhost_blk *blk);
void vhost_blk_workers_stop(struct vhost_blk *blk);

#define vhost_blk_warn(fmt, ...) \
	pr_warn_ratelimited("vhost-blk: " fmt, ##__VA_ARGS__)

#endif /* _VHOST_BLK_H */
