// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk: in-kernel virtio-blk backend, /dev/vhost-blk.
 *
 * DESIGN
 *
 * Request lifetime. A kick (our own wait entry on the vq's kick eventfd)
 * queues the vq's kick_work on the vq's worker. kick_work, under
 * vq->mutex, takes heads with vhost_get_vq_desc() (at most
 * VHOST_BLK_WEIGHT requests / VHOST_BLK_BYTE_WEIGHT bytes per run, then it
 * requeues itself so the other queues of the same worker get their turn;
 * with a busyloop timeout it polls an empty ring that long before it
 * waits for the next kick),
 * allocates a vhost_blk_req, counts it in bvq->inflight, and has
 * vhost_blk_req.c check it. A refused request completes at once with its
 * status; a valid one goes to the backend: the bio backend pins the guest
 * pages and submits bios under a plug, the file backend issues a kiocb.
 * Completion (bio end_io, ki_complete, or inline) puts the request on the
 * vq's lock-free `done` list and queues done_work on the vq's worker
 * (kick_work also empties the list before it returns, for the requests
 * that completed during submission). The completion, under vq->mutex and
 * in the owner's mm, writes the status
 * byte, dirty-logs the device-writable area when VHOST_F_LOG_ALL is on,
 * adds the heads to the used ring (vhost_add_used_n() logs the ring),
 * signals the call eventfd once per batch, then unpins, frees and drops
 * bvq->inflight. If the vq's worker is gone (6.12: the owner was killed)
 * the completion runs from a system workqueue that only releases the
 * request (the guest is gone).
 *
 * Locking.
 *   dev->mutex: ioctls; blk->be, the kick wait entries, the workers,
 *               the serial. Taken before any vq->mutex.
 *   vq->mutex:  the ring (vhost core), the vq's backend pointer
 *               (vhost_vq_get_backend), bvq->broken.
 *   done list:  llist, producers in any context, consumer under vq->mutex.
 *   bvq->inflight: atomic, bounded by vq->num (bvq->throttled); per
 *               vq, so queues share no counter. drain_wq is woken when
 *               one reaches zero while a drain waits (wq_has_sleeper()).
 *   vhost_blk_req_done() runs in an RCU read section; the drain waits
 *               for a grace period, so no completion touches a vq that
 *               release is about to free.
 *
 * Drain protocol (SET_BACKEND -1, backend swap, RESET_OWNER, release):
 * with dev->mutex held, stop every kick wait entry, clear every vq's
 * backend under its vq->mutex (a running kick_work finishes its loop
 * first; later ones see no backend and return), wait until every vq's
 * inflight is zero (completions only need vq->mutex), then flush the
 * workers and the orphan works so no work item still runs. Only then is
 * the old backend file released.
 */
#include <linux/module.h>
#include <linux/miscdevice.h>
#include <linux/fs.h>
#include <linux/file.h>
#include <linux/slab.h>
#include <linux/mm.h>
#include <linux/poll.h>
#include <linux/blkdev.h>
#include <linux/sched/clock.h>
#include <linux/sched/signal.h>
#include "vhost_blk.h"
#include "compat.h"

static struct kmem_cache *vhost_blk_req_cache;
/* Blocking file operations (fsync, fallocate); drained at module exit. */
struct workqueue_struct *vhost_blk_wq;

/* ---- completion ------------------------------------------------------- */

static void vhost_blk_req_free(struct vhost_blk_req *req)
{
	struct vhost_blk_vq *bvq = req->bvq;
	struct vhost_blk *blk = bvq->blk;

	if (req->be && req->be->bdev)
		vhost_blk_bio_release(req);
	if (req->iov && req->iov != req->inline_iov)
		kfree(req->iov);
	if (req->log != req->inline_log)
		kfree(req->log);
	kmem_cache_free(vhost_blk_req_cache, req);
	/* the barrier of wq_has_sleeper() pairs with the drain's wait_event */
	if (atomic_dec_and_test(&bvq->inflight) &&
	    wq_has_sleeper(&blk->drain_wq))
		wake_up(&blk->drain_wq);
}

/* Mark the device-writable area of a request dirty. */
static void vhost_blk_req_log(struct vhost_blk_req *req)
{
	struct vhost_virtqueue *vq = &req->bvq->vq;
	unsigned int i;

	if (!req->log_hva) {
		vhost_log_write(vq, req->log, req->log_num, req->log_len,
				NULL, 0);
		return;
	}
	/* With an IOTLB the core logs host addresses, one iovec at a time. */
	for (i = 0; i < req->log_num; i++) {
		struct iovec one = {
			.iov_base = (void __user *)(uintptr_t)req->log[i].addr,
			.iov_len = req->log[i].len,
		};

		vhost_log_write(vq, NULL, 0, one.iov_len, &one, 1);
	}
}

/* Status byte and dirty log; returns the used length. In the owner's mm. */
static u32 vhost_blk_req_to_guest(struct vhost_blk_req *req)
{
	struct vhost_virtqueue *vq = &req->bvq->vq;

	if (req->no_status)
		return 0;
	/* A read through bounce pages: the data goes to the guest now. */
	if (req->bounce && req->be->bdev && req->type == VIRTIO_BLK_T_IN &&
	    req->status == VIRTIO_BLK_S_OK && vhost_blk_bio_copy_out(req)) {
		vhost_blk_warn("cannot copy a bounced read to the guest\n");
		req->status = VIRTIO_BLK_S_IOERR;
		req->written = 0;
	}
	if (put_user(req->status, req->status_addr))
		vq_err(vq, "vhost-blk: cannot write the status byte\n");
	if (req->log_num && vhost_has_feature(vq, VHOST_F_LOG_ALL) &&
	    req->log_hva == !!vq->iotlb)
		vhost_blk_req_log(req);
	return req->written + 1;
}

/*
 * The vq takes no more requests for now: a ring's worth in flight, or
 * VHOST_BLK_BOUNCE_MAX bytes of bounce pages. Its completions requeue it.
 */
static bool vhost_blk_vq_full(struct vhost_blk_vq *bvq)
{
	return atomic_read(&bvq->inflight) >= bvq->vq.num ||
	       atomic_read(&bvq->bounced) >= VHOST_BLK_BOUNCE_MAX;
}

/* Called with vq->mutex held, on the vq's worker. */
static void vhost_blk_complete(struct vhost_blk_vq *bvq)
{
	struct vhost_virtqueue *vq = &bvq->vq;
	struct llist_node *node, *batch;
	struct vhost_blk_req *req, *tmp;
	unsigned int max;
	int n;

	/*
	 * A batch never exceeds the ring: vhost_add_used_n() wraps once
	 * only, and a guest that offers one head many times over could
	 * otherwise make it write past the end of the used ring.
	 */
	max = min_t(unsigned int, vq->num, vq->dev->iov_limit) ?: 1;
	node = llist_reverse_order(llist_del_all(&bvq->done));
	while (node) {
		batch = node;
		for (n = 0; node && n < max; n++) {
			req = llist_entry(node, struct vhost_blk_req, node);
			vq->heads[n].id = cpu_to_vhost32(vq, req->head);
			vq->heads[n].len =
				cpu_to_vhost32(vq, vhost_blk_req_to_guest(req));
			node = node->next;
		}
		if (vhost_add_used_n(vq, vq->heads, n))
			vq_err(vq, "vhost-blk: cannot update the used ring\n");
		vhost_signal(vq->dev, vq);
		/* inflight drops only once the used ring holds the heads. */
		for (req = llist_entry(batch, struct vhost_blk_req, node);
		     n--; req = tmp) {
			tmp = llist_entry(req->node.next, struct vhost_blk_req,
					  node);
			vhost_blk_req_free(req);
		}
	}
	if (bvq->throttled && !vhost_blk_vq_full(bvq)) {
		bvq->throttled = false;
		vhost_blk_queue(bvq, &bvq->kick_work);
	}
}

static void vhost_blk_done_work(struct vhost_work *work)
{
	struct vhost_blk_vq *bvq = container_of(work, struct vhost_blk_vq,
						done_work);

	mutex_lock(&bvq->vq.mutex);
	vhost_blk_complete(bvq);
	mutex_unlock(&bvq->vq.mutex);
}

/* The vq has no worker any more: release without touching the guest. */
static void vhost_blk_orphan_work(struct work_struct *work)
{
	struct vhost_blk_vq *bvq = container_of(work, struct vhost_blk_vq,
						orphan_work);
	struct vhost_blk_req *req, *tmp;
	struct llist_node *node = llist_del_all(&bvq->done);

	llist_for_each_entry_safe(req, tmp, node, node)
		vhost_blk_req_free(req);
}

/*
 * Any context: hand a finished request to its vq's worker. Once the
 * request is on the done list another completion may free it and drop
 * bvq->inflight to zero, so bvq must not outlive this RCU read section:
 * the drain waits for a grace period before it flushes and frees.
 */
void vhost_blk_req_done(struct vhost_blk_req *req)
{
	struct vhost_blk_vq *bvq = req->bvq;

	rcu_read_lock();
	if (llist_add(&req->node, &bvq->done) &&
	    !vhost_blk_queue(bvq, &bvq->done_work))
		queue_work(system_wq, &bvq->orphan_work);
	rcu_read_unlock();
}

/* ---- submission ------------------------------------------------------- */

/*
 * Remember what to dirty-log at completion: the guest addresses the core
 * collected or, with an IOTLB, the device-writable iovecs (wr, in).
 */
static int vhost_blk_save_log(struct vhost_blk_req *req,
			      const struct vhost_log *log, unsigned int num,
			      const struct iovec *wr, unsigned int in)
{
	unsigned int i;

	req->log_hva = !!req->bvq->vq.iotlb;
	if (req->log_hva)
		num = in;
	req->log = req->inline_log;
	if (num > VHOST_BLK_INLINE_LOG) {
		req->log = kmalloc_array(num, sizeof(*log), GFP_KERNEL);
		if (!req->log)
			return -ENOMEM;
	}
	for (i = 0; i < num; i++) {
		if (req->log_hva) {
			req->log[i].addr = (uintptr_t)wr[i].iov_base;
			req->log[i].len = wr[i].iov_len;
		} else {
			req->log[i] = log[i];
		}
		req->log_len += req->log[i].len;
	}
	req->log_num = num;
	return 0;
}

/* Returns the bytes of the request, or -ENOMEM (head given back). */
static long vhost_blk_handle_one(struct vhost_blk_vq *bvq,
				 struct vhost_blk_backend *be, int head,
				 unsigned int out, unsigned int in,
				 const struct vhost_log *log,
				 unsigned int log_num)
{
	struct vhost_virtqueue *vq = &bvq->vq;
	struct vhost_blk_req *req;
	long len;

	req = kmem_cache_alloc(vhost_blk_req_cache, GFP_KERNEL);
	if (!req)
		goto nomem;
	memset(req, 0, offsetof(struct vhost_blk_req, iocb));
	req->bvq = bvq;
	req->be = be;
	req->head = head;
	req->status = VIRTIO_BLK_S_OK;
	req->log = req->inline_log;
	if (log && vhost_blk_save_log(req, log, log_num, vq->iov + out, in)) {
		kmem_cache_free(vhost_blk_req_cache, req);
		goto nomem;
	}
	atomic_inc(&bvq->inflight);

	if (vhost_blk_req_parse(req, vq->iov, out, in)) {
		vhost_blk_req_done(req);
		return 0;
	}
	if (req->type == VIRTIO_BLK_T_GET_ID) {
		vhost_blk_req_get_id(req, bvq->blk->serial);
		vhost_blk_req_done(req);
		return 0;
	}
	if (req->bounce && be->bdev) {
		int r = vhost_blk_bio_bounce(req);

		if (r == -ENOMEM) {
			/* nothing submitted yet: give the head back */
			vhost_blk_req_free(req);
			goto nomem;
		}
		if (r) {
			req->status = VIRTIO_BLK_S_IOERR;
			vhost_blk_req_done(req);
			return 0;
		}
	}
	/* Once submitted, req may complete and be freed at any time. */
	len = req->len;
	if (be->bdev)
		vhost_blk_bio_submit(req);
	else
		vhost_blk_file_submit(req);
	return len;

nomem:
	vhost_discard_vq_desc(vq, 1);
	return -ENOMEM;
}

/*
 * VHOST_SET_VRING_BUSYLOOP_TIMEOUT (microseconds; 0, the default: off).
 * Before the worker leaves an empty ring to wait for a kick, it polls the
 * avail ring, and completes what finished meanwhile, for up to that long,
 * guest notifications still off: a guest that keeps the ring busy needs
 * no kick and no worker wakeup per request (as vhost-net polls). Called
 * with vq->mutex held, which it keeps (a drain waits at most that long),
 * and no plug (what was submitted must reach the device first); it yields
 * the CPU between looks. True when the ring has new requests.
 */
static bool vhost_blk_busy_poll(struct vhost_blk_vq *bvq)
{
	struct vhost_virtqueue *vq = &bvq->vq;
	u64 end;

	end = local_clock() + (u64)vq->busyloop_timeout * NSEC_PER_USEC;
	do {
		if (!llist_empty(&bvq->done))
			vhost_blk_complete(bvq);
		if (!vhost_vq_avail_empty(vq->dev, vq))
			return true;
		if (signal_pending(current))
			break;	/* 6.12: the owner is being killed */
		cond_resched();
		cpu_relax();
	} while (local_clock() < end);
	return false;
}

static void vhost_blk_kick_work(struct vhost_work *work)
{
	struct vhost_blk_vq *bvq = container_of(work, struct vhost_blk_vq,
						kick_work);
	struct vhost_virtqueue *vq = &bvq->vq;
	struct vhost_dev *dev = vq->dev;
	struct vhost_blk_backend *be;
	unsigned int out, in, log_num, reqs = 0;
	struct vhost_log *log;
	struct blk_plug plug;
	size_t bytes = 0;
	bool polled;
	long r;
	int head;

	mutex_lock(&vq->mutex);
	be = vhost_vq_get_backend(vq);
	if (!be || bvq->broken)
		goto unlock;
	/* With an IOTLB: the rings must be mapped, else wait for an update. */
	if (!vq_meta_prefetch(vq))
		goto unlock;
	/*
	 * Always collect what to log: VHOST_F_LOG_ALL may be switched on
	 * (migration starts) while a request is in flight, and its
	 * completion decides.
	 */
	log = vq->log;

	vhost_disable_notify(dev, vq);
	blk_start_plug(&plug);
	for (;;) {
		if (vhost_blk_vq_full(bvq)) {
			bvq->throttled = true;	/* completions requeue us */
			break;
		}
		head = vhost_get_vq_desc(vq, vq->iov, ARRAY_SIZE(vq->iov),
					 &out, &in, log, &log_num);
		if (head == -EAGAIN)
			break;	/* IOTLB miss: the update requeues us */
		if (unlikely(head < 0)) {
			/* Malformed chain: vq_err already signalled. */
			bvq->broken = true;
			vhost_blk_warn("vq %td broken (%d)\n",
				       bvq - bvq->blk->vqs, head);
			break;
		}
		if (head == vq->num) {
			if (vq->busyloop_timeout) {
				blk_finish_plug(&plug);
				polled = vhost_blk_busy_poll(bvq);
				blk_start_plug(&plug);
				if (polled)
					continue;
			}
			if (unlikely(vhost_enable_notify(dev, vq))) {
				vhost_disable_notify(dev, vq);
				continue;
			}
			break;
		}
		r = vhost_blk_handle_one(bvq, be, head, out, in, log, log_num);
		if (r < 0) {
			/* no memory: the guest will not kick again, retry */
			vhost_blk_queue(bvq, &bvq->kick_work);
			break;
		}
		bytes += r;
		if (++reqs >= VHOST_BLK_WEIGHT ||
		    bytes >= VHOST_BLK_BYTE_WEIGHT) {
			vhost_blk_queue(bvq, &bvq->kick_work);
			break;
		}
	}
	blk_finish_plug(&plug);
	/* What completed already (sync backends) goes out now. */
	vhost_blk_complete(bvq);
unlock:
	mutex_unlock(&vq->mutex);
}

/* The core queues vq->poll when an IOTLB update resolves a miss. */
static void vhost_blk_iotlb_kick(struct vhost_work *work)
{
	struct vhost_blk_vq *bvq = container_of(work, struct vhost_blk_vq,
						vq.poll.work);

	vhost_blk_queue(bvq, &bvq->kick_work);
}

/* ---- kick polling (dev->mutex) ---------------------------------------- */

static void vhost_blk_kick_ptable(struct file *file, wait_queue_head_t *wqh,
				  poll_table *pt)
{
	struct vhost_blk_kick *kick = container_of(pt, struct vhost_blk_kick,
						   table);

	kick->wqh = wqh;
	add_wait_queue(wqh, &kick->wait);
}

static int vhost_blk_kick_wakeup(wait_queue_entry_t *wait, unsigned int mode,
				 int sync, void *key)
{
	struct vhost_blk_vq *bvq = container_of(wait, struct vhost_blk_vq,
						kick.wait);

	if (key_to_poll(key) & EPOLLIN)
		vhost_blk_queue(bvq, &bvq->kick_work);
	return 0;
}

static void vhost_blk_kick_stop(struct vhost_blk_vq *bvq)
{
	if (bvq->kick.wqh) {
		remove_wait_queue(bvq->kick.wqh, &bvq->kick.wait);
		bvq->kick.wqh = NULL;
	}
}

static void vhost_blk_kick_start(struct vhost_blk_vq *bvq)
{
	struct file *kick = bvq->vq.kick;
	__poll_t mask;

	if (!kick || bvq->kick.wqh)
		return;
	mask = vfs_poll(kick, &bvq->kick.table);
	if (mask & EPOLLERR)
		vhost_blk_kick_stop(bvq);
	/* Serve what the guest queued before we listened. */
	vhost_blk_queue(bvq, &bvq->kick_work);
}

static void vhost_blk_kicks_stop(struct vhost_blk *blk)
{
	int i;

	for (i = 0; i < VHOST_BLK_MAX_VQS; i++)
		vhost_blk_kick_stop(&blk->vqs[i]);
}

/* ---- backend ---------------------------------------------------------- */

/*
 * What the device refuses as a backend, with one log line saying why:
 * anything but a block device or a regular file; a file opened O_APPEND
 * (writes would land at its end, not where the guest put them); a zoned
 * block device (guest writes are not sequential); a file whose
 * file_operations lack read_iter (or write_iter when opened for writing),
 * such as /proc/PID/mem or a debugfs attribute: the I/O goes through
 * vfs_iocb_iter_read()/write(), which need them.
 */
static int vhost_blk_backend_check(struct file *file)
{
	umode_t mode = file_inode(file)->i_mode;
	const char *why;
	int r = -EINVAL;

	if (!(file->f_mode & FMODE_READ))
		return -EBADF;
	if (file->f_flags & O_APPEND) {
		why = "opened with O_APPEND";
	} else if (S_ISBLK(mode)) {
		if (!bdev_is_zoned(I_BDEV(file->f_mapping->host)))
			return 0;
		why = "a zoned block device";
		r = -EOPNOTSUPP;
	} else if (!S_ISREG(mode)) {
		why = "neither a block device nor a regular file";
	} else if (!file->f_op->read_iter ||
		   !(file->f_mode & FMODE_CAN_READ) ||
		   ((file->f_mode & FMODE_WRITE) &&
		    (!file->f_op->write_iter ||
		     !(file->f_mode & FMODE_CAN_WRITE)))) {
		why = "a file without read_iter/write_iter";
	} else {
		return 0;
	}
	vhost_blk_warn("backend refused: %s (%d)\n", why, r);
	return r;
}

static struct vhost_blk_backend *vhost_blk_backend_open(int fd)
{
	struct vhost_blk_backend *be;
	struct file *file;
	int r;

	file = fget(fd);
	if (!file)
		return ERR_PTR(-EBADF);
	r = vhost_blk_backend_check(file);
	if (r)
		goto put_file;
	r = -ENOMEM;
	be = kzalloc(sizeof(*be), GFP_KERNEL);
	if (!be)
		goto put_file;
	be->file = file;
	be->ro = !(file->f_mode & FMODE_WRITE);
	if (S_ISBLK(file_inode(file)->i_mode))
		r = vhost_blk_bio_open(be);
	else
		r = vhost_blk_file_open(be);
	if (r)
		goto free_be;
	return be;

free_be:
	kfree(be);
put_file:
	fput(file);
	return ERR_PTR(r);
}

static void vhost_blk_backend_close(struct vhost_blk_backend *be)
{
	if (!be)
		return;
	fput(be->file);
	kfree(be);
}

/*
 * Start vq i when the device has a backend and the ring is set up (kick,
 * desc, avail and used addresses); dev->mutex held. A ring that is set up
 * but cannot start (its rings not accessible, the used flags or index not
 * writable) stays stopped and its error is returned, for the VMM to see
 * in the call that tried; a ring not set up yet is no error.
 */
static int vhost_blk_start_vq(struct vhost_blk *blk, int i)
{
	struct vhost_blk_vq *bvq = &blk->vqs[i];
	struct vhost_virtqueue *vq = &bvq->vq;
	bool running;
	int r = 0;

	mutex_lock(&vq->mutex);
	if (vhost_vq_get_backend(vq) || !vq->kick || !vhost_vq_is_setup(vq))
		goto unlock;
	if (!vhost_vq_access_ok(vq)) {
		r = -EFAULT;
		goto unlock;
	}
	vhost_vq_set_backend(vq, blk->be);
	bvq->broken = false;
	r = vhost_vq_init_access(vq);
	if (r)
		vhost_vq_set_backend(vq, NULL);
unlock:
	running = vhost_vq_get_backend(vq);
	mutex_unlock(&vq->mutex);
	/* Also for running vqs: SET_VRING_KICK took their wait entries off. */
	if (running)
		vhost_blk_kick_start(bvq);
	if (r)
		vhost_blk_warn("vq %d: ring cannot start (%d)\n", i, r);
	return r;
}

/*
 * Serve the vqs whose rings are ready; dev->mutex held. Returns the error
 * of the first vq that could not start, or with only >= 0 that of vq
 * `only` (the vq a vring ioctl named).
 */
static int vhost_blk_activate(struct vhost_blk *blk, int only)
{
	int i, r, ret = 0;

	if (!blk->be)
		return 0;
	for (i = 0; i < VHOST_BLK_MAX_VQS; i++) {
		r = vhost_blk_start_vq(blk, i);
		if (r && !ret && (only < 0 || only == i))
			ret = r;
	}
	return ret;
}

/* No request of any vq is in flight. */
static bool vhost_blk_idle(struct vhost_blk *blk)
{
	int i;

	for (i = 0; i < VHOST_BLK_MAX_VQS; i++)
		if (atomic_read(&blk->vqs[i].inflight))
			return false;
	return true;
}

/* The drain protocol (see the top of the file); dev->mutex held. */
static void vhost_blk_drain(struct vhost_blk *blk)
{
	int i;

	vhost_blk_kicks_stop(blk);
	for (i = 0; i < VHOST_BLK_MAX_VQS; i++) {
		struct vhost_virtqueue *vq = &blk->vqs[i].vq;

		mutex_lock(&vq->mutex);
		vhost_vq_set_backend(vq, NULL);
		mutex_unlock(&vq->mutex);
	}
	wait_event(blk->drain_wq, vhost_blk_idle(blk));
	/* no completion is still between llist_add() and its queueing */
	synchronize_rcu();
	vhost_blk_flush(blk);
	/*
	 * IOTLB misses of the stopped rings, read or not by the VMM: an
	 * update must not wake a vq for them once its workers may change
	 * (a new backend asks again: activation kicks every ring).
	 */
	vhost_clear_msg(&blk->dev);
}

static long vhost_blk_set_backend(struct vhost_blk *blk, int __user *argp)
{
	struct vhost_blk_backend *be = NULL;
	int fd;
	long r;

	if (get_user(fd, argp))
		return -EFAULT;
	mutex_lock(&blk->dev.mutex);
	r = vhost_dev_check_owner(&blk->dev);
	if (r)
		goto unlock;
	if (fd != -1) {
		be = vhost_blk_backend_open(fd);
		if (IS_ERR(be)) {
			r = PTR_ERR(be);
			goto unlock;
		}
	}
	vhost_blk_drain(blk);
	vhost_blk_backend_close(blk->be);
	blk->be = be;
	r = vhost_blk_activate(blk, -1);
	if (r) {
		/* All rings start, or the call fails and no backend stays. */
		vhost_blk_drain(blk);
		vhost_blk_backend_close(blk->be);
		blk->be = NULL;
	}
unlock:
	mutex_unlock(&blk->dev.mutex);
	return r;
}

static long vhost_blk_get_config(struct vhost_blk *blk, void __user *argp)
{
	struct vhost_blk_config c = { };
	struct vhost_blk_backend *be;

	mutex_lock(&blk->dev.mutex);
	be = blk->be;
	if (!be) {
		mutex_unlock(&blk->dev.mutex);
		return -ENXIO;
	}
	c.capacity = be->capacity;
	c.logical_block_size = be->lbs;
	c.physical_block_size = be->pbs;
	c.seg_max = VHOST_BLK_SEG_MAX;
	c.size_max = VHOST_BLK_SIZE_MAX;
	c.max_discard_sectors = be->max_discard_sectors;
	c.max_write_zeroes_sectors = be->max_wz_sectors;
	c.discard_granularity = be->discard_granularity;
	c.flags = VHOST_BLK_CONFIG_F_FLUSH |
		  (be->ro ? VHOST_BLK_CONFIG_F_RO : 0);
	c.num_queues = VHOST_BLK_MAX_VQS;
	c.seg_alignment = be->align_mask + 1;
	c.max_discard_seg = VHOST_BLK_DISCARD_SEG;
	mutex_unlock(&blk->dev.mutex);

	return copy_to_user(argp, &c, sizeof(c)) ? -EFAULT : 0;
}

/* ---- ioctls ----------------------------------------------------------- */

static long vhost_blk_set_features(struct vhost_blk *blk, u64 features)
{
	struct vhost_dev *dev = &blk->dev;
	int i;

	if (features & ~VHOST_BLK_FEATURES)
		return -EOPNOTSUPP;
	mutex_lock(&dev->mutex);
	if ((features & (1ULL << VHOST_F_LOG_ALL)) &&
	    !vhost_log_access_ok(dev)) {
		mutex_unlock(&dev->mutex);
		return -EFAULT;
	}
	if (features & (1ULL << VIRTIO_F_ACCESS_PLATFORM)) {
		int r = vhost_blk_init_iotlb(dev);

		if (r) {
			mutex_unlock(&dev->mutex);
			return r;
		}
	}
	for (i = 0; i < VHOST_BLK_MAX_VQS; i++) {
		struct vhost_virtqueue *vq = &blk->vqs[i].vq;

		mutex_lock(&vq->mutex);
		vq->acked_features = features;
		mutex_unlock(&vq->mutex);
	}
	mutex_unlock(&dev->mutex);
	return 0;
}

/* Stop everything the owner set up; dev->mutex held. */
static void vhost_blk_stop(struct vhost_blk *blk)
{
	vhost_blk_drain(blk);
	vhost_blk_backend_close(blk->be);
	blk->be = NULL;
	vhost_blk_workers_stop(blk);
	vhost_dev_stop(&blk->dev);
}

static long vhost_blk_reset_owner(struct vhost_blk *blk)
{
	struct vhost_iotlb *umem;
	long r;

	mutex_lock(&blk->dev.mutex);
	r = vhost_dev_check_owner(&blk->dev);
	if (r)
		goto unlock;
	umem = vhost_dev_reset_owner_prepare();
	if (!umem) {
		r = -ENOMEM;
		goto unlock;
	}
	vhost_blk_stop(blk);
	vhost_dev_reset_owner(&blk->dev, umem);
unlock:
	mutex_unlock(&blk->dev.mutex);
	return r;
}

static long vhost_blk_set_workers_ioctl(struct vhost_blk *blk,
					u32 __user *argp)
{
	u32 n;
	long r;

	if (get_user(n, argp))
		return -EFAULT;
	if (!n || n > VHOST_BLK_MAX_WORKERS)
		return -EINVAL;
	mutex_lock(&blk->dev.mutex);
	r = vhost_dev_check_owner(&blk->dev);
	if (!r && !vhost_dev_has_owner(&blk->dev))
		r = -EPERM;
	if (!r && blk->be)
		r = -EBUSY;
	if (!r)
		r = vhost_blk_set_workers(blk, n);
	mutex_unlock(&blk->dev.mutex);
	return r;
}

static long vhost_blk_set_serial(struct vhost_blk *blk, void __user *argp)
{
	struct vhost_blk_serial s;

	if (copy_from_user(&s, argp, sizeof(s)))
		return -EFAULT;
	mutex_lock(&blk->dev.mutex);
	memcpy(blk->serial, s.id, sizeof(blk->serial));
	mutex_unlock(&blk->dev.mutex);
	return 0;
}

/* The vhost core's own ioctls. */
static long vhost_blk_core_ioctl(struct vhost_blk *blk, unsigned int ioctl,
				 void __user *argp)
{
	struct vhost_dev *dev = &blk->dev;
	int idx = -1;
	long r, ar;

	mutex_lock(&dev->mutex);
	if (vhost_blk_is_core_worker_ioctl(ioctl)) {
		r = vhost_blk_core_worker_ioctl(dev, ioctl, argp);
		goto unlock;
	}
	/*
	 * SET_VRING_KICK drops the old kick file inside the core: take our
	 * wait entries off every kick file first (the ring index is read
	 * by the core, not trusted here), put them back after.
	 */
	if (ioctl == VHOST_SET_VRING_KICK)
		vhost_blk_kicks_stop(blk);
	r = vhost_dev_ioctl(dev, ioctl, argp);
	if (r == -ENOIOCTLCMD) {
		r = vhost_vring_ioctl(dev, ioctl, argp);
		/* the core read the index there and checked it */
		if (!r && get_user(idx, (u32 __user *)argp))
			idx = -1;
	}
	/*
	 * A vring ioctl fails when it was the one to start its ring and the
	 * ring cannot start; other rings' errors are logged only.
	 */
	ar = vhost_blk_activate(blk, idx < 0 ? VHOST_BLK_MAX_VQS : idx);
	if (!r)
		r = ar;
unlock:
	mutex_unlock(&dev->mutex);
	return r;
}

static long vhost_blk_ioctl(struct file *f, unsigned int ioctl,
			    unsigned long arg)
{
	struct vhost_blk *blk = f->private_data;
	void __user *argp = (void __user *)arg;
	u64 __user *featurep = argp;
	u64 features;

	switch (ioctl) {
	case VHOST_GET_FEATURES:
		features = VHOST_BLK_FEATURES;
		return copy_to_user(featurep, &features, sizeof(features)) ?
		       -EFAULT : 0;
	case VHOST_SET_FEATURES:
		if (copy_from_user(&features, featurep, sizeof(features)))
			return -EFAULT;
		return vhost_blk_set_features(blk, features);
	case VHOST_GET_BACKEND_FEATURES:
		features = VHOST_BLK_BACKEND_FEATURES;
		return copy_to_user(featurep, &features, sizeof(features)) ?
		       -EFAULT : 0;
	case VHOST_SET_BACKEND_FEATURES:
		if (copy_from_user(&features, featurep, sizeof(features)))
			return -EFAULT;
		if (features & ~VHOST_BLK_BACKEND_FEATURES)
			return -EOPNOTSUPP;
		vhost_set_backend_features(&blk->dev, features);
		return 0;
	case VHOST_RESET_OWNER:
		return vhost_blk_reset_owner(blk);
	case VHOST_BLK_SET_BACKEND:
		return vhost_blk_set_backend(blk, argp);
	case VHOST_BLK_SET_WORKERS:
		return vhost_blk_set_workers_ioctl(blk, argp);
	case VHOST_BLK_SET_SERIAL:
		return vhost_blk_set_serial(blk, argp);
	case VHOST_BLK_GET_CONFIG:
		return vhost_blk_get_config(blk, argp);
	default:
		return vhost_blk_core_ioctl(blk, ioctl, argp);
	}
}

/* ---- open / release --------------------------------------------------- */

static int vhost_blk_open(struct inode *inode, struct file *f)
{
	struct vhost_blk *blk;
	int i;

	blk = kvzalloc(sizeof(*blk), GFP_KERNEL);
	if (!blk)
		return -ENOMEM;
	init_waitqueue_head(&blk->drain_wq);
	for (i = 0; i < VHOST_BLK_MAX_VQS; i++) {
		struct vhost_blk_vq *bvq = &blk->vqs[i];

		bvq->blk = blk;
		/* No handle_kick: the core must not poll; we do (kick). */
		bvq->vq.handle_kick = NULL;
		blk->vq_ptrs[i] = &bvq->vq;
		vhost_work_init(&bvq->kick_work, vhost_blk_kick_work);
		vhost_work_init(&bvq->done_work, vhost_blk_done_work);
		INIT_WORK(&bvq->orphan_work, vhost_blk_orphan_work);
		init_llist_head(&bvq->done);
		atomic_set(&bvq->inflight, 0);
		atomic_set(&bvq->bounced, 0);
		init_waitqueue_func_entry(&bvq->kick.wait,
					  vhost_blk_kick_wakeup);
		init_poll_funcptr(&bvq->kick.table, vhost_blk_kick_ptable);
	}
	vhost_dev_init(&blk->dev, blk->vq_ptrs, VHOST_BLK_MAX_VQS, UIO_MAXIOV,
		       VHOST_BLK_WEIGHT, VHOST_BLK_BYTE_WEIGHT, true, NULL);
	for (i = 0; i < VHOST_BLK_MAX_VQS; i++)
		vhost_blk_poll_init(&blk->vqs[i].vq, vhost_blk_iotlb_kick);
	f->private_data = blk;
	return 0;
}

static int vhost_blk_release(struct inode *inode, struct file *f)
{
	struct vhost_blk *blk = f->private_data;

	mutex_lock(&blk->dev.mutex);
	vhost_blk_stop(blk);
	mutex_unlock(&blk->dev.mutex);
	vhost_dev_cleanup(&blk->dev);
	kvfree(blk);
	return 0;
}

/* IOTLB messages (VIRTIO_F_ACCESS_PLATFORM): misses out, updates in. */
static ssize_t vhost_blk_chr_read_iter(struct kiocb *iocb, struct iov_iter *to)
{
	struct vhost_blk *blk = iocb->ki_filp->private_data;

	return vhost_chr_read_iter(&blk->dev, to,
				   iocb->ki_filp->f_flags & O_NONBLOCK);
}

static ssize_t vhost_blk_chr_write_iter(struct kiocb *iocb,
					struct iov_iter *from)
{
	struct vhost_blk *blk = iocb->ki_filp->private_data;

	return vhost_chr_write_iter(&blk->dev, from);
}

static __poll_t vhost_blk_chr_poll(struct file *f, poll_table *wait)
{
	struct vhost_blk *blk = f->private_data;

	return vhost_chr_poll(f, &blk->dev, wait);
}

static const struct file_operations vhost_blk_fops = {
	.owner = THIS_MODULE,
	.read_iter = vhost_blk_chr_read_iter,
	.write_iter = vhost_blk_chr_write_iter,
	.poll = vhost_blk_chr_poll,
	.open = vhost_blk_open,
	.release = vhost_blk_release,
	.unlocked_ioctl = vhost_blk_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

/*
 * A fixed minor (from the 243-254 range devices.txt reserves for local
 * use), so that depmod lists the node in modules.devname: /dev/vhost-blk
 * then exists from boot and its first open loads the module, as for
 * vhost-net and vhost-vsock.
 */
#define VHOST_BLK_MINOR	243

static struct miscdevice vhost_blk_misc = {
	.minor = VHOST_BLK_MINOR,
	.name = "vhost-blk",
	.fops = &vhost_blk_fops,
};

static int __init vhost_blk_init(void)
{
	int r;

	vhost_blk_req_cache = KMEM_CACHE(vhost_blk_req, 0);
	if (!vhost_blk_req_cache)
		return -ENOMEM;
	r = -ENOMEM;
	vhost_blk_wq = alloc_workqueue("vhost_blk_sync", WQ_UNBOUND, 0);
	if (!vhost_blk_wq)
		goto destroy_cache;
	r = misc_register(&vhost_blk_misc);
	if (r)
		goto destroy_wq;
	return 0;

destroy_wq:
	destroy_workqueue(vhost_blk_wq);
destroy_cache:
	kmem_cache_destroy(vhost_blk_req_cache);
	return r;
}

static void __exit vhost_blk_exit(void)
{
	misc_deregister(&vhost_blk_misc);
	destroy_workqueue(vhost_blk_wq);
	kmem_cache_destroy(vhost_blk_req_cache);
}

module_init(vhost_blk_init);
module_exit(vhost_blk_exit);

MODULE_DESCRIPTION("Host kernel accelerator for virtio-blk");
MODULE_LICENSE("GPL");
MODULE_VERSION(QCOW2_VHOST_VERSION);
MODULE_ALIAS_MISCDEV(VHOST_BLK_MINOR);
MODULE_ALIAS("devname:vhost-blk");
