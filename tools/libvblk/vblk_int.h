/* SPDX-License-Identifier: GPL-2.0 */
/* libvblk internals: shared by the files of the library only. */
#ifndef VBLK_INT_H
#define VBLK_INT_H

#include <pthread.h>
#include <stdarg.h>

#include <linux/virtio_ring.h>

#include "vblk.h"

/* Guest memory: one memfd mapping, handed out in pages. */
#define VBLK_PAGE	4096UL

struct vblk_mem {
	int fd;
	uint8_t *base;
	size_t size;
	uint64_t gpa_base;	/* guest physical address of base */
	size_t npages;
	uint32_t *run;		/* run[p]: pages allocated at p, 0 if none */
	uint8_t *used;		/* used[p]: page p is allocated */
	pthread_mutex_t lock;	/* protects run[] and used[] */
};

/* Per in-flight request: guest memory for header, status, segments. */
struct vblk_slot {
	struct virtio_blk_outhdr *hdr;
	uint8_t *status;
	struct virtio_blk_discard_write_zeroes *dwz;
	struct vring_desc *itable;	/* indirect table, VBLK_MAX_SEGS + 2 */
	struct vblk_req *req;
	uint16_t head;
	uint16_t ndesc;			/* descriptors taken from the ring */
	bool raw;
};

#define VBLK_SLOT_BYTES	(64 + (VBLK_MAX_SEGS + 2) * sizeof(struct vring_desc))

struct vblk_vq {
	unsigned int idx;
	unsigned int num;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t *next;			/* shadow chain links, ours only */
	uint16_t free_head;
	unsigned int num_free;
	uint16_t avail_idx;		/* next avail index we publish */
	uint16_t kicked_idx;		/* avail index at the last kick */
	uint16_t last_used;
	struct vblk_slot *slots;
	uint16_t *free_slots;
	unsigned int nfree_slots;
	uint16_t *head_slot;		/* desc head -> slot + 1, 0: none */
	unsigned int inflight;
	bool broken;
	int kick_fd;
	int call_fd;
	int err_fd;
};

struct vblk_dev;

/* A request's descriptor chain as built, before it goes to the ring. */
struct vblk_chain {
	struct vring_desc d[VBLK_MAX_SEGS + 2];
	unsigned int n;
};

struct vblk_ops {
	const char *name;
	/* reach the device, learn offered features and queue count */
	int (*connect)(struct vblk_dev *dev, const char *backend,
		       const struct vblk_opts *opts);
	/* features, memory table, vrings, backend; then fill dev->info */
	int (*program)(struct vblk_dev *dev, const char *backend,
		       const struct vblk_opts *opts);
	void (*disconnect)(struct vblk_dev *dev);
	/*
	 * Transports whose device is not virtio-blk (virtio-scsi): build the
	 * chain of req in slot `slot` of vq, and turn what the device wrote
	 * back into a VIRTIO_BLK_S_* status. NULL: the virtio-blk format.
	 */
	int (*build)(struct vblk_dev *dev, struct vblk_vq *vq,
		     unsigned int slot, const struct vblk_req *req,
		     struct vblk_chain *c);
	uint8_t (*status)(struct vblk_dev *dev, struct vblk_vq *vq,
			  unsigned int slot, uint32_t used_len);
};

struct vblk_dev {
	const struct vblk_ops *ops;
	struct vblk_info info;
	struct vblk_mem mem;
	struct vblk_vq *vqs;
	unsigned int nvqs;
	int fd;				/* /dev/vhost-blk or the socket */
	bool event_idx;
	bool indirect;
	unsigned int poll_us;		/* vblk_opts.poll_us */
	uint64_t proto_features;	/* vhost-user */
	unsigned int vq_base;		/* vhost index of request queue 0 */
	size_t extra_mem;		/* guest memory the transport needs */
	void *tr;			/* transport state (vhost-scsi) */
	pthread_mutex_t err_lock;	/* protects err */
	char err[256];
};

extern const struct vblk_ops vblk_kernel_ops;
extern const struct vblk_ops vblk_user_ops;
extern const struct vblk_ops vblk_scsi_ops;

__attribute__((format(printf, 3, 4)))
int vblk_fail(struct vblk_dev *dev, int rc, const char *fmt, ...);

/* mem.c */
int vblk_mem_init(struct vblk_mem *mem, size_t size);
void vblk_mem_fini(struct vblk_mem *mem);

/* req.c */
void vblk_chain_add(struct vblk_chain *c, uint64_t addr, uint32_t len,
		    bool writable);
int vblk_chain_add_data(struct vblk_dev *dev, struct vblk_chain *c,
			const struct vblk_req *req, bool writable);

/* kern.c: the vhost ioctls vhost-blk and vhost-scsi share */
int vblk_kern_ioctl(struct vblk_dev *dev, unsigned long req,
		    const char *name, void *arg);
int vblk_kern_set_features(struct vblk_dev *dev, uint64_t f);
int vblk_kern_set_mem_table(struct vblk_dev *dev);
int vblk_kern_set_vring(struct vblk_dev *dev, struct vblk_vq *vq);

/* vring.c */
size_t vblk_vq_mem_bytes(unsigned int num);
int vblk_vq_init(struct vblk_dev *dev, struct vblk_vq *vq, unsigned int idx,
		 unsigned int num);
void vblk_vq_fini(struct vblk_dev *dev, struct vblk_vq *vq);
int vblk_vq_get_slot(struct vblk_vq *vq);
void vblk_vq_put_slot(struct vblk_vq *vq, unsigned int slot);
int vblk_vq_alloc_descs(struct vblk_vq *vq, unsigned int n, uint16_t *out);
void vblk_vq_publish(struct vblk_dev *dev, struct vblk_vq *vq,
		     unsigned int slot, uint16_t head, uint16_t ndesc);
int vblk_vq_pop_used(struct vblk_dev *dev, struct vblk_vq *vq,
		     struct vblk_req **reqp);
void vblk_vq_want_irq(struct vblk_dev *dev, struct vblk_vq *vq);
bool vblk_vq_has_used(struct vblk_vq *vq);
int vblk_vq_kick(struct vblk_dev *dev, struct vblk_vq *vq);

/* features.c */
uint64_t vblk_wanted_features(const struct vblk_opts *opts);
void vblk_config_to_info(struct vblk_info *info,
			 const struct virtio_blk_config *cfg);

#endif /* VBLK_INT_H */
