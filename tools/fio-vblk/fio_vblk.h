/* SPDX-License-Identifier: GPL-2.0 */
/* fio-vblk: shared declarations of the engine's files. */
#ifndef FIO_VBLK_H
#define FIO_VBLK_H

#include "../libvblk/vblk.h"

struct vblk_fio_options {
	void *pad;			/* fio: keeps ->off1 from being 0 */
	char *backend;
	unsigned int queues;
	unsigned int workers;
	unsigned int queue_size;
	unsigned int vhost_user;
	unsigned int vhost_scsi;
	char *vhost_dev;
	unsigned long long mem;
	unsigned int busyloop_us;
	unsigned int poll_us;
};

/* One device shared by the jobs (threads) of a process that name it. */
struct vblk_shared {
	struct vblk_shared *next;
	char *key;
	struct vblk_dev *dev;
	unsigned int refs;
	unsigned int next_queue;
};

/* registry.c */
int vblk_shared_get(const char *backend, const struct vblk_opts *opts,
		    struct vblk_shared **sp, unsigned int *queue,
		    char *err, size_t errlen);
void vblk_shared_put(struct vblk_shared *s);

#endif /* FIO_VBLK_H */
