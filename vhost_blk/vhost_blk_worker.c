// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk: worker threads. Virtqueue i is served by worker i % N.
 *
 * Kernels whose vhost core has per-virtqueue workers (6.5+): the workers
 * are the core's, created and attached exactly as VHOST_NEW_WORKER and
 * VHOST_ATTACH_VRING_WORKER do (those ioctls are also passed through).
 *
 * 6.1, one core worker per device: VHOST_BLK_SET_WORKERS with N > 1 starts
 * N threads of our own that adopt the owner's mm (kthread_use_mm; the core
 * holds a reference on it until vhost_dev_cleanup(), and we stop ours
 * before that) and join the owner's cgroups, as the core's worker does.
 * bvq->worker, read locklessly by the queueing side, changes only while no
 * backend is set: no kick is polled and nothing is in flight then.
 */
#include <linux/kthread.h>
#include <linux/cgroup.h>
#include <linux/sched/mm.h>
#include <linux/mman.h>
#include <linux/slab.h>
#include "vhost_blk.h"
#include "compat.h"

static bool vhost_blk_own_queue(struct vhost_blk_worker *w,
				struct vhost_work *work)
{
	/* The bit orders the llist_add after any earlier run of work. */
	if (!test_and_set_bit(VHOST_WORK_QUEUED, &work->flags)) {
		llist_add(&work->node, &w->work_list);
		wake_up_process(w->task);
	}
	return true;
}

/* Any context. False when the vq has no live worker. */
bool vhost_blk_queue(struct vhost_blk_vq *bvq, struct vhost_work *work)
{
	struct vhost_blk_worker *w = READ_ONCE(bvq->worker);

	if (w)
		return vhost_blk_own_queue(w, work);
	return vhost_blk_core_queue(&bvq->vq, work);
}

static int vhost_blk_worker_fn(void *data)
{
	struct vhost_blk_worker *w = data;
	struct vhost_work *work, *next;
	struct llist_node *node;

	kthread_use_mm(w->mm);
	for (;;) {
		set_current_state(TASK_INTERRUPTIBLE);
		if (kthread_should_stop()) {
			__set_current_state(TASK_RUNNING);
			break;
		}
		node = llist_del_all(&w->work_list);
		if (!node) {
			schedule();
			continue;
		}
		__set_current_state(TASK_RUNNING);
		node = llist_reverse_order(node);
		/* Clear QUEUED only after the node left the list. */
		smp_wmb();
		llist_for_each_entry_safe(work, next, node, node) {
			clear_bit(VHOST_WORK_QUEUED, &work->flags);
			work->fn(work);
			cond_resched();
		}
	}
	kthread_unuse_mm(w->mm);
	return 0;
}

struct vhost_blk_flush_work {
	struct vhost_work work;
	struct completion done;
};

static void vhost_blk_flush_fn(struct vhost_work *work)
{
	struct vhost_blk_flush_work *f;

	f = container_of(work, struct vhost_blk_flush_work, work);
	complete(&f->done);
}

static void vhost_blk_own_flush(struct vhost_blk_worker *w)
{
	struct vhost_blk_flush_work f;

	init_completion(&f.done);
	vhost_work_init(&f.work, vhost_blk_flush_fn);
	vhost_blk_own_queue(w, &f.work);
	wait_for_completion(&f.done);
}

/* Wait until no work item of this device runs or is queued. */
void vhost_blk_flush(struct vhost_blk *blk)
{
	unsigned int i;

	vhost_dev_flush(&blk->dev);
	for (i = 0; i < blk->nworkers; i++)
		vhost_blk_own_flush(&blk->workers[i]);
	for (i = 0; i < VHOST_BLK_MAX_VQS; i++)
		flush_work(&blk->vqs[i].orphan_work);
}

/*
 * dev->mutex held, nothing in flight. Once no vq points to them, the only
 * producer left for our workers is the IOTLB work (vq->poll.work, queued
 * by an IOTLB update on the core's worker) that may have read a worker
 * pointer just before: flush the core worker first, so that it has
 * finished queueing; then ours, so that nothing queued is lost (a work
 * left with VHOST_WORK_QUEUED set could never be queued again), and only
 * then stop and free them.
 */
static void vhost_blk_own_stop(struct vhost_blk *blk)
{
	unsigned int i;

	if (!blk->workers)
		return;
	for (i = 0; i < VHOST_BLK_MAX_VQS; i++)
		WRITE_ONCE(blk->vqs[i].worker, NULL);
	vhost_dev_flush(&blk->dev);
	for (i = 0; i < blk->nworkers; i++) {
		vhost_blk_own_flush(&blk->workers[i]);
		kthread_stop(blk->workers[i].task);
	}
	kfree(blk->workers);
	blk->workers = NULL;
	blk->nworkers = 0;
}

static int vhost_blk_own_start(struct vhost_blk *blk, u32 n)
{
	struct vhost_blk_worker *w;
	unsigned int i;
	int r;

	w = kcalloc(n, sizeof(*w), GFP_KERNEL);
	if (!w)
		return -ENOMEM;
	blk->workers = w;
	for (i = 0; i < n; i++) {
		struct task_struct *t;

		init_llist_head(&w[i].work_list);
		w[i].mm = blk->dev.mm;
		t = kthread_create(vhost_blk_worker_fn, &w[i], "vhost-blk-%d.%u",
				   current->pid, i);
		if (IS_ERR(t)) {
			r = PTR_ERR(t);
			goto stop_workers;
		}
		w[i].task = t;
		blk->nworkers++;
		wake_up_process(t);
		r = cgroup_attach_task_all(current, t);
		if (r)
			goto stop_workers;
	}
	for (i = 0; i < VHOST_BLK_MAX_VQS; i++)
		WRITE_ONCE(blk->vqs[i].worker, &w[i % n]);
	return 0;

stop_workers:
	vhost_blk_own_stop(blk);
	return r;
}

/*
 * Core workers, created and attached through a scratch page of the
 * owner's. A failure midway leaves every vq on a live worker; workers
 * that still serve a vq cannot be freed (-EBUSY) and go at cleanup.
 */
static int vhost_blk_core_set(struct vhost_blk *blk, u32 n)
{
	struct vhost_dev *dev = &blk->dev;
	u32 ids[VHOST_BLK_MAX_WORKERS], old[VHOST_BLK_MAX_WORKERS];
	unsigned int i, made, nold = blk->ncore;
	unsigned long scratch;
	void __user *p;
	int r;

	scratch = vm_mmap(NULL, 0, PAGE_SIZE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, 0);
	if (IS_ERR_VALUE(scratch))
		return (int)scratch;
	p = (void __user *)scratch;

	/* Before our first call, the vqs share the owner's default worker. */
	memcpy(old, blk->core_ids, sizeof(old));
	if (!nold && !vhost_blk_core_get_worker(dev, p, 0, &old[0]))
		nold = 1;

	for (made = 0; made < n; made++) {
		r = vhost_blk_core_new_worker(dev, p, &ids[made]);
		if (r)
			goto free_unused;
	}
	for (i = 0; i < VHOST_BLK_MAX_VQS; i++) {
		r = vhost_blk_core_attach_worker(dev, p, i, ids[i % n]);
		if (r)
			goto free_unused;
	}
	for (i = 0; i < nold; i++)
		vhost_blk_core_free_worker(dev, p, old[i]);
	memcpy(blk->core_ids, ids, sizeof(ids));
	blk->ncore = n;
	goto unmap;

free_unused:
	for (i = 0; i < made; i++)
		vhost_blk_core_free_worker(dev, p, ids[i]);
unmap:
	vm_munmap(scratch, PAGE_SIZE);
	return r;
}

/* dev->mutex held; owner set, no backend. */
int vhost_blk_set_workers(struct vhost_blk *blk, u32 n)
{
	if (VHOST_BLK_CORE_VQ_WORKERS)
		return vhost_blk_core_set(blk, n);
	vhost_blk_own_stop(blk);
	if (n == 1)
		return 0;	/* the core's device worker */
	return vhost_blk_own_start(blk, n);
}

/* dev->mutex held, drained: before vhost_dev_cleanup()/reset_owner. */
void vhost_blk_workers_stop(struct vhost_blk *blk)
{
	vhost_blk_own_stop(blk);
	/* Core workers are freed by the core itself. */
	blk->ncore = 0;
}
