// SPDX-License-Identifier: GPL-2.0
/*
 * fio-vblk: a fio external ioengine on libvblk. fio's io_u buffers are
 * allocated in the device's guest memory (iomem_alloc), so requests point
 * straight at them; each job drives its own virtqueue.
 *
 *   ioengine=external:/path/to/fio-vblk.so
 *   filename=/dev/ram0 (or vblk_backend=...; a socket means vhost-user)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fio.h"
#include "optgroup.h"

#include "fio_vblk.h"

struct vblk_job {
	struct vblk_shared *shared;
	struct vblk_dev *dev;
	unsigned int queue;
	struct vblk_req **done;
	unsigned int ndone;
	void *mem;
};

struct vblk_iou {
	struct vblk_req req;
	struct iovec iov[VBLK_MAX_SEGS];
};

static struct fio_option options[] = {
	{
		.name = "vblk_backend",
		.lname = "vblk backend",
		.type = FIO_OPT_STR_STORE,
		.off1 = offsetof(struct vblk_fio_options, backend),
		.help = "Block device, raw file, vhost-user socket or scsi:WWPN[:TPGT] (default: filename; fio splits filename at ':')",
		.category = FIO_OPT_C_ENGINE,
		.group = FIO_OPT_G_INVALID,
	},
	{
		.name = "vblk_queues",
		.lname = "vblk queues",
		.type = FIO_OPT_INT,
		.off1 = offsetof(struct vblk_fio_options, queues),
		.minval = 0,
		.maxval = VBLK_MAX_QUEUES,
		.def = "0",
		.help = "Virtqueues of the shared device (0: one per job sharing it with thread=1, else 1)",
		.category = FIO_OPT_C_ENGINE,
		.group = FIO_OPT_G_INVALID,
	},
	{
		.name = "vblk_workers",
		.lname = "vblk workers",
		.type = FIO_OPT_INT,
		.off1 = offsetof(struct vblk_fio_options, workers),
		.minval = 0,
		.maxval = 1024,
		.def = "0",
		.help = "vhost-blk worker threads (0: the device's default)",
		.category = FIO_OPT_C_ENGINE,
		.group = FIO_OPT_G_INVALID,
	},
	{
		.name = "vblk_queue_size",
		.lname = "vblk queue size",
		.type = FIO_OPT_INT,
		.off1 = offsetof(struct vblk_fio_options, queue_size),
		.minval = 0,
		.maxval = VBLK_MAX_QUEUE_SIZE,
		.def = "0",
		.help = "Descriptors per virtqueue, a power of 2 (0: 256)",
		.category = FIO_OPT_C_ENGINE,
		.group = FIO_OPT_G_INVALID,
	},
	{
		.name = "vblk_vhost_user",
		.lname = "vblk vhost-user",
		.type = FIO_OPT_BOOL,
		.off1 = offsetof(struct vblk_fio_options, vhost_user),
		.def = "0",
		.help = "The backend is a vhost-user socket (also found by stat)",
		.category = FIO_OPT_C_ENGINE,
		.group = FIO_OPT_G_INVALID,
	},
	{
		.name = "vblk_vhost_scsi",
		.lname = "vblk vhost-scsi",
		.type = FIO_OPT_BOOL,
		.off1 = offsetof(struct vblk_fio_options, vhost_scsi),
		.def = "0",
		.help = "The backend is a LIO vhost target WWPN[:TPGT] on /dev/vhost-scsi (also found by a scsi: prefix)",
		.category = FIO_OPT_C_ENGINE,
		.group = FIO_OPT_G_INVALID,
	},
	{
		.name = "vblk_vhost_dev",
		.lname = "vblk vhost device",
		.type = FIO_OPT_STR_STORE,
		.off1 = offsetof(struct vblk_fio_options, vhost_dev),
		.help = "vhost device node (default /dev/vhost-blk, /dev/vhost-scsi)",
		.category = FIO_OPT_C_ENGINE,
		.group = FIO_OPT_G_INVALID,
	},
	{
		.name = "vblk_mem",
		.lname = "vblk guest memory",
		.type = FIO_OPT_STR_VAL,
		.off1 = offsetof(struct vblk_fio_options, mem),
		.def = "0",
		.help = "Guest memory for data buffers (0: sized from iodepth and bs)",
		.category = FIO_OPT_C_ENGINE,
		.group = FIO_OPT_G_INVALID,
	},
	{
		.name = "vblk_busyloop",
		.lname = "vblk device busy polling",
		.type = FIO_OPT_INT,
		.off1 = offsetof(struct vblk_fio_options, busyloop_us),
		.minval = 0,
		.maxval = 1000000,
		.def = "0",
		.help = "/dev/vhost-blk: the worker polls each ring this many microseconds before it sleeps (VHOST_SET_VRING_BUSYLOOP_TIMEOUT; 0: off)",
		.category = FIO_OPT_C_ENGINE,
		.group = FIO_OPT_G_INVALID,
	},
	{
		.name = "vblk_poll",
		.lname = "vblk completion polling",
		.type = FIO_OPT_INT,
		.off1 = offsetof(struct vblk_fio_options, poll_us),
		.minval = 0,
		.maxval = 1000000,
		.def = "0",
		.help = "Spin on the used ring this many microseconds before waiting for the call eventfd (0: off)",
		.category = FIO_OPT_C_ENGINE,
		.group = FIO_OPT_G_INVALID,
	},
	{
		.name = NULL,
	},
};

static const char *backend_of(struct thread_data *td)
{
	struct vblk_fio_options *o = td->eo;

	if (o->backend && *o->backend)
		return o->backend;
	return td->o.nr_files ? td->files[0]->file_name : NULL;
}

/*
 * Jobs of this process (thread=1) that share @td's device. fio hands each
 * clone of a numjobs=N job a different numjobs value, so the default
 * queue count cannot come from td->o.numjobs: whichever job opened the
 * device first would decide it. Count the jobs themselves instead.
 */
static unsigned int sharing_jobs(struct thread_data *td)
{
	const char *backend = backend_of(td);
	struct thread_data *t;
	unsigned int n = 0;
	int i;

	if (!td->o.use_thread)
		return 1;
	for_each_td(t, i) {
		const char *b;

		if (t->io_ops != td->io_ops || !t->o.use_thread)
			continue;
		b = backend_of(t);
		if (b && !strcmp(b, backend))
			n++;
	}
	return n ? n : 1;
}

static enum vblk_transport transport(const struct vblk_fio_options *o)
{
	if (o->vhost_user)
		return VBLK_TR_USER;
	return o->vhost_scsi ? VBLK_TR_SCSI : VBLK_TR_AUTO;
}

static void job_opts(struct thread_data *td, struct vblk_opts *vo)
{
	struct vblk_fio_options *o = td->eo;
	unsigned long long bs = td_max_bs(td), per_job;

	memset(vo, 0, sizeof(*vo));
	vo->transport = transport(o);
	vo->num_queues = o->queues;
	if (!vo->num_queues)
		vo->num_queues = sharing_jobs(td);
	if (vo->num_queues > VBLK_MAX_QUEUES)
		vo->num_queues = VBLK_MAX_QUEUES;
	vo->workers = o->workers;
	vo->queue_size = o->queue_size;
	if (!vo->queue_size && td->o.iodepth > 128)
		vo->queue_size = VBLK_MAX_QUEUE_SIZE;
	vo->vhost_dev = o->vhost_dev;
	vo->busyloop_us = o->busyloop_us;
	vo->poll_us = o->poll_us;
	vo->readonly = td_read(td) && !td_write(td) && !td_trim(td) &&
		       !td->o.do_verify;
	/* every job's io_u buffers plus alignment slack */
	per_job = (unsigned long long)td->o.iodepth * bs + (2ULL << 20);
	vo->data_mem = o->mem ? o->mem : per_job * vo->num_queues;
}

static int vblk_fio_init(struct thread_data *td)
{
	struct vblk_opts vo;
	struct vblk_job *j;
	const char *backend = backend_of(td);
	char err[256];
	int rc;

	if (!backend) {
		log_err("fio-vblk: no backend (set filename or vblk_backend)\n");
		return 1;
	}
	j = calloc(1, sizeof(*j));
	if (!j)
		return 1;
	j->done = calloc(td->o.iodepth, sizeof(*j->done));
	job_opts(td, &vo);
	rc = j->done ? vblk_shared_get(backend, &vo, &j->shared, &j->queue,
				       err, sizeof(err)) : -ENOMEM;
	if (rc) {
		log_err("fio-vblk: %s: %s\n", backend,
			rc == -ENOMEM ? "out of memory" : err);
		free(j->done);
		free(j);
		return 1;
	}
	j->dev = j->shared->dev;
	td->io_ops_data = j;
	return 0;
}

static void vblk_fio_cleanup(struct thread_data *td)
{
	struct vblk_job *j = td->io_ops_data;

	if (!j)
		return;
	vblk_shared_put(j->shared);
	free(j->done);
	free(j);
	td->io_ops_data = NULL;
}

/* Called in the parent before the jobs start: learn the size only. */
static int vblk_fio_setup(struct thread_data *td)
{
	struct vblk_opts vo = { 0 };
	const char *backend = backend_of(td);
	struct vblk_fio_options *o = td->eo;
	struct vblk_dev *dev;
	struct fio_file *f;
	unsigned int i;
	char err[256];

	if (!backend) {
		log_err("fio-vblk: no backend (set filename or vblk_backend)\n");
		return 1;
	}
	vo.transport = transport(o);
	vo.vhost_dev = o->vhost_dev;
	vo.data_mem = 1 << 20;
	vo.readonly = !td_write(td) && !td->o.do_verify;
	if (vblk_open(&dev, backend, &vo, err, sizeof(err))) {
		log_err("fio-vblk: %s: %s\n", backend, err);
		return 1;
	}
	for_each_file(td, f, i) {
		f->real_file_size = vblk_info(dev)->capacity * 512;
		fio_file_set_size_known(f);
	}
	vblk_close(dev);
	return 0;
}

static int vblk_fio_iomem_alloc(struct thread_data *td, size_t size)
{
	struct vblk_job *j = td->io_ops_data;

	j->mem = vblk_mem_alloc(j->dev, size);
	if (!j->mem) {
		log_err("fio-vblk: %zu bytes of guest memory not available (raise vblk_mem)\n",
			size);
		return 1;
	}
	td->orig_buffer = j->mem;
	return 0;
}

static void vblk_fio_iomem_free(struct thread_data *td)
{
	struct vblk_job *j = td->io_ops_data;

	if (j && j->mem) {
		vblk_mem_free(j->dev, j->mem);
		j->mem = NULL;
	}
	td->orig_buffer = NULL;
}

static int vblk_fio_io_u_init(struct thread_data *td, struct io_u *io_u)
{
	struct vblk_iou *v = calloc(1, sizeof(*v));

	(void)td;
	if (!v)
		return 1;
	v->req.priv = io_u;
	io_u->engine_data = v;
	return 0;
}

static void vblk_fio_io_u_free(struct thread_data *td, struct io_u *io_u)
{
	(void)td;
	free(io_u->engine_data);
	io_u->engine_data = NULL;
}

/* Split the buffer into segments the device takes. */
static int build_iov(struct vblk_dev *dev, struct vblk_iou *v,
		     struct io_u *io_u)
{
	const struct vblk_info *in = vblk_info(dev);
	unsigned long long left = io_u->xfer_buflen;
	size_t seg = in->size_max ? in->size_max : left;
	char *p = io_u->xfer_buf;
	unsigned int n = 0;

	while (left) {
		size_t l = left < seg ? left : seg;

		if (n == VBLK_MAX_SEGS || (in->seg_max && n == in->seg_max))
			return -E2BIG;
		v->iov[n].iov_base = p;
		v->iov[n].iov_len = l;
		p += l;
		left -= l;
		n++;
	}
	v->req.iov = v->iov;
	v->req.iovcnt = n;
	return 0;
}

static int fill_req(struct vblk_job *j, struct vblk_iou *v,
		    struct io_u *io_u)
{
	struct vblk_req *r = &v->req;

	r->flags = 0;
	r->iov = NULL;
	r->iovcnt = 0;
	r->sector = io_u->offset / 512;
	r->nsectors = 0;
	switch (io_u->ddir) {
	case DDIR_READ:
		r->type = VIRTIO_BLK_T_IN;
		return build_iov(j->dev, v, io_u);
	case DDIR_WRITE:
		r->type = VIRTIO_BLK_T_OUT;
		return build_iov(j->dev, v, io_u);
	case DDIR_TRIM:
		r->type = VIRTIO_BLK_T_DISCARD;
		r->nsectors = io_u->xfer_buflen / 512;
		return 0;
	case DDIR_SYNC:
	case DDIR_DATASYNC:
		r->type = VIRTIO_BLK_T_FLUSH;
		r->sector = 0;
		return 0;
	default:
		return -EINVAL;
	}
}

static enum fio_q_status vblk_fio_queue(struct thread_data *td,
					struct io_u *io_u)
{
	struct vblk_job *j = td->io_ops_data;
	struct vblk_iou *v = io_u->engine_data;
	int rc;

	fio_ro_check(td, io_u);
	if (io_u->offset % 512 || io_u->xfer_buflen % 512) {
		io_u->error = EINVAL;
		return FIO_Q_COMPLETED;
	}
	rc = fill_req(j, v, io_u);
	if (!rc)
		rc = vblk_submit(j->dev, j->queue, &v->req);
	if (rc == -EAGAIN)
		return FIO_Q_BUSY;
	if (rc) {
		io_u->error = -rc;
		return FIO_Q_COMPLETED;
	}
	return FIO_Q_QUEUED;
}

static int vblk_fio_commit(struct thread_data *td)
{
	struct vblk_job *j = td->io_ops_data;
	int rc = vblk_kick(j->dev, j->queue);

	return rc ? -rc : 0;
}

static int status_errno(uint8_t status)
{
	switch (status) {
	case VIRTIO_BLK_S_OK:
		return 0;
	case VIRTIO_BLK_S_UNSUPP:
		return EOPNOTSUPP;
	default:
		return EIO;
	}
}

static int vblk_fio_getevents(struct thread_data *td, unsigned int min,
			      unsigned int max, const struct timespec *t)
{
	struct vblk_job *j = td->io_ops_data;
	int timeout = t ? t->tv_sec * 1000 + t->tv_nsec / 1000000 : -1;
	int n, i;

	if (max > td->o.iodepth)
		max = td->o.iodepth;
	n = vblk_reap(j->dev, j->queue, j->done, max, min, timeout);
	if (n < 0) {
		log_err("fio-vblk: queue %u: %s\n", j->queue,
			vblk_errmsg(j->dev));
		return n;
	}
	for (i = 0; i < n; i++) {
		struct io_u *io_u = j->done[i]->priv;

		io_u->error = status_errno(j->done[i]->status);
		if (!io_u->error)
			io_u->resid = 0;
	}
	j->ndone = n;
	return n;
}

static struct io_u *vblk_fio_event(struct thread_data *td, int ev)
{
	struct vblk_job *j = td->io_ops_data;

	return j->done[ev]->priv;
}

static int vblk_fio_get_file_size(struct thread_data *td, struct fio_file *f)
{
	struct vblk_job *j = td->io_ops_data;

	if (!j)
		return 0;	/* setup() already did it */
	f->real_file_size = vblk_info(j->dev)->capacity * 512;
	fio_file_set_size_known(f);
	return 0;
}

static int vblk_fio_open_file(struct thread_data *td, struct fio_file *f)
{
	(void)td;
	(void)f;
	return 0;
}

static int vblk_fio_close_file(struct thread_data *td, struct fio_file *f)
{
	(void)td;
	(void)f;
	return 0;
}

struct ioengine_ops ioengine = {
	.name = "vblk",
	.version = FIO_IOOPS_VERSION,
	.flags = FIO_DISKLESSIO | FIO_NODISKUTIL | FIO_NOEXTEND,
	.setup = vblk_fio_setup,
	.init = vblk_fio_init,
	.cleanup = vblk_fio_cleanup,
	.queue = vblk_fio_queue,
	.commit = vblk_fio_commit,
	.getevents = vblk_fio_getevents,
	.event = vblk_fio_event,
	.get_file_size = vblk_fio_get_file_size,
	.open_file = vblk_fio_open_file,
	.close_file = vblk_fio_close_file,
	.iomem_alloc = vblk_fio_iomem_alloc,
	.iomem_free = vblk_fio_iomem_free,
	.io_u_init = vblk_fio_io_u_init,
	.io_u_free = vblk_fio_io_u_free,
	.option_struct_size = sizeof(struct vblk_fio_options),
	.options = options,
};
