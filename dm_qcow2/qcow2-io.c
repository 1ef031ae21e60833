// SPDX-License-Identifier: GPL-2.0
/*
 * qcow2-io.c: guest reads and writes, cluster by cluster.
 *
 * Lookups take q->lock for the L1/L2 walk only; data I/O runs unlocked.
 * A write that changes metadata (allocation, copy-on-write, zero flag,
 * subcluster bits) first registers its guest cluster in q->inflight (a
 * small hash, one wait queue a bucket) so that such writes to one cluster
 * are serialised; writes to other clusters proceed in parallel.
 */
#include <linux/slab.h>
#include <linux/falloc.h>
#include <linux/sched.h>
#include <linux/hash.h>
#include "qcow2.h"
#include "compat.h"

static u64 l2_index(struct qcow2 *q, u64 pos)
{
	return (pos >> q->cluster_bits) & ((1ULL << q->l2_bits) - 1);
}

static void *l2_slot(struct qcow2 *q, struct qcow2_table *t, u64 pos)
{
	return t->data + (l2_index(q, pos) << q->l2_entry_shift);
}

/* Under q->lock: the L2 table for @pos, or NULL when none is allocated. */
static int get_l2(struct qcow2 *q, u64 pos, struct qcow2_table **t, u64 *l1e)
{
	u64 i = pos >> (q->cluster_bits + q->l2_bits);
	u64 off;

	*t = NULL;
	*l1e = 0;
	if (i >= q->l1_size) {
		qcow2_err(q, "offset %llu beyond the L1 table", pos);
		return -EIO;
	}
	*l1e = q->l1[i];
	off = *l1e & QCOW2_OFFSET_MASK;
	if (!off)
		return 0;
	if (off + q->cluster_size > q->alloc_end) {
		qcow2_corrupt(q, "L2 table at %llu beyond end of file", off);
		return -EIO;
	}
	return qcow2_cache_get(q, &q->l2c, off, false, t);
}

static int decode_ext(struct qcow2 *q, u64 pos, u64 len, bool has_host,
		      struct qcow2_map *m)
{
	u32 sc = qcow2_cl_off(q, pos) >> q->subc_bits;
	u32 alloc = m->bitmap & 0xffffffffU, zero = m->bitmap >> 32;
	u32 bit = 1U << sc, i;
	u64 n;

	if (alloc & zero) {
		qcow2_corrupt(q, "subcluster both allocated and zero at %llu", pos);
		return -EIO;
	}
	if (alloc && !has_host) {
		qcow2_corrupt(q, "allocated subclusters without a cluster at %llu",
			  pos);
		return -EIO;
	}
	if (alloc & bit)
		m->kind = QC_DATA;
	else if (zero & bit)
		m->kind = QC_ZERO;
	else
		m->kind = QC_UNALLOC;
	/* extend over following subclusters in the same state */
	for (i = sc + 1; i < QCOW2_SUBCLUSTERS; i++) {
		u32 b = 1U << i;

		if (!!(alloc & b) != !!(alloc & bit) ||
		    !!(zero & b) != !!(zero & bit))
			break;
	}
	n = ((u64)i << q->subc_bits) - qcow2_cl_off(q, pos);
	m->len = min(len, n);
	return 0;
}

/*
 * Does the L2 entry name a host cluster? Offset 0 means none, except in
 * an external data file, where the copied flag marks its first cluster.
 */
static bool entry_has_host(struct qcow2 *q, u64 entry)
{
	return (entry & QCOW2_OFFSET_MASK) ||
	       (q->ext_data && (entry & QCOW2_OFLAG_COPIED));
}

/*
 * Is a host cluster named by an L2 entry somewhere data may be? In the
 * image: inside the file and outside all metadata. An external data file
 * holds nothing else, and reads beyond its end return zeros. NULL if it
 * may, else where it points, for the log.
 */
static const char *host_cluster_bad(struct qcow2 *q, u64 off)
{
	if (q->ext_data)
		return NULL;
	if (off + q->cluster_size > q->alloc_end)
		return "beyond the end of the file";
	return qcow2_overlap_what(q, off, q->cluster_size);
}

/* Turn one L2 entry into what the range [pos, pos + len) maps to. */
static int decode(struct qcow2 *q, u64 pos, u64 len, struct qcow2_map *m)
{
	u64 off = m->entry & QCOW2_OFFSET_MASK;
	u64 in = qcow2_cl_off(q, pos);
	bool has_host = entry_has_host(q, m->entry);
	const char *why;
	int ret;

	m->len = min_t(u64, len, q->cluster_size - in);
	if (m->entry & QCOW2_OFLAG_COMPRESSED) {
		if (q->ext_data) {
			qcow2_corrupt(q, "compressed cluster at %llu in an image with an external data file",
				  pos);
			return -EIO;
		}
		m->kind = QC_COMPRESSED;
		m->copied = false;
		return 0;
	}
	if ((m->entry & QCOW2_L2_RESERVED) || (off & (q->cluster_size - 1)) ||
	    (q->ext_l2 && (m->entry & QCOW2_OFLAG_ZERO)) ||
	    (q->version == 2 && (m->entry & QCOW2_OFLAG_ZERO))) {
		qcow2_corrupt(q, "invalid L2 entry %#llx for offset %llu",
			  m->entry, pos);
		return -EIO;
	}
	/*
	 * In an external data file every guest cluster lives at its own
	 * offset (the qcow2 spec requires it, QEMU fails the request
	 * otherwise): an entry naming another is damage, not data to serve.
	 */
	if (q->ext_data && has_host && off != qcow2_cl_align(q, pos)) {
		qcow2_corrupt(q, "L2 entry for %llu names data file offset %llu, not its own",
			      pos, off);
		return -EIO;
	}
	why = has_host ? host_cluster_bad(q, off) : NULL;
	if (why) {
		qcow2_corrupt(q, "L2 entry for %llu names host offset %llu: %s",
			      pos, off, why);
		return -EIO;
	}
	if (q->ext_l2) {
		ret = decode_ext(q, pos, len, has_host, m);
		if (ret)
			return ret;
	} else if (m->entry & QCOW2_OFLAG_ZERO) {
		m->kind = QC_ZERO;
	} else {
		m->kind = has_host ? QC_DATA : QC_UNALLOC;
	}
	m->host = off + in;
	return 0;
}

/* Under q->lock. */
static int get_map_locked(struct qcow2 *q, u64 pos, u64 len,
			  struct qcow2_map *m)
{
	struct qcow2_table *t;
	u64 l1e;
	void *slot;
	int ret;

	memset(m, 0, sizeof(*m));
	ret = get_l2(q, pos, &t, &l1e);
	if (ret)
		return ret;
	if (!t) {
		m->kind = QC_UNALLOC;
		m->len = min_t(u64, len, q->cluster_size - qcow2_cl_off(q, pos));
		return 0;
	}
	slot = l2_slot(q, t, pos);
	m->entry = get_unaligned_be64(slot);
	if (q->ext_l2)
		m->bitmap = get_unaligned_be64(slot + 8);
	ret = decode(q, pos, len, m);
	if (ret)
		return ret;
	m->copied = (l1e & QCOW2_OFLAG_COPIED) &&
		    (m->entry & QCOW2_OFLAG_COPIED) &&
		    !(m->entry & QCOW2_OFLAG_COMPRESSED);
	return 0;
}

/* Does the range read or write host bytes that the image names? */
static bool map_has_host(const struct qcow2_map *m)
{
	return m->kind == QC_DATA || m->kind == QC_COMPRESSED;
}

/*
 * Under q->lock: a lookup that maps to host bytes (map_has_host) holds a
 * q->data_io count of the current epoch; the caller may do I/O there
 * and must call qcow2_data_io_done() once that I/O has completed (or is
 * not done after all).
 */
static int get_map_locked_io(struct qcow2 *q, u64 pos, u64 len,
			     struct qcow2_map *m)
{
	int ret = get_map_locked(q, pos, len, m);

	if (!ret && map_has_host(m)) {
		m->epoch = q->data_epoch;
		atomic_inc(&q->data_io[m->epoch]);
	}
	return ret;
}

/* Look up [pos, pos + len), as get_map_locked_io(). */
static int get_map(struct qcow2 *q, u64 pos, u64 len, struct qcow2_map *m)
{
	u64 i = pos >> (q->cluster_bits + q->l2_bits), off = 0;
	int ret;

	mutex_lock(&q->lock);
	qcow2_cache_clean_tail(q);
	/* a miss reads the L2 table without holding up other lookups */
	if (i < q->l1_size)
		off = q->l1[i] & QCOW2_OFFSET_MASK;
	if (off && off + q->cluster_size <= q->alloc_end &&
	    !qcow2_cache_cached(&q->l2c, off))
		qcow2_cache_fill_unlocked(q, &q->l2c, off);
	ret = get_map_locked_io(q, pos, len, m);
	mutex_unlock(&q->lock);
	return ret;
}

/*
 * get_map() that never sleeps: -EAGAIN when q->lock is taken or the L2
 * table is not cached (loading it is the worker's job). No table is
 * loaded, so none is evicted and the cache's dirty tail does not matter.
 */
static int get_map_nowait(struct qcow2 *q, u64 pos, u64 len,
			  struct qcow2_map *m)
{
	u64 i = pos >> (q->cluster_bits + q->l2_bits), off;
	int ret = -EAGAIN;

	if (!mutex_trylock(&q->lock))
		return -EAGAIN;
	if (i >= q->l1_size)
		goto unlock;
	off = q->l1[i] & QCOW2_OFFSET_MASK;
	if (off && !qcow2_cache_cached(&q->l2c, off))
		goto unlock;
	ret = get_map_locked_io(q, pos, len, m);
unlock:
	mutex_unlock(&q->lock);
	return ret;
}

void qcow2_data_io_done(struct qcow2 *q, u8 epoch)
{
	if (atomic_dec_and_test(&q->data_io[epoch]))
		wake_up_all(&q->data_io_wq);
}

/*
 * Under q->lock, which keeps new lookups out: wait until the data I/O of
 * every earlier lookup has completed. Never waits on anything that needs
 * q->lock: data I/O does not take it.
 */
void qcow2_wait_data_io(struct qcow2 *q)
{
	lockdep_assert_held(&q->lock);
	wait_event(q->data_io_wq, !atomic_read(&q->data_io[0]) &&
		   !atomic_read(&q->data_io[1]));
}

/*
 * Fast path: does the whole of [pos, pos + len) map to one run of host
 * data that may be read (or, for @write, written in place)? When it does,
 * the caller owes qcow2_data_io_done(@epoch) once its I/O has completed.
 * @nowait: decide without sleeping (get_map_nowait); false when that
 * cannot be known without sleeping.
 */
bool qcow2_map_direct(struct qcow2 *q, u64 pos, u64 len, bool write,
		      bool nowait, u64 *host, u8 *epoch)
{
	struct qcow2_map m;
	int ret;

	ret = nowait ? get_map_nowait(q, pos, len, &m) :
		       get_map(q, pos, len, &m);
	if (ret || !map_has_host(&m))
		return false;
	if (m.kind != QC_DATA || m.len != len || (write && !m.copied)) {
		qcow2_data_io_done(q, m.epoch);
		return false;
	}
	*host = m.host;
	*epoch = m.epoch;
	return true;
}

/* Read @n bytes of @f at @off into @it; the part beyond EOF reads zeros. */
static int read_file(struct qcow2 *q, struct file *f, struct iov_iter *it,
		     u64 off, u64 n)
{
	struct iov_iter sub = *it;
	loff_t p = off;
	ssize_t r;

	iov_iter_truncate(&sub, n);
	r = vfs_iter_read(f, &sub, &p, 0);
	if (r < 0) {
		qcow2_err(q, "read of %llu bytes at %llu failed: %zd", n, off, r);
		return r;
	}
	if (r < n)
		iov_iter_zero(n - r, &sub);
	iov_iter_advance(it, n);
	return 0;
}

static int read_backing(struct qcow2 *q, struct iov_iter *it, u64 pos, u64 n)
{
	u64 bsize, m;
	int ret;

	if (q->bq) {
		bsize = q->bq->size;
		m = pos < bsize ? min(n, bsize - pos) : 0;
		if (m) {
			ret = qcow2_read(q->bq, it, pos, m);
			if (ret)
				return ret;
		}
		if (n > m)
			iov_iter_zero(n - m, it);
		return 0;
	}
	if (q->braw)
		return read_file(q, q->braw, it, pos, n);
	iov_iter_zero(n, it);
	return 0;
}

static int read_compressed(struct qcow2 *q, struct iov_iter *it, u64 entry,
			   u64 pos, u64 n)
{
	int ret = 0;

	mutex_lock(&q->zlock);
	if (q->zentry != entry || !q->zbuf) {
		q->zentry = 0;
		ret = qcow2_decompress(q, entry);
		if (!ret)
			q->zentry = entry;
	}
	if (!ret && copy_to_iter(q->zbuf + qcow2_cl_off(q, pos), n, it) != n)
		ret = -EFAULT;
	mutex_unlock(&q->zlock);
	return ret;
}

int qcow2_read(struct qcow2 *q, struct iov_iter *it, u64 pos, u64 len)
{
	struct qcow2_map m;
	int ret;

	while (len) {
		ret = get_map(q, pos, len, &m);
		if (ret)
			return ret;
		switch (m.kind) {
		case QC_ZERO:
			iov_iter_zero(m.len, it);
			break;
		case QC_UNALLOC:
			ret = read_backing(q, it, pos, m.len);
			break;
		case QC_DATA:
			ret = read_file(q, q->dfile, it, m.host, m.len);
			qcow2_data_io_done(q, m.epoch);
			break;
		case QC_COMPRESSED:
			ret = read_compressed(q, it, m.entry, pos, m.len);
			qcow2_data_io_done(q, m.epoch);
			break;
		}
		if (ret)
			return ret;
		pos += m.len;
		len -= m.len;
	}
	return 0;
}

/* Write @n bytes from @it (or zeros when @it is NULL) to host offset @host. */
static int write_file(struct qcow2 *q, struct iov_iter *it, u64 host, u64 n)
{
	struct iov_iter sub = *it;
	loff_t p = host;
	ssize_t r;

	iov_iter_truncate(&sub, n);
	r = qcow2_write_all(q->dfile, &sub, &p);
	if (r != n) {
		qcow2_err(q, "write of %llu bytes at %llu failed: %zd", n, host,
			  r);
		return r < 0 ? r : -EIO;
	}
	iov_iter_advance(it, n);
	return 0;
}

/*
 * Under q->lock: an L2 table for @pos that may be modified in place.
 * Allocates a new table when the L1 entry is empty and copies a table
 * shared with a snapshot. The L1 entry changes in memory only; the flush
 * sequence writes it after the table itself is durable.
 */
static int get_l2_for_write(struct qcow2 *q, u64 pos, struct qcow2_table **t)
{
	u64 i = pos >> (q->cluster_bits + q->l2_bits);
	struct qcow2_table *old;
	u64 l1e, off, newoff;
	int ret;

	ret = get_l2(q, pos, t, &l1e);
	if (ret)
		return ret;
	if (*t && (l1e & QCOW2_OFLAG_COPIED))
		return 0;
	off = l1e & QCOW2_OFFSET_MASK;
	ret = qcow2_alloc_cluster(q, &newoff);
	if (ret)
		return ret;
	ret = qcow2_cache_get(q, &q->l2c, newoff, true, t);
	if (ret)
		goto undo_alloc;
	if (off) {
		ret = qcow2_cache_get(q, &q->l2c, off, false, &old);
		if (ret)
			goto undo_alloc;
		memcpy((*t)->data, old->data, q->cluster_size);
		ret = qcow2_defer_free(q, off, q->cluster_size, false);
		if (ret)
			goto undo_alloc;
	}
	qcow2_cache_mark_dirty(q, *t);
	q->l1[i] = newoff | QCOW2_OFLAG_COPIED;
	qcow2_l1_mark_dirty(q);
	if (off)
		qcow2_meta_remove(q, off);
	qcow2_meta_add(q, newoff, QCOW2_META_L2, GFP_NOWAIT);
	return 0;

undo_alloc:
	qcow2_update_refcount(q, newoff, q->cluster_size, -1);
	return ret;
}

void qcow2_inflight_init(struct qcow2 *q)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(q->inflight); i++) {
		INIT_HLIST_HEAD(&q->inflight[i]);
		init_waitqueue_head(&q->alloc_wq[i]);
	}
}

static u32 inflight_bucket(u64 vc)
{
	return hash_64(vc, QCOW2_INFLIGHT_BITS);
}

static bool inflight_busy(struct qcow2 *q, u64 vc)
{
	struct qcow2_inflight *f;

	hlist_for_each_entry(f, &q->inflight[inflight_bucket(vc)], node)
		if (f->vcluster == vc)
			return true;
	return false;
}

/*
 * Under q->lock: wait until no other metadata change of guest cluster
 * @vc is in flight, then register ours. Returns with the lock held. The
 * waiter is on the bucket's queue before the lock is dropped, so the
 * leave it waits for (which takes the lock) cannot miss it.
 */
static void inflight_enter(struct qcow2 *q, u64 vc, struct qcow2_inflight *f)
{
	u32 b = inflight_bucket(vc);
	DEFINE_WAIT(w);

	while (inflight_busy(q, vc)) {
		prepare_to_wait(&q->alloc_wq[b], &w, TASK_UNINTERRUPTIBLE);
		mutex_unlock(&q->lock);
		schedule();
		finish_wait(&q->alloc_wq[b], &w);
		mutex_lock(&q->lock);
	}
	f->vcluster = vc;
	hlist_add_head(&f->node, &q->inflight[b]);
}

static void inflight_leave(struct qcow2 *q, struct qcow2_inflight *f)
{
	u32 b = inflight_bucket(f->vcluster);

	mutex_lock(&q->lock);
	hlist_del(&f->node);
	mutex_unlock(&q->lock);
	wake_up_all(&q->alloc_wq[b]);
}

/*
 * Under q->lock: queue the release of the host range that L2 entry
 * @entry held, once the L2 change is durable. The entry comes from the
 * image: a range that is misaligned, beyond the end of the file or in
 * metadata is refused (-EIO) rather than freed, so a damaged entry can
 * never punch or hand out clusters that something else uses.
 */
static int release_entry(struct qcow2 *q, u64 entry, bool punch)
{
	u64 off, len;

	if (q->ext_data)
		return 0;	/* data file clusters are not refcounted */
	if (entry & QCOW2_OFLAG_COMPRESSED) {
		qcow2_compressed_range(q, entry, &off, &len);
		punch = false;
	} else {
		off = entry & QCOW2_OFFSET_MASK;
		len = q->cluster_size;
		if (!off)
			return 0;
		if (off & (q->cluster_size - 1))
			goto bad;
	}
	if (off >= q->alloc_end || len > q->alloc_end - off ||
	    qcow2_overlaps_any(q, off, len))
		goto bad;
	return qcow2_defer_free(q, off, len, punch);
bad:
	qcow2_corrupt(q, "L2 entry %#llx holds an invalid host range", entry);
	return -EIO;
}

/* Plan of a copy-on-write of one cluster, made under q->lock. */
struct cow_plan {
	u64 cstart;		/* guest offset of the cluster */
	u64 wstart, wlen;	/* guest range written to the host cluster */
	u64 host;		/* host cluster written */
	bool fresh;		/* host newly allocated by us */
	u64 old_entry, old_bitmap;
};

static u32 sc_mask(struct qcow2 *q, u64 start, u64 len)
{
	u32 first = qcow2_cl_off(q, start) >> q->subc_bits;
	u32 last = (qcow2_cl_off(q, start) + len - 1) >> q->subc_bits;

	return (u32)(GENMASK_ULL(last, first));
}

static int plan_cow(struct qcow2 *q, u64 pos, u64 n, struct cow_plan *p)
{
	struct qcow2_table *t;
	u64 off, sc = 1ULL << q->subc_bits;
	bool compressed, has_host;
	void *slot;
	int ret;

	ret = get_l2_for_write(q, pos, &t);
	if (ret)
		return ret;
	slot = l2_slot(q, t, pos);
	p->old_entry = get_unaligned_be64(slot);
	p->old_bitmap = q->ext_l2 ? get_unaligned_be64(slot + 8) : 0;
	p->cstart = qcow2_cl_align(q, pos);
	compressed = p->old_entry & QCOW2_OFLAG_COMPRESSED;
	has_host = !compressed && entry_has_host(q, p->old_entry);
	off = has_host ? p->old_entry & QCOW2_OFFSET_MASK : 0;
	if ((off & (q->cluster_size - 1)) ||
	    (has_host && host_cluster_bad(q, off))) {
		qcow2_corrupt(q, "invalid L2 entry %#llx", p->old_entry);
		return -EIO;
	}
	if (has_host && (p->old_entry & QCOW2_OFLAG_COPIED)) {
		p->host = off;		/* ours already: fill in place */
		p->fresh = false;
	} else if (q->ext_data) {
		/* a data file holds each cluster at its guest offset */
		p->host = p->cstart;
		p->fresh = false;
	} else {
		ret = qcow2_alloc_cluster(q, &p->host);
		if (ret)
			return ret;
		p->fresh = true;
	}
	/*
	 * What has to be (re)written to the host cluster: all of it when
	 * the cluster moves away from old data, else the subclusters hit.
	 */
	if (q->ext_l2 && !((has_host || compressed) && p->host != off)) {
		p->wstart = round_down(pos, sc);
		p->wlen = round_up(pos + n, sc) - p->wstart;
	} else {
		p->wstart = p->cstart;
		p->wlen = q->cluster_size;
	}
	return 0;
}

/* Under q->lock: point the L2 entry at the filled host cluster. */
static int commit_cow(struct qcow2 *q, struct cow_plan *p)
{
	struct qcow2_table *t;
	u64 entry = p->host | QCOW2_OFLAG_COPIED;
	u64 old = p->old_entry;
	void *slot;
	int ret;

	ret = get_l2_for_write(q, p->cstart, &t);
	if (ret)
		return ret;
	/*
	 * The old cluster loses this reference once the L2 is durable;
	 * a damaged entry is refused before anything changes.
	 */
	if (p->fresh) {
		ret = release_entry(q, old, false);
		if (ret)
			return ret;
	}
	slot = l2_slot(q, t, p->cstart);
	put_unaligned_be64(entry, slot);
	if (q->ext_l2) {
		u32 w = sc_mask(q, p->wstart, p->wlen);
		u32 alloc = p->old_bitmap, zero = p->old_bitmap >> 32;

		if (old & QCOW2_OFLAG_COMPRESSED)
			alloc = 0xffffffffU;
		alloc |= w;
		zero &= ~w;
		put_unaligned_be64(((u64)zero << 32) | alloc, slot + 8);
	}
	qcow2_cache_mark_dirty(q, t);
	return 0;
}

/* Fill the host cluster: old content around the new data, then write. */
static int fill_cow(struct qcow2 *q, struct cow_plan *p, struct iov_iter *it,
		    u64 pos, u64 n)
{
	struct qcow2_kiter ki;
	void *buf;
	int ret;

	if (p->wstart == pos && p->wlen == n && it)
		return write_file(q, it, p->host + (pos - p->cstart), n);
	buf = qcow2_alloc_buf(p->wlen);
	if (!buf)
		return -ENOMEM;
	ret = qcow2_kiter_init(&ki, buf, p->wlen, false);
	if (ret)
		goto free_buf;
	ret = qcow2_read(q, &ki.it, p->wstart, p->wlen);
	qcow2_kiter_free(&ki);
	if (ret)
		goto free_buf;
	if (!it)
		memset(buf + (pos - p->wstart), 0, n);
	else if (copy_from_iter(buf + (pos - p->wstart), n, it) != n)
		ret = -EFAULT;
	if (!ret)
		ret = qcow2_file_rw(q, q->dfile, buf, p->wlen,
				    p->host + (p->wstart - p->cstart), true);
free_buf:
	kvfree(buf);
	return ret;
}

/*
 * Copy-on-write of [pos, pos + n), which lies in one cluster and, with
 * extended L2, in subclusters that are not allocated. Returns -EAGAIN
 * when another writer allocated the range meanwhile.
 */
static int cow_write(struct qcow2 *q, struct iov_iter *it, u64 pos, u64 n)
{
	struct qcow2_inflight f;
	struct cow_plan p = {};
	struct qcow2_map m;
	int ret;

	mutex_lock(&q->lock);
	qcow2_cache_clean_tail(q);
	qcow2_refblock_prefetch(q, q->free_hint);
	inflight_enter(q, pos >> q->cluster_bits, &f);
	/*
	 * Another writer may have changed the cluster since our lookup: if
	 * the range is writable data now, or no longer one run, start over
	 * (a read-modify-write here would cover data that in-place writers
	 * may be changing).
	 */
	ret = get_map_locked(q, pos, n, &m);
	if (!ret && ((m.kind == QC_DATA && m.copied) || m.len < n))
		ret = -EAGAIN;
	if (!ret)
		ret = plan_cow(q, pos, n, &p);
	mutex_unlock(&q->lock);
	if (ret)
		goto leave;

	ret = fill_cow(q, &p, it, pos, n);

	mutex_lock(&q->lock);
	if (!ret)
		ret = commit_cow(q, &p);
	else if (p.fresh)
		qcow2_update_refcount(q, p.host, q->cluster_size, -1);
	mutex_unlock(&q->lock);
leave:
	inflight_leave(q, &f);
	return ret;
}

/* Write @n zeros at host offset @host. */
static int zero_file(struct qcow2 *q, u64 host, u64 n)
{
	void *buf = qcow2_alloc_buf(n);
	int ret;

	if (!buf)
		return -ENOMEM;
	memset(buf, 0, n);
	ret = qcow2_file_rw(q, q->dfile, buf, n, host, true);
	kvfree(buf);
	return ret;
}

/*
 * Write the part of a request that falls in one cluster, run by run:
 * allocated writable data in place (zeros too: rewriting the cluster
 * around them could undo a concurrent in-place write), everything else
 * by copy-on-write.
 */
static int write_cluster(struct qcow2 *q, struct iov_iter *it, u64 pos, u64 n)
{
	struct qcow2_map m;
	int ret;

	while (n) {
		ret = get_map(q, pos, n, &m);
		if (ret)
			return ret;
		if (m.kind == QC_DATA && m.copied) {
			ret = it ? write_file(q, it, m.host, m.len) :
				   zero_file(q, m.host, m.len);
			qcow2_data_io_done(q, m.epoch);
		} else {
			if (map_has_host(&m))
				qcow2_data_io_done(q, m.epoch);
			ret = cow_write(q, it, pos, m.len);
		}
		if (ret == -EAGAIN)
			continue;
		if (ret)
			return ret;
		pos += m.len;
		n -= m.len;
	}
	return 0;
}

/* @it NULL writes zeros. */
int qcow2_write(struct qcow2 *q, struct iov_iter *it, u64 pos, u64 len)
{
	u64 n;
	int ret;

	if (q->ro)
		return -EROFS;
	ret = qcow2_wb_error(q);
	if (ret)
		return ret;
	while (len) {
		n = min_t(u64, len, q->cluster_size - qcow2_cl_off(q, pos));
		ret = write_cluster(q, it, pos, n);
		if (!ret)
			ret = qcow2_deferred_bound(q);
		if (ret)
			return ret;
		pos += n;
		len -= n;
	}
	return 0;
}

/*
 * Under q->lock: the zero flag on the cluster's own host cluster, which
 * it keeps (REQ_NOUNMAP, QEMU's "zero, allocated"): with extended L2 all
 * subclusters read zeros, else the entry keeps its offset and flags and
 * gains QCOW2_OFLAG_ZERO. A later write fills the cluster in place if it
 * is ours, or copies it away if a snapshot shares it.
 */
static void zero_keep_entry(struct qcow2 *q, void *slot, u64 entry)
{
	if (q->ext_l2)
		put_unaligned_be64(0xffffffff00000000ULL, slot + 8);
	else
		put_unaligned_be64(entry | QCOW2_OFLAG_ZERO, slot);
}

/*
 * Under q->lock: drop one whole cluster (discard or zero it), or with
 * QCOW2_ZERO_KEEP mark it zero and keep its host cluster (a compressed
 * one is freed: it cannot carry the zero flag). *@punch tells whether the
 * cluster held data of an external data file at its own guest offset
 * (where QEMU puts it), which the caller may punch.
 */
static int unmap_cluster(struct qcow2 *q, u64 pos, enum qcow2_unmap how,
			 bool *punch)
{
	bool zeroes = how != QCOW2_DISCARD;
	bool backing = q->bq || q->braw;
	bool zero_flag = q->version >= 3 && (zeroes || backing);
	struct qcow2_table *t;
	u64 entry, l1e;
	void *slot;
	int ret;

	*punch = false;
	ret = get_l2(q, pos, &t, &l1e);
	if (ret)
		return ret;
	if (!t && !zero_flag)
		return 0;
	ret = get_l2_for_write(q, pos, &t);
	if (ret)
		return ret;
	slot = l2_slot(q, t, pos);
	entry = get_unaligned_be64(slot);
	if (how == QCOW2_ZERO_KEEP && !(entry & QCOW2_OFLAG_COMPRESSED) &&
	    entry_has_host(q, entry)) {
		zero_keep_entry(q, slot, entry);
		qcow2_cache_mark_dirty(q, t);
		return 0;
	}
	/* queue the release first: a damaged entry is left as it was */
	ret = release_entry(q, entry, true);
	if (ret)
		return ret;
	*punch = q->ext_data && !(entry & QCOW2_OFLAG_COMPRESSED) &&
		 entry_has_host(q, entry) &&
		 (entry & QCOW2_OFFSET_MASK) == qcow2_cl_align(q, pos);
	if (q->ext_l2) {
		put_unaligned_be64(0, slot);
		put_unaligned_be64(zero_flag ? 0xffffffff00000000ULL : 0,
				   slot + 8);
	} else {
		put_unaligned_be64(zero_flag ? QCOW2_OFLAG_ZERO : 0, slot);
	}
	qcow2_cache_mark_dirty(q, t);
	return 0;
}

/*
 * A data file cluster is not refcounted, so nothing holds it back from
 * reuse the way a deferred free holds an image cluster: the next write to
 * the guest cluster takes the same host range. Punch it now, while the
 * cluster is in q->inflight and no new write can reach it. The L2 change
 * is not durable yet; a crash before it is leaves an entry that reads
 * zeros, which is what the discarded or zeroed cluster reads anyway. A
 * write from a lookup made before the change may still land after the
 * hole: that only leaves data no entry names, never visible, because a
 * new allocation writes every (sub)cluster it marks allocated. The punch
 * only gives space back, so its failure (a data file on a device without
 * write zeroes, say) is not the request's.
 */
static void punch_data_cluster(struct qcow2 *q, u64 pos)
{
	vfs_fallocate(q->dfile, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      qcow2_cl_align(q, pos), q->cluster_size);
}

static int unmap_one(struct qcow2 *q, u64 pos, enum qcow2_unmap how)
{
	struct qcow2_inflight f;
	bool punch;
	int ret;

	mutex_lock(&q->lock);
	qcow2_cache_clean_tail(q);
	qcow2_refblock_prefetch(q, q->free_hint);
	inflight_enter(q, pos >> q->cluster_bits, &f);
	ret = unmap_cluster(q, pos, how, &punch);
	mutex_unlock(&q->lock);
	if (!ret && punch)
		punch_data_cluster(q, pos);
	inflight_leave(q, &f);
	return ret;
}

/*
 * Does [pos, pos + len) read as zeros already (zero flag, or unallocated
 * with nothing behind it)? Then zeroing it needs no change at all.
 */
static bool reads_zero(struct qcow2 *q, u64 pos, u64 len)
{
	struct qcow2_map m;

	while (len) {
		if (get_map(q, pos, len, &m))
			return false;
		if (map_has_host(&m)) {
			qcow2_data_io_done(q, m.epoch);
			return false;
		}
		if (m.kind == QC_UNALLOC && (q->bq || q->braw))
			return false;
		pos += m.len;
		len -= m.len;
	}
	return true;
}

/*
 * Discard drops whole clusters (partial ones are left alone); write
 * zeroes uses the zero flag on whole clusters of v3 images and writes
 * zeros everywhere else, except where the range reads zeros already.
 * QCOW2_ZERO_KEEP keeps host clusters allocated. A raw external data file
 * must keep the disk's content: there discard does nothing and write
 * zeroes writes zeros.
 */
int qcow2_discard(struct qcow2 *q, u64 pos, u64 len, enum qcow2_unmap how)
{
	bool zeroes = how != QCOW2_DISCARD;
	u64 end = pos + len, n;
	int ret;

	if (q->ro)
		return -EROFS;
	ret = qcow2_wb_error(q);
	if (ret)
		return ret;
	if (q->data_raw)
		return zeroes ? qcow2_write(q, NULL, pos, len) : 0;
	while (pos < end) {
		n = min_t(u64, end - pos, q->cluster_size - qcow2_cl_off(q, pos));
		if (zeroes && reads_zero(q, pos, n))
			ret = 0;
		else if (n == q->cluster_size && (!zeroes || q->version >= 3))
			ret = unmap_one(q, pos, how);
		else if (zeroes)
			ret = qcow2_write(q, NULL, pos, n);
		else
			ret = 0;
		if (!ret)
			ret = qcow2_deferred_bound(q);
		if (ret)
			return ret;
		pos += n;
	}
	return 0;
}
