// SPDX-License-Identifier: GPL-2.0
/*
 * dm-qcow2: device-mapper target exposing a QCOW2 image file.
 *
 * Table: 0 <sectors> qcow2 <image path> [<#opt args> <opt args>...]
 *   ro                          read-only device, image opened read-only
 *   no_inline_io                every bio goes through the workers (see
 *                               qcow2_unplug())
 *   cache_mb <N>                L2 + refcount cache size in MiB
 *   data_file <path>            the image's external data file
 *   queue_if_no_space <secs>    requests that meet a full host file system
 *                               wait up to secs for space (default: fail
 *                               at once with BLK_STS_NOSPC)
 *   backing <raw|qcow2> <path>  backing chain, immediate backing first
 *
 * DESIGN
 *
 * Requests: a read or plain write submitted under a plug is held by map()
 * for the unplug, which sends it from the submitter's context when its
 * L2 table is cached and it needs no metadata change (qcow2_unplug(): no
 * thread hop on the common path). Every other bio, and those the unplug
 * cannot send, go to an unbound workqueue; many workers run at once. A
 * bio that maps to one run of allocated host data (reads)
 * or of clusters with refcount 1 (writes) is sent to the image file as an
 * asynchronous direct kiocb on a bvec iterator built from the bio and
 * completes from ki_complete, as the loop driver does; anything else is
 * walked cluster by cluster by the worker (qcow2-io.c) with synchronous
 * file I/O. Data I/O never runs under a lock.
 *
 * Locking:
 *   q->lock (mutex) protects the in-memory L1 and refcount tables, the L2
 *     and refcount block caches, the allocation cursor and counters, the
 *     list of in-flight cluster allocations and of deferred refcount
 *     decrements. It is held for table lookups and updates; data I/O is
 *     never done under it. An L2 cache miss in a lookup is read with the
 *     lock dropped (qcow2_cache_fill_unlocked); a flush request writes
 *     copies of the dirty tables, and applies the frees that wait for
 *     them, with the lock dropped (qcow2_flush); a lookup that would
 *     evict a dirty table first runs such a flush
 *     (qcow2_cache_clean_tail). The rare metadata I/O left under the
 *     lock: a flush that moves the refcount table or has more dirty
 *     tables than it would copy, an eviction of a table dirtied again
 *     meanwhile, snapshots (with every request drained).
 *   q->flush_lock serialises flush requests (taken before q->lock);
 *     q->flush_writing tells writers of metadata under q->lock to wait
 *     until the copies of a flush request have landed.
 *   q->data_io counts data I/O from the lookup that found its host
 *     cluster to its completion (the kiocb's too), in two epochs; before
 *     it frees clusters the flush sequence waits for the I/O of every
 *     lookup made before their L2 entries changed (a flush request: the
 *     old epoch, without q->lock; the locked sequence: both, under it),
 *     so a write racing a discard of its cluster never lands in a
 *     cluster that was punched or reused for other data.
 *   q->inflight: a guest cluster whose metadata is being changed
 *     (allocation, copy-on-write, zero flag, discard) is in this hash for
 *     the whole operation, including its data I/O, so that changes of one
 *     cluster are serialised while other clusters proceed.
 *   q->zlock serialises decompression and its buffers.
 *
 * Write ordering (the image is consistent at every instant; after a crash
 * only leaked clusters are possible):
 *   - an allocating write reserves a host cluster (refcount +1 in the
 *     cache), writes the data, and only then sets the L2 entry in the
 *     cache;
 *   - the L2/refcount cache is write-back; the flush sequence
 *     (qcow2_flush_meta) writes refcount blocks, fsyncs (data and
 *     refcounts durable), writes the refcount table, fsyncs, writes L2
 *     tables, fsyncs, writes the L1 table, fsyncs, and only then applies
 *     refcount decrements of clusters that lost a reference (COW,
 *     discard) and writes them;
 *   - a flush request takes copies of every dirty table and of the L1
 *     table at one instant under q->lock and writes them in the same
 *     order without it; a table is clean afterwards only if it did not
 *     change since its copy; the decrements it took with the copies are
 *     applied once the copies are durable and the data I/O of earlier
 *     lookups has drained, a cluster they free being punched while its
 *     refcount still keeps it from reuse;
 *   - a dirty L2 table is evicted only once clean: a lookup that would
 *     evict one runs a flush request first, and an eviction that still
 *     meets a dirty one runs the locked sequence;
 *   - a new L1 entry (new or copied L2 table) only reaches the disk after
 *     its L2 table is durable.
 * A flush bio, a FUA write, suspend and table unload all run the flush
 * sequence. The image never needs the dirty bit.
 *
 * Dirty images (incompatible bit 0, left by QEMU with lazy refcounts) are
 * refused rather than repaired in the kernel: rebuilding refcounts means
 * walking every L1/L2/snapshot table, which `qemu-img check -r all IMAGE`
 * already does well; the error message says so.
 *
 * Snapshot gate: "snapshot create/delete" must see no guest request
 * half done (a write landing in a cluster after it became shared would
 * change the snapshot). Every bio holds a reference on qt->gate from
 * map() to end_io(), which covers the asynchronous kiocb path too; a
 * snapshot kills the reference, waits until it drains, works, and
 * resurrects it. A percpu_ref costs the fast path one per-CPU increment
 * and decrement, no shared cache line. It is chosen over a
 * percpu_rw_semaphore because the reference is dropped in the bio's
 * completion, often in interrupt context and on another task than the
 * one that took it, which a semaphore does not allow; dm's own suspend
 * cannot be used from a message (the message runs inside the live
 * table's SRCU read section that suspend waits for). Bios that arrive
 * while the gate is shut are parked on qt->parked and queued when it
 * opens.
 *
 * Refcount table growth: when the file outgrows the table, a new table
 * twice the size is written at the end of the file next to a refcount
 * block that counts it; the header is switched once both are durable and
 * the old table is freed afterwards.
 */
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/workqueue.h>
#include <linux/bio.h>
#include <linux/device-mapper.h>
#include <linux/percpu-refcount.h>
#include <linux/sched/mm.h>
#include <linux/pagemap.h>
#include "qcow2.h"
#include "compat.h"

struct qcow2_target {
	struct dm_target *ti;
	struct qcow2 *q;
	struct workqueue_struct *wq;
	char *table;		/* image path and optional args, as given */

	struct percpu_ref gate;	/* one reference per bio in flight */
	bool gate_init;
	struct completion gate_drained;
	spinlock_t park_lock;	/* parked, and the gate's dead -> live switch */
	struct bio_list parked;	/* bios that arrived while the gate was shut */
	struct mutex msg_lock;	/* one snapshot operation at a time */

	/*
	 * Out of space on the host file system: requests that met -ENOSPC
	 * fail with BLK_STS_NOSPC at once (nospc_secs 0), or wait on
	 * nospc_bios, retried every second by nospc_work, for up to
	 * nospc_secs each (queue_if_no_space), so that the file system can
	 * be grown meanwhile. nospc_lock protects nospc_bios and
	 * nr_nospc_queued; it is taken from kiocb completions (any context).
	 * nospc_fail_now: suspended, nothing may wait (presuspend to resume).
	 */
	unsigned int nospc_secs;
	spinlock_t nospc_lock;
	struct bio_list nospc_bios;
	unsigned int nr_nospc_queued;
	bool nospc_fail_now;
	bool nospc_event;	/* a dm event is owed (raised by nospc_work) */
	struct delayed_work nospc_work;
	atomic64_t nr_nospc;	/* requests that met -ENOSPC */

	bool inline_io;		/* no_inline_io not given: see qcow2_unplug() */
	atomic64_t nr_inline;	/* bios sent from the submitter's context */

	/* read-write tables only, under owners_lock (see below) */
	struct list_head owner;
	u64 owner_seq;		/* 0: not listed */
	bool running;		/* resumed, and no suspend wrote its metadata back since */
	bool stale;		/* a newer table of the image has run */
	bool ran;		/* has been resumed once */
};

/*
 * Read-write tables by image file. A second table on an image that a
 * table has open read-write (dmsetup reload, the live operations of
 * qcow2-dm) may only be created while that one is not running: never
 * resumed, or suspended with its metadata written back; two tables
 * running on one image would each write their own view of it. The newer
 * table then owns the image: the older one is superseded, refuses to
 * resume and writes nothing at unload (its caches describe an image the
 * new one changes). Once the newer has resumed, the older stays
 * superseded for good; if the newer goes away without having run
 * (dmsetup clear, a failed reload), the older one owns the image again.
 */
static DEFINE_MUTEX(owners_lock);
static LIST_HEAD(owners);
static u64 owners_seq;

/* Are @a and @b tables of the same image file? */
static bool same_image(struct qcow2_target *a, struct qcow2_target *b)
{
	return file_inode(a->q->file) == file_inode(b->q->file);
}

static int owner_add(struct qcow2_target *qt)
{
	struct qcow2_target *o;
	int ret = 0;

	mutex_lock(&owners_lock);
	list_for_each_entry(o, &owners, owner)
		if (same_image(o, qt) && o->running)
			ret = -EBUSY;
	if (!ret) {
		qt->owner_seq = ++owners_seq;
		list_add(&qt->owner, &owners);
	}
	mutex_unlock(&owners_lock);
	return ret;
}

/* Under owners_lock: does a newer table own @qt's image, or did one run? */
static bool superseded(struct qcow2_target *qt)
{
	struct qcow2_target *o;

	if (qt->stale)
		return true;
	list_for_each_entry(o, &owners, owner)
		if (same_image(o, qt) && o->owner_seq > qt->owner_seq)
			return true;
	return false;
}

/*
 * Under owners_lock: @qt resumes, so the image changes under every older
 * table; they must never write again, even once @qt is gone.
 */
static void supersede_older(struct qcow2_target *qt)
{
	struct qcow2_target *o;

	list_for_each_entry(o, &owners, owner)
		if (same_image(o, qt) && o->owner_seq < qt->owner_seq)
			o->stale = true;
}

/* Take @qt off the list; true if it must not write (superseded). */
static bool owner_del(struct qcow2_target *qt)
{
	bool sup;

	if (!qt->owner_seq)
		return false;
	mutex_lock(&owners_lock);
	sup = superseded(qt);
	list_del(&qt->owner);
	qt->owner_seq = 0;
	mutex_unlock(&owners_lock);
	return sup;
}

/*
 * May @qt change the image's metadata from outside the I/O path (a
 * message)? Only while it is the running owner: a suspended table has
 * written its metadata back and a newer table may have read the image
 * since (dmsetup reload), and a superseded one describes an image that
 * changed under it; a write by either is overwritten by, or overwrites,
 * the owner's view. The answer holds until the message returns: suspend
 * waits for the message's SRCU read section before postsuspend clears
 * running, and no newer table can be built while this one runs.
 * Read-only tables (owner_seq 0) are left to the caller's -EROFS.
 */
static int owner_may_write(struct qcow2_target *qt, const char *what)
{
	int ret = 0;

	if (!qt->owner_seq)
		return 0;
	mutex_lock(&owners_lock);
	if (!qt->running || superseded(qt))
		ret = -EBUSY;
	mutex_unlock(&owners_lock);
	if (ret)
		DMERR_LIMIT("%s: %s refused: this table is not the image's running owner (suspended or superseded by a reload)",
			    qt->q->path, what);
	return ret;
}

struct qcow2_io {
	struct work_struct work;
	struct qcow2_target *qt;
	struct kiocb iocb;
	u64 len;
	unsigned long nospc_deadline;	/* jiffies; 0: has not met -ENOSPC */
	u8 epoch;		/* q->data_io count holding the kiocb */
};

static void end_bio_nospc(struct qcow2_io *io, struct bio *bio);
static void nospc_retry(struct work_struct *work);

static void free_chain(struct qcow2 *q)
{
	struct qcow2 *next;

	while (q) {
		next = q->bq;
		if (q->braw)
			filp_close(q->braw, NULL);
		qcow2_close_image(q);
		kfree(q);
		q = next;
	}
}

static char *join_args(unsigned int argc, char **argv)
{
	size_t len = 1;
	unsigned int i;
	char *s;

	for (i = 0; i < argc; i++)
		len += strlen(argv[i]) + 1;
	s = kzalloc(len, GFP_KERNEL);
	if (!s)
		return NULL;
	for (i = 0; i < argc; i++) {
		if (i)
			strcat(s, " ");
		strcat(s, argv[i]);
	}
	return s;
}

/* Open the backing chain given as "backing <raw|qcow2> <path>" pairs. */
static int open_backing(struct dm_target *ti, struct qcow2 *q,
			unsigned int n, char **type, char **path)
{
	struct qcow2 *cur = q, *b;
	unsigned int i;
	int ret;

	for (i = 0; i < n; i++) {
		if (!cur || !cur->backing_name_offset) {
			ti->error = "more backing files given than the chain has";
			return -EINVAL;
		}
		if (!strcmp(type[i], "raw")) {
			cur->braw = filp_open(path[i], O_RDONLY | O_LARGEFILE, 0);
			if (IS_ERR(cur->braw)) {
				ret = PTR_ERR(cur->braw);
				cur->braw = NULL;
				ti->error = "cannot open raw backing file";
				return ret;
			}
			cur = NULL;
			continue;
		}
		b = kzalloc(sizeof(*b), GFP_KERNEL);
		if (!b)
			return -ENOMEM;
		cur->bq = b;
		b->parent = cur;
		ret = qcow2_open_image(b, path[i], NULL, true, &ti->error);
		if (ret)
			return ret;
		cur = b;
	}
	if (cur && cur->backing_name_offset) {
		ti->error = n ? "backing chain incomplete: give every backing file with 'backing <raw|qcow2> <path>'" :
			"image has a backing file: give it with 'backing <raw|qcow2> <path>'";
		return -EINVAL;
	}
	return 0;
}

#define QCOW2_MAX_BACKING 64

struct qcow2_args {
	const char *path;
	const char *data_path;
	bool ro;
	unsigned int cache_mb;
	unsigned int nospc_secs;
	bool no_inline_io;
	unsigned int nb;
	char *btype[QCOW2_MAX_BACKING];
	char *bpath[QCOW2_MAX_BACKING];
};

static int qcow2_parse_args(struct dm_target *ti, unsigned int argc, char **argv,
		      struct qcow2_args *a)
{
	unsigned int nopt, i;

	if (argc < 1) {
		ti->error = "missing image path";
		return -EINVAL;
	}
	a->path = argv[0];
	if (argc == 1)
		return 0;
	if (kstrtouint(argv[1], 10, &nopt) || nopt != argc - 2) {
		ti->error = "bad number of optional arguments";
		return -EINVAL;
	}
	for (i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "ro")) {
			a->ro = true;
		} else if (!strcmp(argv[i], "no_inline_io")) {
			a->no_inline_io = true;
		} else if (!strcmp(argv[i], "cache_mb") && i + 1 < argc) {
			if (kstrtouint(argv[++i], 10, &a->cache_mb) ||
			    !a->cache_mb || a->cache_mb > 4096) {
				ti->error = "cache_mb must be 1..4096";
				return -EINVAL;
			}
		} else if (!strcmp(argv[i], "queue_if_no_space") && i + 1 < argc) {
			if (kstrtouint(argv[++i], 10, &a->nospc_secs) ||
			    !a->nospc_secs || a->nospc_secs > 86400) {
				ti->error = "queue_if_no_space takes 1..86400 seconds";
				return -EINVAL;
			}
		} else if (!strcmp(argv[i], "data_file") && i + 1 < argc) {
			if (a->data_path) {
				ti->error = "data_file given twice";
				return -EINVAL;
			}
			a->data_path = argv[++i];
		} else if (!strcmp(argv[i], "backing") && i + 2 < argc) {
			if (strcmp(argv[i + 1], "raw") &&
			    strcmp(argv[i + 1], "qcow2")) {
				ti->error = "backing type must be raw or qcow2";
				return -EINVAL;
			}
			if (a->nb == QCOW2_MAX_BACKING) {
				ti->error = "backing chain too long";
				return -EINVAL;
			}
			a->btype[a->nb] = argv[i + 1];
			a->bpath[a->nb++] = argv[i + 2];
			i += 2;
		} else {
			ti->error = "unknown optional argument";
			return -EINVAL;
		}
	}
	return 0;
}

static void qcow2_gate_release(struct percpu_ref *ref)
{
	struct qcow2_target *qt = container_of(ref, struct qcow2_target, gate);

	complete(&qt->gate_drained);
}

/*
 * At unload of a table that still owns its image. One that ran was
 * suspended first (dm core sees to it), which stored its dirty bitmaps or,
 * failing that, left them in use on purpose. One that never ran (a reload
 * given up, a constructor failing late) had marked them in use when it was
 * built: it takes back only those flags, its bits being what the disk
 * holds, and writes nothing else, as an older table may own the image
 * again (none can be running: it was not when this one was built, and
 * cannot resume past this one).
 */
static void unload_writeback(struct qcow2_target *qt)
{
	if (qcow2_flush(qt->q)) {
		DMERR("%s: flushing metadata on unload failed", qt->q->path);
		return;
	}
	if (!qt->ran && qcow2_bitmaps_release(qt->q))
		DMERR("%s: dirty bitmaps left in use", qt->q->path);
}

static void qcow2_dtr(struct dm_target *ti)
{
	struct qcow2_target *qt = ti->private;
	bool sup;

	if (!qt)
		return;
	sup = owner_del(qt);
	if (qt->wq) {
		/* no bio is in flight at unload, so none waits for space */
		cancel_delayed_work_sync(&qt->nospc_work);
		destroy_workqueue(qt->wq);
	}
	if (qt->gate_init)
		percpu_ref_exit(&qt->gate);
	if (qt->q && qt->q->file && !qt->q->ro && !sup &&
	    !qcow2_wb_error(qt->q))
		unload_writeback(qt);
	free_chain(qt->q);
	kfree(qt->table);
	kfree(qt);
	ti->private = NULL;
}

static int qcow2_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	struct qcow2_args *a;
	struct qcow2_target *qt;
	int ret;

	a = kzalloc(sizeof(*a), GFP_KERNEL);
	qt = kzalloc(sizeof(*qt), GFP_KERNEL);
	if (!a || !qt) {
		kfree(a);
		kfree(qt);
		ti->error = "out of memory";
		return -ENOMEM;
	}
	ti->private = qt;
	qt->ti = ti;
	init_completion(&qt->gate_drained);
	spin_lock_init(&qt->park_lock);
	bio_list_init(&qt->parked);
	mutex_init(&qt->msg_lock);
	spin_lock_init(&qt->nospc_lock);
	bio_list_init(&qt->nospc_bios);
	INIT_DELAYED_WORK(&qt->nospc_work, nospc_retry);
	atomic64_set(&qt->nr_nospc, 0);
	atomic64_set(&qt->nr_inline, 0);
	ret = qcow2_parse_args(ti, argc, argv, a);
	if (ret)
		goto fail;
	qt->nospc_secs = a->nospc_secs;
	qt->inline_io = !a->no_inline_io;
	if (!qcow2_table_writable(ti))
		a->ro = true;
	ret = -ENOMEM;
	qt->table = join_args(argc, argv);
	qt->q = kzalloc(sizeof(*qt->q), GFP_KERNEL);
	if (!qt->table || !qt->q) {
		/* not opened: nothing for the dtr to close */
		kfree(qt->q);
		qt->q = NULL;
		goto fail;
	}
	ret = qcow2_open_image(qt->q, a->path, a->data_path, a->ro,
			       &ti->error);
	if (ret)
		goto fail;
	if (qt->q->size != (u64)ti->len << SECTOR_SHIFT) {
		ti->error = "table length differs from the image's virtual size";
		ret = -EINVAL;
		goto fail;
	}
	ret = open_backing(ti, qt->q, a->nb, a->btype, a->bpath);
	if (ret)
		goto fail;
	if (a->cache_mb)
		qcow2_set_cache_size(qt->q, (u64)a->cache_mb << 20);
	if (!a->ro) {
		ret = owner_add(qt);
		if (ret) {
			ti->error = "image open read-write by a running table: suspend it first";
			goto fail;
		}
		ret = qcow2_update_header_for_write(qt->q);
		if (ret) {
			ti->error = "cannot update the image header for writing";
			goto fail;
		}
	}
	ret = -ENOMEM;
	qt->wq = alloc_workqueue("dm-qcow2", WQ_UNBOUND | WQ_MEM_RECLAIM, 0);
	if (!qt->wq) {
		ti->error = "cannot create workqueue";
		goto fail;
	}
	ret = percpu_ref_init(&qt->gate, qcow2_gate_release,
			      PERCPU_REF_ALLOW_REINIT, GFP_KERNEL);
	if (ret) {
		ti->error = "out of memory";
		goto fail;
	}
	qt->gate_init = true;
	ret = dm_set_target_max_io_len(ti, max(qt->q->cluster_size,
					       65536U) >> SECTOR_SHIFT);
	if (ret) {
		ti->error = "cannot set max_io_len";
		goto fail;
	}
	ti->num_flush_bios = 1;
	ti->flush_supported = true;
	if (!a->ro) {
		ti->num_discard_bios = 1;
		ti->num_write_zeroes_bios = 1;
		ti->discards_supported = true;
	}
	ti->per_io_data_size = sizeof(struct qcow2_io);
	kfree(a);
	return 0;
fail:
	kfree(a);
	qcow2_dtr(ti);
	return ret;
}

static void bio_to_iter(struct bio *bio, struct iov_iter *it, bool write)
{
	struct bvec_iter bi;
	struct bio_vec bv;
	unsigned int nr = 0;

	bio_for_each_bvec(bv, bio, bi)
		nr++;
	iov_iter_bvec(it, write ? WRITE : READ,
		      __bvec_iter_bvec(bio->bi_io_vec, bio->bi_iter), nr,
		      bio->bi_iter.bi_size);
	it->iov_offset = bio->bi_iter.bi_bvec_done;
}

static void qcow2_aio_complete(struct kiocb *iocb, long ret)
{
	struct qcow2_io *io = container_of(iocb, struct qcow2_io, iocb);
	struct bio *bio = dm_bio_from_per_bio_data(io, sizeof(*io));

	if (bio_op(bio) == REQ_OP_WRITE)
		kiocb_end_write(iocb);
	qcow2_data_io_done(io->qt->q, io->epoch);
	if (ret == -ENOSPC) {
		end_bio_nospc(io, bio);
		return;
	}
	if (ret != io->len) {
		qcow2_err(io->qt->q, "%s of %llu bytes at %lld failed: %ld",
			  bio_op(bio) == REQ_OP_WRITE ? "write" : "read",
			  io->len, iocb->ki_pos, ret);
		bio->bi_status = BLK_STS_IOERR;
	}
	bio_endio(bio);
}

/*
 * Reads of allocated data and writes to clusters we own (refcount 1)
 * need no metadata change: send them to the file asynchronously, as the
 * loop driver does, and complete the bio from the kiocb completion.
 */
static bool try_aio(struct qcow2_io *io, struct bio *bio, u64 pos, u64 len,
		    bool nowait)
{
	struct qcow2 *q = io->qt->q;
	bool write = bio_op(bio) == REQ_OP_WRITE;
	struct file *f = q->dfile;
	struct iov_iter it;
	u64 host;
	ssize_t ret;

	if (!q->ddirect || (write && q->ro) ||
	    (bio->bi_opf & (REQ_FUA | REQ_PREFLUSH)) ||
	    !qcow2_map_direct(q, pos, len, write, nowait, &host, &io->epoch))
		return false;
	bio_to_iter(bio, &it, write);
	io->len = len;
	io->iocb.ki_pos = host;
	io->iocb.ki_filp = f;
	io->iocb.ki_flags = IOCB_DIRECT;
	io->iocb.ki_ioprio = bio_prio(bio);
	io->iocb.ki_complete = qcow2_aio_complete;
	if (write) {
		kiocb_start_write(&io->iocb);
		ret = f->f_op->write_iter(&io->iocb, &it);
	} else {
		ret = f->f_op->read_iter(&io->iocb, &it);
	}
	if (ret != -EIOCBQUEUED)
		qcow2_aio_complete(&io->iocb, ret);
	return true;
}

static int do_bio(struct qcow2_target *qt, struct bio *bio)
{
	struct qcow2 *q = qt->q;
	u64 pos = (u64)dm_target_offset(qt->ti, bio->bi_iter.bi_sector) <<
		  SECTOR_SHIFT;
	u64 len = bio->bi_iter.bi_size;
	struct iov_iter it;
	int ret = 0;

	if (bio->bi_opf & REQ_PREFLUSH) {
		ret = qcow2_flush(q);
		if (ret || !len)
			return ret;
	}
	if (pos > q->size || len > q->size - pos)
		return -EIO;
	switch (bio_op(bio)) {
	case REQ_OP_READ:
		bio_to_iter(bio, &it, false);
		return qcow2_read(q, &it, pos, len);
	case REQ_OP_WRITE:
		bio_to_iter(bio, &it, true);
		ret = qcow2_write(q, &it, pos, len);
		if (!ret && (bio->bi_opf & REQ_FUA))
			ret = qcow2_flush(q);
		return ret;
	case REQ_OP_DISCARD:
		return qcow2_discard(q, pos, len, QCOW2_DISCARD);
	case REQ_OP_WRITE_ZEROES:
		return qcow2_discard(q, pos, len, (bio->bi_opf & REQ_NOUNMAP) ?
				     QCOW2_ZERO_KEEP : QCOW2_ZERO);
	default:
		return -EOPNOTSUPP;
	}
}

/* Before a write may change the image: refuse it, or mark it dirty. */
static int write_prologue(struct qcow2 *q, u64 pos, u64 len)
{
	/* after a write-back error nothing may change the image */
	int ret = qcow2_wb_error(q);

	if (ret)
		return ret;
	/* dirty bitmaps: before the data can change (a superset is fine) */
	qcow2_bitmaps_mark(q, pos, len);
	return 0;
}

static void run_bio(struct qcow2_io *io, struct bio *bio)
{
	struct qcow2 *q = io->qt->q;
	u64 pos = (u64)dm_target_offset(io->qt->ti, bio->bi_iter.bi_sector) <<
		  SECTOR_SHIFT;
	u64 len = bio->bi_iter.bi_size;
	int ret;

	if (op_is_write(bio_op(bio))) {
		ret = write_prologue(q, pos, len);
		if (ret)
			goto done;
	}
	if ((bio_op(bio) == REQ_OP_READ || bio_op(bio) == REQ_OP_WRITE) &&
	    len && pos < q->size && len <= q->size - pos &&
	    try_aio(io, bio, pos, len, false))
		return;
	ret = do_bio(io->qt, bio);
	if (ret == -ENOSPC) {
		end_bio_nospc(io, bio);
		return;
	}
done:
	if (ret == -EOPNOTSUPP)
		bio->bi_status = BLK_STS_NOTSUPP;
	else if (ret)
		bio->bi_status = BLK_STS_IOERR;
	bio_endio(bio);
}

/*
 * Workers allocate as in reclaim (memalloc_noio_save(), as the loop
 * driver does): an allocation that waited for write-back could wait for
 * a request queued to this very device, behind this worker.
 */
static void qcow2_work(struct work_struct *work)
{
	struct qcow2_io *io = container_of(work, struct qcow2_io, work);
	unsigned int noio = memalloc_noio_save();

	run_bio(io, dm_bio_from_per_bio_data(io, sizeof(*io)));
	memalloc_noio_restore(noio);
}

static void queue_bio(struct qcow2_target *qt, struct bio *bio)
{
	struct qcow2_io *io = dm_per_bio_data(bio, sizeof(*io));

	io->qt = qt;
	INIT_WORK(&io->work, qcow2_work);
	queue_work(qt->wq, &io->work);
}

/*
 * Inline I/O: no hop to a worker on the common path (dm-crypt's
 * no_read_workqueue for the same reason). A read, or a write without
 * FUA/PREFLUSH, submitted under a plug (the vhost-blk worker's, a direct
 * I/O syscall's, write-back's) is held in a plug callback; when its
 * submitter finishes the plug, qcow2_unplug() sends it to the image file
 * from the submitter's own context if it needs no metadata change and
 * its L2 table is cached (qcow2_map_direct(), nowait). The rest go to
 * the workers as before.
 *
 * Not from map() itself: map() runs inside submit_bio(), where a bio
 * the host file system submits to read its own metadata (ext4's extent
 * tree; even with IOCB_NOWAIT on 6.1) waits on current->bio_list until
 * map() returns, while the file system waits for that read. An unplug
 * from schedule() may not sleep, and one still inside a submit_bio()
 * (a driver that plugs in its own submit path) meets the same hazard:
 * both hand their bios to the workers.
 */
struct qcow2_plug {
	struct blk_plug_cb cb;	/* first: blk_check_plugged(); data: qt */
	struct bio_list bios;
};

static bool inline_candidate(struct qcow2_target *qt, struct bio *bio)
{
	struct qcow2 *q = qt->q;
	enum req_op op = bio_op(bio);

	return qt->inline_io && q->ddirect && bio->bi_iter.bi_size &&
	       (op == REQ_OP_READ || (op == REQ_OP_WRITE && !q->ro)) &&
	       !(bio->bi_opf & (REQ_FUA | REQ_PREFLUSH));
}

/* True when @bio was sent to the image file (or completed). */
static bool run_inline(struct qcow2_target *qt, struct bio *bio)
{
	struct qcow2_io *io = dm_per_bio_data(bio, sizeof(*io));
	struct qcow2 *q = qt->q;
	u64 pos = (u64)dm_target_offset(qt->ti, bio->bi_iter.bi_sector) <<
		  SECTOR_SHIFT;
	u64 len = bio->bi_iter.bi_size;

	if (pos > q->size || len > q->size - pos)
		return false;
	if (op_is_write(bio_op(bio)) && write_prologue(q, pos, len))
		return false;
	if (!try_aio(io, bio, pos, len, true))
		return false;
	atomic64_inc(&qt->nr_inline);
	return true;
}

static void qcow2_unplug(struct blk_plug_cb *cb, bool from_schedule)
{
	struct qcow2_plug *p = container_of(cb, struct qcow2_plug, cb);
	struct qcow2_target *qt = cb->data;
	unsigned int noio;
	struct bio *bio;

	if (from_schedule || current->bio_list) {
		while ((bio = bio_list_pop(&p->bios)))
			queue_bio(qt, bio);
		kfree(p);
		return;
	}
	/* as the workers allocate: see qcow2_work() */
	noio = memalloc_noio_save();
	while ((bio = bio_list_pop(&p->bios)))
		if (!run_inline(qt, bio))
			queue_bio(qt, bio);
	memalloc_noio_restore(noio);
	kfree(p);
}

/* map(): hold @bio for qcow2_unplug() when it may go inline. */
static bool hold_for_unplug(struct qcow2_target *qt, struct bio *bio)
{
	struct blk_plug_cb *cb;
	struct qcow2_plug *p;

	if (!inline_candidate(qt, bio))
		return false;
	cb = blk_check_plugged(qcow2_unplug, qt, sizeof(*p));
	if (!cb)
		return false;	/* no plug, or no memory for the callback */
	p = container_of(cb, struct qcow2_plug, cb);
	bio_list_add(&p->bios, bio);
	return true;
}

/*
 * A request met -ENOSPC (any context: a kiocb completion too). Without
 * queue_if_no_space, or once it has waited its time, it fails with
 * BLK_STS_NOSPC, which the guest sees as out of space rather than as a
 * media error; else it waits for nospc_retry(). Either way a dm event
 * tells the management layer, once per second at most.
 */
static void end_bio_nospc(struct qcow2_io *io, struct bio *bio)
{
	struct qcow2_target *qt = io->qt;
	unsigned long flags;
	bool wait;

	spin_lock_irqsave(&qt->nospc_lock, flags);
	if (!io->nospc_deadline) {
		atomic64_inc(&qt->nr_nospc);
		io->nospc_deadline = jiffies + qt->nospc_secs * HZ;
	}
	wait = qt->nospc_secs && !qt->nospc_fail_now &&
	       time_before(jiffies, io->nospc_deadline);
	if (wait) {
		bio_list_add(&qt->nospc_bios, bio);
		qt->nr_nospc_queued++;
	}
	qt->nospc_event = true;
	spin_unlock_irqrestore(&qt->nospc_lock, flags);
	queue_delayed_work(qt->wq, &qt->nospc_work, wait ? HZ : 0);
	if (!wait) {
		bio->bi_status = BLK_STS_NOSPC;
		bio_endio(bio);
	}
}

/* Every second while requests wait for space: run them again. */
static void nospc_retry(struct work_struct *work)
{
	struct qcow2_target *qt = container_of(to_delayed_work(work),
					       struct qcow2_target, nospc_work);
	struct bio_list bl;
	struct bio *bio;
	bool event;

	spin_lock_irq(&qt->nospc_lock);
	bl = qt->nospc_bios;
	bio_list_init(&qt->nospc_bios);
	qt->nr_nospc_queued = 0;
	event = qt->nospc_event;
	qt->nospc_event = false;
	spin_unlock_irq(&qt->nospc_lock);
	if (event)
		dm_table_event(qt->ti->table);
	while ((bio = bio_list_pop(&bl)))
		queue_bio(qt, bio);
}

/* Slow path of map(): the gate is shut, park the bio unless it reopened. */
static bool gate_park(struct qcow2_target *qt, struct bio *bio)
{
	unsigned long flags;
	bool parked = false;

	spin_lock_irqsave(&qt->park_lock, flags);
	if (!percpu_ref_tryget_live(&qt->gate)) {
		bio_list_add(&qt->parked, bio);
		parked = true;
	}
	spin_unlock_irqrestore(&qt->park_lock, flags);
	return parked;
}

/* Wait until no bio is in flight; new ones are parked. */
static void gate_shut(struct qcow2_target *qt)
{
	unsigned long flags;

	reinit_completion(&qt->gate_drained);
	spin_lock_irqsave(&qt->park_lock, flags);
	percpu_ref_kill(&qt->gate);
	spin_unlock_irqrestore(&qt->park_lock, flags);
	wait_for_completion(&qt->gate_drained);
}

static void gate_open(struct qcow2_target *qt)
{
	struct bio_list bl;
	unsigned long flags;
	struct bio *bio;

	spin_lock_irqsave(&qt->park_lock, flags);
	percpu_ref_resurrect(&qt->gate);
	bl = qt->parked;
	bio_list_init(&qt->parked);
	spin_unlock_irqrestore(&qt->park_lock, flags);
	while ((bio = bio_list_pop(&bl))) {
		percpu_ref_get(&qt->gate);
		queue_bio(qt, bio);
	}
}

static int qcow2_map(struct dm_target *ti, struct bio *bio)
{
	struct qcow2_target *qt = ti->private;
	struct qcow2_io *io = dm_per_bio_data(bio, sizeof(*io));

	io->nospc_deadline = 0;

	if (unlikely(!percpu_ref_tryget_live(&qt->gate)) &&
	    gate_park(qt, bio))
		return DM_MAPIO_SUBMITTED;
	io->qt = qt;
	if (!hold_for_unplug(qt, bio))
		queue_bio(qt, bio);
	return DM_MAPIO_SUBMITTED;
}

static int qcow2_end_io(struct dm_target *ti, struct bio *bio,
			blk_status_t *error)
{
	struct qcow2_target *qt = ti->private;

	percpu_ref_put(&qt->gate);
	return DM_ENDIO_DONE;
}

/* snapshot create TAG | delete TAG|ID | list */
static int snapshot_message(struct qcow2_target *qt, unsigned int argc,
			    char **argv, char *result, unsigned int maxlen)
{
	struct qcow2 *q = qt->q;
	unsigned int noio;
	int ret;

	if (argc == 1 && !strcmp(argv[0], "list")) {
		qcow2_snapshot_list(q, result, maxlen);
		return 1;	/* result text for dmsetup */
	}
	if (argc != 2 || (strcmp(argv[0], "create") &&
			  strcmp(argv[0], "delete"))) {
		DMERR_LIMIT("%s: usage: snapshot create TAG | snapshot delete TAG|ID | snapshot list",
			    q->path);
		return -EINVAL;
	}
	mutex_lock(&qt->msg_lock);
	ret = q->ro ? 0 : owner_may_write(qt, argv[0]);
	if (ret)
		goto out_unlock;
	ret = qcow2_wb_error(q);
	if (ret) {
		DMERR_LIMIT("%s: snapshot %s refused: the image had a write-back error; reload the table",
			    q->path, argv[0]);
		goto out_unlock;
	}
	/* with the gate shut, reclaim must not wait for this device */
	noio = memalloc_noio_save();
	gate_shut(qt);
	if (!strcmp(argv[0], "create"))
		ret = qcow2_snapshot_create(q, argv[1]);
	else
		ret = qcow2_snapshot_delete(q, argv[1]);
	gate_open(qt);
	memalloc_noio_restore(noio);
out_unlock:
	mutex_unlock(&qt->msg_lock);
	return ret;
}

static int qcow2_message(struct dm_target *ti, unsigned int argc, char **argv,
			 char *result, unsigned int maxlen)
{
	struct qcow2_target *qt = ti->private;

	if (argc >= 1 && !strcmp(argv[0], "snapshot"))
		return snapshot_message(qt, argc - 1, argv + 1, result, maxlen);
	if (argc == 2 && !strcmp(argv[0], "bitmap") &&
	    !strcmp(argv[1], "list")) {
		qcow2_bitmaps_list(qt->q, result, maxlen);
		return 1;	/* result text for dmsetup */
	}
	DMERR_LIMIT("%s: unknown message '%s'", qt->q->path,
		    argc ? argv[0] : "");
	return -EINVAL;
}

static void qcow2_status(struct dm_target *ti, status_type_t type,
			 unsigned int status_flags, char *result,
			 unsigned int maxlen)
{
	struct qcow2_target *qt = ti->private;
	struct qcow2 *q = qt->q;
	unsigned int sz = 0;
	unsigned int deferred;
	u64 alloc, free;

	switch (type) {
	case STATUSTYPE_INFO:
		mutex_lock(&q->lock);
		alloc = q->nr_allocated;
		free = q->nr_free;
		deferred = q->nr_deferred;
		mutex_unlock(&q->lock);
		DMEMIT("version %u cluster_size %u allocated %llu free %llu cache_hits %lld cache_misses %lld errors %lld flushes %lld locked_flushes %lld deferred_frees %u write_error %d no_space %lld no_space_queued %u inline_ios %lld %s",
		       q->version, q->cluster_size, alloc, free,
		       (long long)atomic64_read(&q->hits),
		       (long long)atomic64_read(&q->misses),
		       (long long)atomic64_read(&q->errors),
		       (long long)atomic64_read(&q->flushes),
		       (long long)atomic64_read(&q->locked_flushes),
		       deferred, -qcow2_wb_error(q),
		       (long long)atomic64_read(&qt->nr_nospc),
		       READ_ONCE(qt->nr_nospc_queued),
		       (long long)atomic64_read(&qt->nr_inline),
		       q->ro ? "ro" : "rw");
		break;
	case STATUSTYPE_TABLE:
		DMEMIT("%s", qt->table);
		break;
	default:
		if (maxlen)
			*result = '\0';
		break;
	}
}

/*
 * Suspend waits for every request in flight: those waiting for space are
 * tried once more now and fail with BLK_STS_NOSPC if there is still none.
 */
static void qcow2_presuspend(struct dm_target *ti)
{
	struct qcow2_target *qt = ti->private;

	spin_lock_irq(&qt->nospc_lock);
	qt->nospc_fail_now = true;
	spin_unlock_irq(&qt->nospc_lock);
	mod_delayed_work(qt->wq, &qt->nospc_work, 0);
}

static void qcow2_resume(struct dm_target *ti)
{
	struct qcow2_target *qt = ti->private;

	spin_lock_irq(&qt->nospc_lock);
	qt->nospc_fail_now = false;
	spin_unlock_irq(&qt->nospc_lock);
}

static void qcow2_postsuspend(struct dm_target *ti)
{
	struct qcow2_target *qt = ti->private;

	unsigned int noio = memalloc_noio_save();

	flush_workqueue(qt->wq);
	if (qcow2_flush(qt->q)) {
		if (qcow2_wb_error(qt->q)) {
			/*
			 * After a write-back error this table writes nothing
			 * more: a new one reads the image as last flushed.
			 */
			DMERR("%s: write-back error: metadata not written back; a new table reads the image as last flushed",
			      qt->q->path);
			/*
			 * Pages whose write-back failed are clean but hold
			 * what never reached the disk: drop them, so the
			 * next table reads what the disk holds.
			 */
			invalidate_mapping_pages(qt->q->file->f_mapping, 0, -1);
			goto not_running;
		}
		/*
		 * The image on disk lacks what the caches hold: a new table
		 * would read a stale view, so this one stays the only writer.
		 */
		DMERR("%s: flushing metadata on suspend failed: no other table may open the image",
		      qt->q->path);
		goto out;
	}
	qcow2_bitmaps_store(qt->q);	/* left in use if it fails */
not_running:
	mutex_lock(&owners_lock);
	qt->running = false;
	mutex_unlock(&owners_lock);
out:
	memalloc_noio_restore(noio);
}

/*
 * A superseded table stays down. Dirty bitmaps stored at the suspend are
 * in use again before writes. owners_lock is held from the check to the
 * switch to running (control path only: ctr, dtr, suspend, resume), so no
 * table of the image can be created in between.
 */
static int qcow2_preresume(struct dm_target *ti)
{
	struct qcow2_target *qt = ti->private;
	int ret = 0;

	mutex_lock(&owners_lock);
	if (qt->owner_seq && superseded(qt)) {
		DMERR("%s: a newer table owns the image: not resuming",
		      qt->q->path);
		ret = -EBUSY;
		goto out_unlock;
	}
	if (qcow2_bitmaps_resume(qt->q)) {
		DMERR("%s: dirty bitmaps cannot be marked in use (or the image changed under this table): not resuming",
		      qt->q->path);
		ret = -EIO;
		goto out_unlock;
	}
	if (qt->owner_seq) {
		qt->running = true;
		qt->ran = true;
		supersede_older(qt);
	}
out_unlock:
	mutex_unlock(&owners_lock);
	return ret;
}

static int qcow2_iterate_devices(struct dm_target *ti,
				 iterate_devices_callout_fn fn, void *data)
{
	return 0;	/* the image is a file, there is no underlying device */
}

static void qcow2_io_hints(struct dm_target *ti, struct queue_limits *limits)
{
	struct qcow2_target *qt = ti->private;

	if (qt->q->ro) {
		qcow2_set_discard_limits(limits, 0);
		return;
	}
	limits->discard_granularity = qt->q->cluster_size;
	qcow2_set_discard_limits(limits, UINT_MAX >> SECTOR_SHIFT);
}

static struct target_type qcow2_target = {
	.name = "qcow2",
	.version = {1, 2, 0},
	.module = THIS_MODULE,
	.ctr = qcow2_ctr,
	.dtr = qcow2_dtr,
	.map = qcow2_map,
	.end_io = qcow2_end_io,
	.message = qcow2_message,
	.status = qcow2_status,
	.presuspend = qcow2_presuspend,
	.postsuspend = qcow2_postsuspend,
	.preresume = qcow2_preresume,
	.resume = qcow2_resume,
	.iterate_devices = qcow2_iterate_devices,
	.io_hints = qcow2_io_hints,
};

static int __init dm_qcow2_init(void)
{
	int ret;

	/*
	 * Its own cache rather than kmalloc: /sys/kernel/slab shows what
	 * deferred frees hold, and failslab can target exactly it.
	 */
	qcow2_deferred_cache = KMEM_CACHE(qcow2_deferred, 0);
	if (!qcow2_deferred_cache)
		return -ENOMEM;
	ret = dm_register_target(&qcow2_target);
	if (ret)
		goto destroy_cache;
	return 0;

destroy_cache:
	kmem_cache_destroy(qcow2_deferred_cache);
	return ret;
}

static void __exit dm_qcow2_exit(void)
{
	dm_unregister_target(&qcow2_target);
	kmem_cache_destroy(qcow2_deferred_cache);
}

module_init(dm_qcow2_init);
module_exit(dm_qcow2_exit);

MODULE_DESCRIPTION(DM_NAME " target for QCOW2 image files");
MODULE_LICENSE("GPL");
MODULE_VERSION(QCOW2_VHOST_VERSION);
