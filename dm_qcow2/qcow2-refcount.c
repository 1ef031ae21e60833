// SPDX-License-Identifier: GPL-2.0
/*
 * qcow2-refcount.c: refcounts of host clusters and cluster allocation.
 * Everything here runs with q->lock held.
 */
#include <linux/slab.h>
#include <linux/falloc.h>
#include <linux/sched.h>
#include "qcow2.h"
#include "compat.h"

static u64 rb_get(struct qcow2 *q, const void *blk, u64 i)
{
	const u8 *b = blk;
	u32 bits, shift;

	switch (q->refcount_order) {
	case 3:
		return b[i];
	case 4:
		return get_unaligned_be16(b + i * 2);
	case 5:
		return get_unaligned_be32(b + i * 4);
	case 6:
		return get_unaligned_be64(b + i * 8);
	default:
		bits = 1U << q->refcount_order;
		shift = (i * bits) % 8;
		return (b[i * bits / 8] >> shift) & ((1U << bits) - 1);
	}
}

static void rb_set(struct qcow2 *q, void *blk, u64 i, u64 v)
{
	u8 *b = blk;
	u32 bits, shift, mask;

	switch (q->refcount_order) {
	case 3:
		b[i] = v;
		break;
	case 4:
		put_unaligned_be16(v, b + i * 2);
		break;
	case 5:
		put_unaligned_be32(v, b + i * 4);
		break;
	case 6:
		put_unaligned_be64(v, b + i * 8);
		break;
	default:
		bits = 1U << q->refcount_order;
		shift = (i * bits) % 8;
		mask = ((1U << bits) - 1) << shift;
		b[i * bits / 8] = (b[i * bits / 8] & ~mask) | ((v << shift) & mask);
		break;
	}
}

/* The refcount block covering @cluster, or NULL (*t) when there is none. */
static int get_block(struct qcow2 *q, u64 cluster, struct qcow2_table **t)
{
	u64 idx = cluster >> q->rb_bits;
	u64 off;

	*t = NULL;
	if (idx >= q->rt_entries || !q->rt[idx])
		return 0;
	off = q->rt[idx] & ~QCOW2_RT_RESERVED;
	return qcow2_cache_get(q, &q->rbc, off, false, t);
}

int qcow2_get_refcount(struct qcow2 *q, u64 cluster, u64 *ref)
{
	struct qcow2_table *t;
	int ret = get_block(q, cluster, &t);

	*ref = 0;
	if (ret || !t)
		return ret;
	*ref = rb_get(q, t->data, cluster & ((1ULL << q->rb_bits) - 1));
	return 0;
}

/*
 * Under q->lock, which it drops for the read: load the refcount block
 * covering @cluster unless it is cached, so that the refcount update that
 * follows (an allocation from q->free_hint, a deferred decrement) does not
 * read it with the lock held. Best effort, as qcow2_cache_fill_unlocked().
 * A block that is not cached is on disk: a new one is cached dirty, and
 * stays cached until written.
 */
void qcow2_refblock_prefetch(struct qcow2 *q, u64 cluster)
{
	u64 idx = cluster >> q->rb_bits, off;

	lockdep_assert_held(&q->lock);
	if (q->ro || idx >= q->rt_entries || !q->rt[idx])
		return;
	off = q->rt[idx] & ~QCOW2_RT_RESERVED;
	if (off + q->cluster_size <= q->alloc_end &&
	    !qcow2_cache_cached(&q->rbc, off))
		qcow2_cache_fill_unlocked(q, &q->rbc, off);
}

static void account(struct qcow2 *q, u64 cluster, u64 old, u64 new)
{
	if (!old && new) {
		q->nr_allocated++;
		if (q->nr_free && cluster < (q->alloc_end >> q->cluster_bits))
			q->nr_free--;
	} else if (old && !new) {
		q->nr_allocated--;
		q->nr_free++;
		q->free_hint = min(q->free_hint, cluster);
	}
}

/* Add @delta to the refcount of every cluster in [offset, offset + len). */
int qcow2_update_refcount(struct qcow2 *q, u64 offset, u64 len, int delta)
{
	u64 c, first = offset >> q->cluster_bits;
	u64 last = (offset + len - 1) >> q->cluster_bits;
	struct qcow2_table *t;
	u64 idx, ref, new;
	int ret;

	for (c = first; c <= last; c++) {
		ret = get_block(q, c, &t);
		if (ret)
			return ret;
		if (!t) {
			qcow2_corrupt(q, "no refcount block for cluster %llu", c);
			return -EIO;
		}
		idx = c & ((1ULL << q->rb_bits) - 1);
		ref = rb_get(q, t->data, idx);
		if ((delta < 0 && !ref) ||
		    (delta > 0 && ref == q->refcount_max)) {
			qcow2_err(q, "refcount of cluster %llu %s", c,
				  ref ? "overflows" : "underflows");
			return -EIO;
		}
		new = delta < 0 ? ref - 1 : ref + 1;
		rb_set(q, t->data, idx, new);
		qcow2_cache_mark_dirty(q, t);
		account(q, c, ref, new);
	}
	return 0;
}

/*
 * The refcount table is full: build a larger one at the end of the file,
 * right after a new refcount block (at @c) that counts both. The header
 * points at the new table once it is durable (flush sequence step 2);
 * the old table is freed after that.
 */
static int grow_reftable(struct qcow2 *q, u64 c)
{
	u64 idx = c >> q->rb_bits, per_cl = q->cluster_size / 8, i, n;
	struct qcow2_table *t;
	u64 *nrt;
	int ret;

	n = max_t(u64, 2ULL * q->rt_clusters, DIV_ROUND_UP(idx + 1, per_cl));
	if ((n << q->cluster_bits) > QCOW2_MAX_RT_BYTES ||
	    n + 1 > (1ULL << q->rb_bits) || (idx << q->rb_bits) != c) {
		qcow2_err(q, "refcount table cannot grow further");
		return -ENOSPC;
	}
	nrt = kvcalloc(n * per_cl, sizeof(u64), GFP_KERNEL);
	if (!nrt)
		return -ENOMEM;
	ret = qcow2_cache_get(q, &q->rbc, c << q->cluster_bits, true, &t);
	if (!ret)
		ret = qcow2_defer_free(q, q->rt_offset,
				       (u64)q->rt_clusters << q->cluster_bits,
				       false);
	if (ret) {
		kvfree(nrt);
		return ret;
	}
	for (i = 0; i <= n; i++)
		rb_set(q, t->data, i, 1);
	qcow2_cache_mark_dirty(q, t);
	memcpy(nrt, q->rt, q->rt_entries * sizeof(u64));
	nrt[idx] = c << q->cluster_bits;
	qcow2_meta_add(q, c << q->cluster_bits, QCOW2_META_REFBLOCK,
		       GFP_NOWAIT);
	kvfree(q->rt);
	q->rt = nrt;
	q->rt_entries = n * per_cl;
	q->rt_offset = (c + 1) << q->cluster_bits;
	q->rt_clusters = n;
	q->rt_dirty = true;
	q->rt_moved = true;
	q->rt_gen = ++q->meta_gen;
	q->alloc_end = (c + n + 1) << q->cluster_bits;
	q->nr_allocated += n + 1;
	return 0;
}

/* A new refcount block for the range starting at cluster @c, placed at @c. */
static int new_refblock(struct qcow2 *q, u64 c)
{
	u64 idx = c >> q->rb_bits;
	struct qcow2_table *t;
	int ret;

	if (idx >= q->rt_entries)
		return grow_reftable(q, c);
	if ((idx << q->rb_bits) != c) {
		qcow2_corrupt(q, "clusters below %llu have no refcount block", c);
		return -EIO;
	}
	ret = qcow2_cache_get(q, &q->rbc, c << q->cluster_bits, true, &t);
	if (ret)
		return ret;
	rb_set(q, t->data, 0, 1);
	qcow2_cache_mark_dirty(q, t);
	q->rt[idx] = c << q->cluster_bits;
	qcow2_meta_add(q, c << q->cluster_bits, QCOW2_META_REFBLOCK,
		       GFP_NOWAIT);
	q->rt_dirty = true;
	q->rt_gen = ++q->meta_gen;
	q->alloc_end = (c + 1) << q->cluster_bits;
	q->nr_allocated++;
	return 0;
}

/* Allocate one host cluster: a free one if any, else at the end of file. */
int qcow2_alloc_cluster(struct qcow2 *q, u64 *offset)
{
	u64 end = q->alloc_end >> q->cluster_bits;
	const char *what;
	u64 c, ref, idx;
	int ret;

	for (c = q->free_hint; c < end; c++) {
		idx = c >> q->rb_bits;
		if (idx >= q->rt_entries)
			break;		/* nothing beyond the table is free */
		if (!q->rt[idx]) {
			/* no refcounts here: never hand these out */
			c = ((idx + 1) << q->rb_bits) - 1;
			continue;
		}
		/* a (damaged) image may make this scan long */
		if (!(c & ((1ULL << q->rb_bits) - 1)))
			cond_resched();
		ret = qcow2_get_refcount(q, c, &ref);
		if (ret)
			return ret;
		if (ref || qcow2_overlaps_meta(q, c << q->cluster_bits,
					       q->cluster_size))
			continue;
		what = qcow2_overlap_what(q, c << q->cluster_bits,
					  q->cluster_size);
		if (!what)
			goto found;
		/* QEMU's overlap check would refuse the write that follows */
		qcow2_corrupt(q, "cluster %llu has refcount 0 but is %s",
			      c, what);
		return -EIO;
	}
	q->free_hint = end;
	c = end;
	idx = c >> q->rb_bits;
	if (idx >= q->rt_entries || !q->rt[idx]) {
		ret = new_refblock(q, c);
		if (ret)
			return ret;
		c = q->alloc_end >> q->cluster_bits;
		q->free_hint = c;
	}
found:
	ret = qcow2_update_refcount(q, c << q->cluster_bits, q->cluster_size, 1);
	if (ret)
		return ret;
	if (c >= (q->alloc_end >> q->cluster_bits))
		q->alloc_end = (c + 1) << q->cluster_bits;
	q->free_hint = max(q->free_hint, c + 1);
	*offset = c << q->cluster_bits;
	return 0;
}

struct kmem_cache *qcow2_deferred_cache;

/* Under q->lock: can @d grow by [offset, offset + len)? */
static bool deferred_merge(struct qcow2_deferred *d, u64 offset, u64 len,
			   bool punch)
{
	if (d->punch != punch)
		return false;
	if (d->offset + d->len == offset) {
		d->len += len;
		return true;
	}
	if (offset + len == d->offset) {
		d->offset = offset;
		d->len += len;
		return true;
	}
	return false;
}

/*
 * Under q->lock: queue a decrement of [offset, offset + len) for the
 * flush sequence. Without sleeping: q->lock is needed by every request,
 * and reclaim may wait for I/O to this very device. A discard walks
 * clusters in order, so merging with the newest record keeps a large
 * discard of contiguous host clusters to a few records.
 */
int qcow2_defer_free(struct qcow2 *q, u64 offset, u64 len, bool punch)
{
	struct qcow2_deferred *d;

	lockdep_assert_held(&q->lock);
	if (WARN_ON_ONCE(!q->deferred_pool))
		return -EROFS;	/* read-only images free nothing */
	if (!list_empty(&q->deferred)) {
		d = list_last_entry(&q->deferred, struct qcow2_deferred, list);
		if (deferred_merge(d, offset, len, punch))
			return 0;
	}
	d = mempool_alloc(q->deferred_pool, GFP_NOWAIT | __GFP_NOWARN);
	if (!d) {
		qcow2_err(q, "no memory to queue the free of %llu bytes at %llu",
			  len, offset);
		return -ENOMEM;
	}
	d->offset = offset;
	d->len = len;
	d->punch = punch;
	list_add_tail(&d->list, &q->deferred);
	q->nr_deferred++;
	return 0;
}

/* Under q->lock (or with the image going away): drop the records. */
void qcow2_deferred_free_list(struct qcow2 *q, struct list_head *list)
{
	struct qcow2_deferred *d, *tmp;

	list_for_each_entry_safe(d, tmp, list, list) {
		list_del(&d->list);
		mempool_free(d, q->deferred_pool);
		q->nr_deferred--;
	}
}

/*
 * Without any lock, between the clusters of a request: once
 * QCOW2_DEFERRED_MAX records are held, apply them now (a flush request)
 * rather than let them grow until the guest flushes. The flush writes
 * the metadata from copies and punches without q->lock, so other
 * requests go on meanwhile.
 */
int qcow2_deferred_bound(struct qcow2 *q)
{
	if (likely(READ_ONCE(q->nr_deferred) < QCOW2_DEFERRED_MAX))
		return 0;
	return qcow2_flush(q);
}

/* Under q->lock: does every cluster of [off, off + len) have refcount @want? */
static bool range_refs_are(struct qcow2 *q, u64 off, u64 len, u64 want)
{
	u64 c, end = (off + len - 1) >> q->cluster_bits, ref;

	for (c = off >> q->cluster_bits; c <= end; c++)
		if (qcow2_get_refcount(q, c, &ref) || ref != want)
			return false;
	return true;
}

/*
 * Called by the flush sequence, under q->lock, for the frees on @list once
 * no durable L2/L1 entry needs them and no data I/O uses them.
 * A decrement that fails (damaged refcounts) is dropped, not retried:
 * the cluster leaks, which qemu-img check repairs, where retrying would
 * repeat the part of a multi-cluster range already applied and make
 * every later flush fail. The first error is returned.
 */
int qcow2_apply_deferred(struct qcow2 *q, struct list_head *list)
{
	struct qcow2_deferred *d, *tmp;
	int ret, first = 0;

	list_for_each_entry_safe(d, tmp, list, list) {
		ret = qcow2_update_refcount(q, d->offset, d->len, -1);
		if (ret) {
			qcow2_err(q, "leaking %llu bytes at %llu", d->len,
				  d->offset);
			first = first ?: ret;
		} else if (d->punch && range_refs_are(q, d->offset, d->len, 0)) {
			vfs_fallocate(q->file,
				      FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				      d->offset, d->len);
		}
		list_del(&d->list);
		mempool_free(d, q->deferred_pool);
		q->nr_deferred--;
		cond_resched();
	}
	return first;
}

/*
 * Under q->lock: keep the punch of a deferred free only where the
 * decrement will free the cluster. Nothing can take a reference to a
 * cluster that no L2 entry names any more, so the answer holds until
 * qcow2_apply_deferred(), and the hole may be punched without the lock
 * before that, while the refcount still keeps the cluster from being
 * handed out again. A merged range is punched only if every cluster in
 * it is freed (a cluster a snapshot shares keeps its data).
 */
void qcow2_deferred_check_punch(struct qcow2 *q, struct list_head *list)
{
	struct qcow2_deferred *d;

	list_for_each_entry(d, list, list)
		if (d->punch && !range_refs_are(q, d->offset, d->len, 1))
			d->punch = false;
}

/* Under q->lock, dropped for reads: load the blocks @list will update. */
void qcow2_deferred_prefetch(struct qcow2 *q, struct list_head *list)
{
	struct qcow2_deferred *d;
	u64 c, end;

	list_for_each_entry(d, list, list) {
		end = (d->offset + d->len - 1) >> q->cluster_bits;
		for (c = d->offset >> q->cluster_bits; c <= end;
		     c = ((c >> q->rb_bits) + 1) << q->rb_bits)
			qcow2_refblock_prefetch(q, c);
	}
}

/* Without q->lock: punch what qcow2_deferred_check_punch() kept. */
void qcow2_deferred_punch(struct qcow2 *q, struct list_head *list)
{
	struct qcow2_deferred *d;

	list_for_each_entry(d, list, list) {
		if (!d->punch)
			continue;
		vfs_fallocate(q->file, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      d->offset, d->len);
		d->punch = false;
		cond_resched();
	}
}

/* Count used and free clusters once at open; kept up to date afterwards. */
int qcow2_count_clusters(struct qcow2 *q)
{
	u64 end = q->alloc_end >> q->cluster_bits;
	u64 per = 1ULL << q->rb_bits;
	u64 idx, i, n, ref;
	struct qcow2_table *t;
	bool first_free = true;
	int ret;

	q->nr_allocated = 0;
	q->free_hint = end;
	for (idx = 0; idx < q->rt_entries && (idx << q->rb_bits) < end; idx++) {
		if (!q->rt[idx])
			continue;
		ret = qcow2_cache_get(q, &q->rbc, q->rt[idx] & ~QCOW2_RT_RESERVED,
				      false, &t);
		if (ret)
			return ret;
		n = min(per, end - (idx << q->rb_bits));
		cond_resched();
		for (i = 0; i < n; i++) {
			ref = rb_get(q, t->data, i);
			if (ref)
				q->nr_allocated++;
			else if (first_free) {
				q->free_hint = (idx << q->rb_bits) + i;
				first_free = false;
			}
		}
	}
	q->nr_free = end > q->nr_allocated ? end - q->nr_allocated : 0;
	return 0;
}
