/* SPDX-License-Identifier: GPL-2.0 */
/*
 * libvblk: a userspace virtio-blk driver that plays the guest.
 *
 * It owns guest memory (a memfd, shareable with a vhost-user peer), split
 * virtqueues in it, and submits virtio-blk requests to either
 *   - the kernel's /dev/vhost-blk (VBLK_TR_KERNEL), or
 *   - a vhost-user-blk peer such as qemu-storage-daemon (VBLK_TR_USER), or
 *   - the kernel's /dev/vhost-scsi with a LIO target (VBLK_TR_SCSI): each
 *     virtio-blk request becomes a SCSI command (scsi.c).
 * The request API is the same for all three. All state lives in struct
 * vblk_dev; distinct queues may be driven from distinct threads at once,
 * one queue must be driven by one thread at a time.
 */
#ifndef VBLK_H
#define VBLK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <linux/virtio_blk.h>

/* Transport selection (struct vblk_opts.transport). */
enum vblk_transport {
	VBLK_TR_AUTO = 0,	/* "scsi:...": vhost-scsi; a socket path:
				 * vhost-user; else kernel */
	VBLK_TR_KERNEL,		/* /dev/vhost-blk with a block device or file */
	VBLK_TR_USER,		/* vhost-user-blk over a unix socket */
	/*
	 * /dev/vhost-scsi; the backend is a vhost LIO target,
	 * "[scsi:]WWPN[:TPGT]" (TPGT default 1, LUN 0), e.g.
	 * "scsi:naa.5001405000000001:1". Types IN, OUT, FLUSH, GET_ID,
	 * DISCARD and WRITE_ZEROES (single range) become READ(16),
	 * WRITE(16), SYNCHRONIZE CACHE(10), INQUIRY (unit serial), UNMAP
	 * and WRITE SAME(16); others are refused by vblk_submit with
	 * -EOPNOTSUPP. vblk_errmsg() tells the sense data of a failure.
	 */
	VBLK_TR_SCSI,
};

/* Most data segments one request may carry (library limit). */
#define VBLK_MAX_SEGS		126
/* Default and largest queue size the library builds. */
#define VBLK_DEF_QUEUE_SIZE	256
#define VBLK_MAX_QUEUE_SIZE	1024
#define VBLK_MAX_QUEUES		16
/* Status value meaning "the device did not write a status byte". */
#define VBLK_S_NONE		0xff

struct vblk_opts {
	enum vblk_transport transport;
	unsigned int num_queues;	/* 0: 1 */
	unsigned int queue_size;	/* 0: VBLK_DEF_QUEUE_SIZE, power of 2 */
	unsigned int workers;		/* kernel: VHOST_BLK_SET_WORKERS; 0: keep */
	bool readonly;			/* open the backend O_RDONLY */
	bool no_indirect;		/* do not negotiate INDIRECT_DESC */
	bool no_event_idx;		/* do not negotiate EVENT_IDX */
	bool no_size_max;		/* do not negotiate SIZE_MAX (as OVMF) */
	bool no_backend;		/* kernel: program vqs, set no backend */
	const char *serial;		/* kernel: VHOST_BLK_SET_SERIAL */
	const char *vhost_dev;		/* kernel: default /dev/vhost-blk,
					 * scsi: /dev/vhost-scsi */
	size_t data_mem;		/* bytes of guest memory for data, 0: 64 MiB */
	/* kernel: VHOST_SET_VRING_BUSYLOOP_TIMEOUT of every vq; 0: off */
	unsigned int busyloop_us;
	/* vblk_reap(): spin on the used ring this long before sleeping */
	unsigned int poll_us;
};

/* What the device reports (config space / VHOST_BLK_GET_CONFIG). */
struct vblk_info {
	enum vblk_transport transport;
	uint64_t features;		/* negotiated virtio feature bits */
	uint64_t offered;		/* offered by the device */
	uint64_t capacity;		/* 512-byte sectors */
	uint32_t blk_size;		/* logical block size, bytes */
	uint32_t phys_blk_size;
	uint32_t seg_max;
	uint32_t size_max;
	uint32_t seg_alignment;		/* bytes, 0: not reported */
	uint32_t max_queues;		/* queues the device offers */
	uint32_t num_queues;		/* queues set up */
	uint32_t queue_size;
	uint32_t max_discard_sectors;
	uint32_t max_discard_seg;
	uint32_t discard_align;		/* bytes */
	uint32_t max_write_zeroes_sectors;
	uint32_t max_write_zeroes_seg;
	bool write_zeroes_may_unmap;
	bool readonly;
	bool flush;
};

/* Request flags. */
#define VBLK_REQ_UNMAP		(1U << 0)	/* WRITE_ZEROES may unmap */

struct vblk_req {
	/* filled by the caller */
	uint32_t type;			/* VIRTIO_BLK_T_* */
	uint32_t flags;			/* VBLK_REQ_* */
	uint64_t sector;
	uint32_t nsectors;		/* DISCARD / WRITE_ZEROES */
	const struct iovec *iov;	/* data, inside guest memory */
	unsigned int iovcnt;
	void *priv;			/* the caller's */
	const volatile uint8_t *raw_status;	/* raw requests: status byte */
	/* filled on completion */
	uint8_t status;			/* VIRTIO_BLK_S_* or VBLK_S_NONE */
	uint32_t used_len;
};

/* A descriptor of a hand-built chain (vblk_raw_submit). */
struct vblk_raw_desc {
	uint64_t addr;			/* guest physical address */
	uint32_t len;
	uint16_t flags;			/* VRING_DESC_F_* */
	uint16_t next;			/* < n: index in this array; else as is */
};

struct vblk_dev;

/*
 * Open BACKEND: a block device or regular file (kernel transport) or a
 * unix socket (vhost-user). On failure returns -errno and writes a message
 * to err (errlen bytes); *devp is left NULL.
 */
int vblk_open(struct vblk_dev **devp, const char *backend,
	      const struct vblk_opts *opts, char *err, size_t errlen);
void vblk_close(struct vblk_dev *dev);
const struct vblk_info *vblk_info(const struct vblk_dev *dev);
/* The last error message of the device's own calls. */
const char *vblk_errmsg(const struct vblk_dev *dev);

/* Guest memory: what requests point to must come from here. */
void *vblk_mem_alloc(struct vblk_dev *dev, size_t size);
void vblk_mem_free(struct vblk_dev *dev, void *p);
/* Guest physical address of p, or UINT64_MAX when p is not guest memory. */
uint64_t vblk_gpa(const struct vblk_dev *dev, const void *p);
void *vblk_hva(const struct vblk_dev *dev, uint64_t gpa, size_t len);

/*
 * Queue a request on queue q; it is seen by the device after vblk_kick.
 * -EAGAIN: queue full; -EFAULT: data outside guest memory; -EIO: queue
 * broken; -EINVAL: bad arguments; -EOPNOTSUPP: the transport cannot
 * express the request (vhost-scsi).
 */
int vblk_submit(struct vblk_dev *dev, unsigned int q, struct vblk_req *req);
int vblk_kick(struct vblk_dev *dev, unsigned int q);
/*
 * Collect completed requests of queue q into out[] (at most max), waiting
 * up to timeout_ms (-1: forever) until at least min are there. Returns the
 * number collected (which may be fewer than min on timeout), or -EIO when
 * the queue is broken (error eventfd signalled or peer gone) and nothing
 * completed.
 */
int vblk_reap(struct vblk_dev *dev, unsigned int q, struct vblk_req **out,
	      unsigned int max, unsigned int min, int timeout_ms);
unsigned int vblk_inflight(const struct vblk_dev *dev, unsigned int q);
bool vblk_broken(const struct vblk_dev *dev, unsigned int q);
/* Submit, kick and wait for one request: 0 (see req->status) or -errno. */
int vblk_do(struct vblk_dev *dev, unsigned int q, struct vblk_req *req,
	    int timeout_ms);

/*
 * Escape hatch for hostile requests: put a chain of n descriptors, written
 * exactly as given, on queue q. req->raw_status (if set) is read into
 * req->status on completion. vblk_raw_avail puts a bare head index into
 * the avail ring (no descriptor is allocated, nothing will complete).
 */
int vblk_raw_submit(struct vblk_dev *dev, unsigned int q,
		    const struct vblk_raw_desc *d, unsigned int n,
		    struct vblk_req *req);
int vblk_raw_avail(struct vblk_dev *dev, unsigned int q, uint16_t head);
/*
 * The ring as the device left it: our avail index, the used index and,
 * with EVENT_IDX, the avail event (how far the device has read avail).
 */
int vblk_raw_ring_state(const struct vblk_dev *dev, unsigned int q,
			uint16_t *avail_idx, uint16_t *used_idx,
			uint16_t *avail_event);

/* Kernel transport only. */
int vblk_vhost_fd(const struct vblk_dev *dev);
/* Set (fd >= 0) or unset (-1) the backend; refreshes vblk_info. */
int vblk_set_backend(struct vblk_dev *dev, int fd);

/* Names. */
const char *vblk_status_name(uint8_t status);
const char *vblk_type_name(uint32_t type);
const char *vblk_transport_name(enum vblk_transport t);

#endif /* VBLK_H */
