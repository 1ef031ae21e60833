// SPDX-License-Identifier: GPL-2.0
/*
 * qcow2-cache.c: write-back cache of L2 tables and refcount blocks, and
 * the flush sequence that makes metadata durable in a safe order.
 *
 * All functions here run with q->lock held; qcow2_cache_fill_unlocked()
 * drops it for the read. A caller may keep pointers to the three most
 * recently returned tables of a cache while it holds the lock: eviction
 * takes the least recently used entry and every cache holds at least four.
 */
#include <linux/slab.h>
#include <linux/hash.h>
#include "qcow2.h"
#include "compat.h"

void qcow2_cache_init(struct qcow2_cache *c, unsigned int max, bool is_l2)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(c->hash); i++)
		INIT_HLIST_HEAD(&c->hash[i]);
	INIT_LIST_HEAD(&c->lru);
	c->nr = 0;
	c->max = max;
	c->is_l2 = is_l2;
}

static void free_table(struct qcow2_cache *c, struct qcow2_table *t)
{
	hlist_del(&t->hnode);
	list_del(&t->lru);
	c->nr--;
	c->gen++;
	kvfree(t->data);
	kfree(t);
}

void qcow2_cache_destroy(struct qcow2_cache *c)
{
	struct qcow2_table *t, *tmp;

	list_for_each_entry_safe(t, tmp, &c->lru, lru)
		free_table(c, t);
}

static struct hlist_head *bucket(struct qcow2_cache *c, u64 offset)
{
	return &c->hash[hash_64(offset, QCOW2_CACHE_HBITS)];
}

static struct qcow2_table *find_table(struct qcow2_cache *c, u64 offset)
{
	struct qcow2_table *t;

	hlist_for_each_entry(t, bucket(c, offset), hnode)
		if (t->offset == offset)
			return t;
	return NULL;
}

static void insert_table(struct qcow2_cache *c, struct qcow2_table *t)
{
	hlist_add_head(&t->hnode, bucket(c, t->offset));
	list_add(&t->lru, &c->lru);
	c->nr++;
	c->gen++;
}

/*
 * Under q->lock, before writing metadata: let the copies that a flush
 * request is writing without the lock land first (see q->flush_writing).
 * That flush needs nothing under the lock until its writes are done.
 */
static void wait_flush_writes(struct qcow2 *q)
{
	lockdep_assert_held(&q->lock);
	wait_event(q->flush_wq, !READ_ONCE(q->flush_writing));
}

static int write_table(struct qcow2 *q, struct qcow2_cache *c,
		       struct qcow2_table *t)
{
	int ret;

	wait_flush_writes(q);
	c->gen++;
	ret = qcow2_file_rw(q, q->file, t->data, q->cluster_size, t->offset,
			   true);
	if (!ret)
		t->dirty = false;
	qcow2_latch_error(q, ret);
	return ret;
}

bool qcow2_cache_has_dirty(struct qcow2_cache *c)
{
	struct qcow2_table *t;

	list_for_each_entry(t, &c->lru, lru)
		if (t->dirty)
			return true;
	return false;
}

int qcow2_cache_write_dirty(struct qcow2 *q, struct qcow2_cache *c)
{
	struct qcow2_table *t;
	int ret;

	list_for_each_entry(t, &c->lru, lru) {
		if (!t->dirty)
			continue;
		ret = write_table(q, c, t);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * Make room for one more table. A dirty refcount block may be written at
 * any time (refcount decrements only reach the cache once the L2 change
 * is durable). A dirty L2 table may only be written after its data and
 * refcounts are durable: that is the whole flush sequence.
 */
static int evict_one(struct qcow2 *q, struct qcow2_cache *c)
{
	struct qcow2_table *t;
	int ret;

	t = list_last_entry(&c->lru, struct qcow2_table, lru);
	if (t->dirty) {
		ret = c->is_l2 ? qcow2_flush_meta(q) : write_table(q, c, t);
		if (ret)
			return ret;
	}
	free_table(c, t);
	return 0;
}

/*
 * Find the table at @offset, reading it on a miss (or zero-filling it if
 * @fresh: a table just allocated that has never been written).
 */
int qcow2_cache_get(struct qcow2 *q, struct qcow2_cache *c, u64 offset,
		    bool fresh, struct qcow2_table **out)
{
	struct qcow2_table *t;
	int ret;

	t = find_table(c, offset);
	if (t) {
		/* a freed table's cluster reused: drop the stale copy */
		if (fresh)
			memset(t->data, 0, q->cluster_size);
		list_move(&t->lru, &c->lru);
		/* the first lookup of a filled table is the miss */
		atomic64_inc(t->filled ? &q->misses : &q->hits);
		t->filled = false;
		*out = t;
		return 0;
	}
	atomic64_inc(&q->misses);
	while (c->nr >= c->max && c->nr) {
		ret = evict_one(q, c);
		if (ret)
			return ret;
	}
	t = kzalloc(sizeof(*t), GFP_KERNEL);
	if (!t)
		return -ENOMEM;
	t->data = qcow2_alloc_buf(q->cluster_size);
	if (!t->data) {
		kfree(t);
		return -ENOMEM;
	}
	t->offset = offset;
	if (!fresh) {
		/* the last table may end the file short of a cluster */
		ssize_t got = qcow2_file_io(q->file, t->data, q->cluster_size,
					    offset, false);

		ret = got > 0 ? 0 : -EIO;
		if (ret)
			qcow2_err(q, "reading table at %llu failed: %zd",
				  offset, got);
		if (ret) {
			kvfree(t->data);
			kfree(t);
			return ret;
		}
	}
	insert_table(c, t);
	*out = t;
	return 0;
}

bool qcow2_cache_cached(struct qcow2_cache *c, u64 offset)
{
	return find_table(c, offset);
}

/*
 * Called with q->lock held; drops it while it reads the table at @offset
 * from the file, so that a cache miss does not stall every other lookup
 * for the length of a read, and retakes it. The copy read is cached only
 * if no table of @c was loaded, written or dropped meanwhile (c->gen):
 * otherwise what the file holds at @offset may have changed under the
 * read, and the copy is dropped. Best effort: when it caches nothing, the
 * caller's qcow2_cache_get() reads the table under the lock as before.
 */
void qcow2_cache_fill_unlocked(struct qcow2 *q, struct qcow2_cache *c,
			       u64 offset)
{
	struct qcow2_table *t, *tail;
	u64 gen = c->gen;
	ssize_t got;
	void *buf;

	lockdep_assert_held(&q->lock);
	buf = qcow2_alloc_buf(q->cluster_size);
	t = kzalloc(sizeof(*t), GFP_KERNEL);
	if (!buf || !t)
		goto drop;
	mutex_unlock(&q->lock);
	/* the last table may end the file short of a cluster: zeros follow */
	got = qcow2_file_io(q->file, buf, q->cluster_size, offset, false);
	mutex_lock(&q->lock);
	if (got <= 0 || c->gen != gen || find_table(c, offset))
		goto drop;
	if (c->nr >= c->max) {
		/* room only from a clean table: writing one back is the flush */
		tail = list_last_entry(&c->lru, struct qcow2_table, lru);
		if (tail->dirty)
			goto drop;
		free_table(c, tail);
	}
	t->data = buf;
	t->offset = offset;
	t->filled = true;
	insert_table(c, t);
	return;
drop:
	kfree(t);
	kvfree(buf);
}

void qcow2_cache_mark_dirty(struct qcow2 *q, struct qcow2_table *t)
{
	t->dirty = true;
	t->gen = ++q->meta_gen;
}

void qcow2_l1_mark_dirty(struct qcow2 *q)
{
	q->l1_dirty = true;
	q->l1_gen = ++q->meta_gen;
}

/* Write an in-memory u64 table back in big-endian, whole 512 B sectors. */
static int write_u64_table(struct qcow2 *q, u64 *tab, u64 entries,
			   u64 offset)
{
	size_t bytes = round_up(entries * 8, 512);
	__be64 *raw;
	u64 i;
	int ret;

	raw = qcow2_alloc_buf(bytes);
	if (!raw)
		return -ENOMEM;
	/* keep whatever follows the table in its last sector */
	if (bytes != entries * 8) {
		ret = qcow2_file_rw(q, q->file, raw, bytes, offset, false);
		if (ret)
			goto out;
	}
	for (i = 0; i < entries; i++)
		raw[i] = cpu_to_be64(tab[i]);
	ret = qcow2_file_rw(q, q->file, raw, bytes, offset, true);
	qcow2_latch_error(q, ret);
out:
	kvfree(raw);
	return ret;
}

/* Point the header at a grown refcount table. */
static int write_rt_header(struct qcow2 *q)
{
	struct qcow2_header *h = qcow2_header_read(q);

	if (IS_ERR(h))
		return PTR_ERR(h);
	h->refcount_table_offset = cpu_to_be64(q->rt_offset);
	h->refcount_table_clusters = cpu_to_be32(q->rt_clusters);
	return qcow2_header_write(q, h);
}

/*
 * A failed fsync is latched whatever its errno (-ENOSPC included: delayed
 * allocation lost the data): the pages it could not write are clean now.
 */
static int sync_failed(struct qcow2 *q, int ret)
{
	if (ret == -ENOSPC || ret == -ENOMEM)
		ret = -EIO;
	qcow2_latch_error(q, ret);
	return ret;
}

static int sync_file(struct qcow2 *q)
{
	int ret = vfs_fsync(q->file, 0);

	if (ret) {
		qcow2_err(q, "fsync failed: %d", ret);
		ret = sync_failed(q, ret);
	}
	return ret;
}

/*
 * Step 1's fsync: an external data file too, first, as the L2 tables
 * written after it may point at its clusters. Later steps write only
 * metadata that points at metadata.
 */
static int sync_data_and_file(struct qcow2 *q)
{
	int ret = 0;

	/* NULL in a constructor that failed before opening it */
	if (q->dfile && q->dfile != q->file) {
		ret = vfs_fsync(q->dfile, 0);
		if (ret) {
			qcow2_err(q, "fsync of the data file failed: %d", ret);
			ret = sync_failed(q, ret);
		}
	}
	return ret ?: sync_file(q);
}

struct flush_set;
static int write_back(struct qcow2 *q, struct flush_set *fs);

/*
 * The flush sequence. Each step only makes durable what points at things
 * an earlier step (and its fsync) made durable:
 *   1. refcount blocks (increments for new clusters), then fsync: data
 *      written by completed requests becomes durable with them;
 *   2. refcount table entries for new refcount blocks, fsync;
 *   3. L2 tables, fsync;
 *   4. L1 table (entries for new L2 tables), fsync;
 *   5. only now, and once no data I/O looked up before is in flight
 *      (q->data_io), refcount decrements of clusters no longer referenced
 *      (copy-on-write, discard) reach the refcount blocks, written, fsync.
 * A crash between steps leaves at worst leaked clusters.
 */
int qcow2_flush_meta(struct qcow2 *q)
{
	int ret;

	if (q->ro)
		return 0;
	atomic64_inc(&q->flushes);
	atomic64_inc(&q->locked_flushes);
	wait_flush_writes(q);
	ret = write_back(q, NULL);
	if (!ret && !list_empty(&q->deferred)) {
		/* no write still in flight to a cluster about to be freed */
		qcow2_wait_data_io(q);
		ret = qcow2_apply_deferred(q, &q->deferred);
		if (!ret)
			ret = qcow2_cache_write_dirty(q, &q->rbc);
		if (!ret)
			ret = sync_file(q);
	}
	return ret;
}

/*
 * A flush request without q->lock held across its I/O: the same sequence
 * (write_back()) as qcow2_flush_meta(), written from copies of the dirty
 * tables (and of the refcount and L1 tables) taken at one instant under
 * the lock. At that instant the copies are consistent: an allocation updates the refcount before the L2
 * entry, both under the lock, and an L2 entry names new data only once
 * that data's write has completed, so the first fsync, issued after the
 * copies were taken, makes that data durable. A table is marked clean
 * afterwards only if it did not change since its copy (its gen); a failed
 * write leaves everything dirty.
 *
 * The deferred frees are taken with the copies, and the data I/O epoch is
 * switched (see q->data_io): once the copies are durable and the I/O of
 * the old epoch has drained, the frees are applied (step 5) and the
 * refcount blocks they changed are written from copies again.
 *
 * A refcount table that grew and moved (the header must point at it) is
 * rare and takes the locked sequence, as does a flush with more dirty
 * tables than QCOW2_FLUSH_COPY_BYTES would copy.
 */
#define QCOW2_FLUSH_COPY_BYTES	(16U << 20)

struct flush_copy {
	struct list_head list;
	u64 offset;
	void *buf;
};

struct flush_set {
	struct list_head rb, l2;	/* struct flush_copy */
	u64 *rt;			/* copy of q->rt, or NULL */
	u64 rt_entries, rt_offset;
	u64 *l1;			/* copy of q->l1, or NULL */
	u64 gen;			/* q->meta_gen when copied */
	struct list_head deferred;	/* frees taken from q->deferred */
	unsigned int epoch;		/* data I/O epoch they wait for */
};

static void flush_set_init(struct flush_set *fs)
{
	INIT_LIST_HEAD(&fs->rb);
	INIT_LIST_HEAD(&fs->l2);
	INIT_LIST_HEAD(&fs->deferred);
	fs->rt = NULL;
	fs->l1 = NULL;
}

/* Frees the copies; fs->deferred must have been emptied. */
static void flush_set_free(struct flush_set *fs)
{
	struct flush_copy *fc, *tmp;
	struct list_head *lists[] = { &fs->rb, &fs->l2 };
	int i;

	for (i = 0; i < ARRAY_SIZE(lists); i++) {
		list_for_each_entry_safe(fc, tmp, lists[i], list) {
			list_del(&fc->list);
			kvfree(fc->buf);
			kfree(fc);
		}
	}
	kvfree(fs->rt);
	fs->rt = NULL;
	kvfree(fs->l1);
	fs->l1 = NULL;
}

static unsigned int flush_budget(struct qcow2 *q)
{
	return max(4U, QCOW2_FLUSH_COPY_BYTES >> q->cluster_bits);
}

/* Under q->lock: copy the dirty tables of @c into @out; -E2BIG over budget. */
static int copy_dirty(struct qcow2 *q, struct qcow2_cache *c,
		      struct list_head *out, unsigned int *budget)
{
	struct flush_copy *fc;
	struct qcow2_table *t;

	list_for_each_entry(t, &c->lru, lru) {
		if (!t->dirty)
			continue;
		if (!*budget)
			return -E2BIG;
		(*budget)--;
		fc = kmalloc(sizeof(*fc), GFP_KERNEL);
		if (!fc)
			return -ENOMEM;
		fc->buf = qcow2_alloc_buf(q->cluster_size);
		if (!fc->buf) {
			kfree(fc);
			return -ENOMEM;
		}
		memcpy(fc->buf, t->data, q->cluster_size);
		fc->offset = t->offset;
		list_add_tail(&fc->list, out);
	}
	return 0;
}

static u64 *copy_u64_table(const u64 *tab, u64 entries)
{
	u64 *copy = kvmalloc_array(entries, sizeof(u64), GFP_KERNEL);

	if (copy)
		memcpy(copy, tab, entries * sizeof(u64));
	return copy;
}

/* Under q->lock: 0 with @fs filled, or nonzero to take the locked path. */
static int flush_copy_all(struct qcow2 *q, struct flush_set *fs)
{
	unsigned int budget = flush_budget(q);
	int ret;

	if (q->rt_moved)
		return 1;
	ret = copy_dirty(q, &q->rbc, &fs->rb, &budget);
	if (!ret)
		ret = copy_dirty(q, &q->l2c, &fs->l2, &budget);
	if (!ret && q->rt_dirty) {
		fs->rt = copy_u64_table(q->rt, q->rt_entries);
		fs->rt_entries = q->rt_entries;
		fs->rt_offset = q->rt_offset;
		if (!fs->rt)
			ret = -ENOMEM;
	}
	if (!ret && q->l1_dirty) {
		fs->l1 = copy_u64_table(q->l1, q->l1_size);
		if (!fs->l1)
			ret = -ENOMEM;
	}
	fs->gen = q->meta_gen;
	if (!ret && !list_empty(&q->deferred)) {
		/* lookups from now on cannot find these clusters */
		list_splice_init(&q->deferred, &fs->deferred);
		fs->epoch = q->data_epoch;
		q->data_epoch ^= 1;
	}
	return ret;
}

static int write_copies(struct qcow2 *q, struct list_head *copies)
{
	struct flush_copy *fc;
	int ret;

	list_for_each_entry(fc, copies, list) {
		ret = qcow2_file_rw(q, q->file, fc->buf, q->cluster_size,
				    fc->offset, true);
		if (ret) {
			qcow2_latch_error(q, ret);
			return ret;
		}
	}
	return 0;
}

/* Step 2: the refcount table (and the header, if the table moved). */
static int write_back_rt(struct qcow2 *q, struct flush_set *fs)
{
	int ret;

	if (fs) {
		if (!fs->rt)
			return 0;
		ret = write_u64_table(q, fs->rt, fs->rt_entries, fs->rt_offset);
		return ret ? ret : sync_file(q);
	}
	if (!q->rt_dirty)
		return 0;
	ret = write_u64_table(q, q->rt, q->rt_entries, q->rt_offset);
	if (!ret)
		ret = sync_file(q);
	if (!ret && q->rt_moved) {
		ret = write_rt_header(q);
		if (!ret)
			ret = sync_file(q);
		if (!ret)
			q->rt_moved = false;
	}
	if (!ret)
		q->rt_dirty = false;
	return ret;
}

/* Step 3: the L2 tables. */
static int write_back_l2(struct qcow2 *q, struct flush_set *fs)
{
	int ret;

	if (fs ? list_empty(&fs->l2) : !qcow2_cache_has_dirty(&q->l2c))
		return 0;
	ret = fs ? write_copies(q, &fs->l2) : qcow2_cache_write_dirty(q, &q->l2c);
	return ret ? ret : sync_file(q);
}

/* Step 4: the L1 table. */
static int write_back_l1(struct qcow2 *q, struct flush_set *fs)
{
	int ret;

	if (fs ? !fs->l1 : !q->l1_dirty)
		return 0;
	ret = write_u64_table(q, fs ? fs->l1 : q->l1, q->l1_size, q->l1_offset);
	if (!ret)
		ret = sync_file(q);
	if (!ret && !fs)
		q->l1_dirty = false;
	return ret;
}

/*
 * Steps 1 to 4 of the flush sequence, the one place that orders them:
 * from the live tables, holding q->lock, when @fs is NULL (each is clean
 * once written); from the copies in @fs without q->lock otherwise (the
 * caller cleans what did not change since).
 */
static int write_back(struct qcow2 *q, struct flush_set *fs)
{
	int ret;

	ret = fs ? write_copies(q, &fs->rb) : qcow2_cache_write_dirty(q, &q->rbc);
	if (!ret)
		ret = sync_data_and_file(q);
	if (!ret)
		ret = write_back_rt(q, fs);
	if (!ret)
		ret = write_back_l2(q, fs);
	if (!ret)
		ret = write_back_l1(q, fs);
	return ret;
}

/* Under q->lock: clean what is durable now and did not change since. */
static void flush_mark_clean(struct qcow2 *q, struct qcow2_cache *c,
			     struct list_head *copies, u64 gen)
{
	struct flush_copy *fc;
	struct qcow2_table *t;

	list_for_each_entry(fc, copies, list) {
		t = find_table(c, fc->offset);
		if (t && t->dirty && t->gen <= gen)
			t->dirty = false;
	}
}

/*
 * Called with q->lock held: write the copies in @fs without it, with
 * q->flush_writing set, and clean what they made durable. Returns with
 * the lock held.
 */
static int flush_write_unlocked(struct qcow2 *q, struct flush_set *fs)
{
	int ret;

	WRITE_ONCE(q->flush_writing, true);
	mutex_unlock(&q->lock);
	ret = write_back(q, fs);
	WRITE_ONCE(q->flush_writing, false);
	wake_up_all(&q->flush_wq);
	mutex_lock(&q->lock);
	if (!ret) {
		flush_mark_clean(q, &q->rbc, &fs->rb, fs->gen);
		flush_mark_clean(q, &q->l2c, &fs->l2, fs->gen);
		if (fs->rt && q->rt_dirty && !q->rt_moved &&
		    q->rt_gen <= fs->gen)
			q->rt_dirty = false;
		if (fs->l1 && q->l1_dirty && q->l1_gen <= fs->gen)
			q->l1_dirty = false;
	}
	flush_set_free(fs);
	return ret;
}

/*
 * Step 5 for the frees in fs->deferred, whose L2/L1 changes are durable:
 * wait without q->lock for the data I/O of the lookups made before they
 * were taken, punch the clusters they free, apply the decrements, and
 * write the refcount blocks (from copies when they fit the budget).
 */
static int flush_free_deferred(struct qcow2 *q, struct flush_set *fs)
{
	unsigned int budget = flush_budget(q);
	int ret;

	wait_event(q->data_io_wq, !atomic_read(&q->data_io[fs->epoch]));
	mutex_lock(&q->lock);
	qcow2_deferred_prefetch(q, &fs->deferred);
	qcow2_deferred_check_punch(q, &fs->deferred);
	mutex_unlock(&q->lock);
	qcow2_deferred_punch(q, &fs->deferred);

	mutex_lock(&q->lock);
	ret = qcow2_apply_deferred(q, &fs->deferred);
	if (!ret)
		ret = copy_dirty(q, &q->rbc, &fs->rb, &budget);
	fs->gen = q->meta_gen;
	if (!ret) {
		ret = flush_write_unlocked(q, fs);
	} else if (ret == -E2BIG || ret == -ENOMEM) {
		flush_set_free(fs);
		wait_flush_writes(q);
		ret = qcow2_cache_write_dirty(q, &q->rbc);
		if (!ret)
			ret = sync_file(q);
	}
	mutex_unlock(&q->lock);
	return ret;
}

/* The data I/O of the old epoch drains whatever happened: see data_io. */
static void flush_put_back_deferred(struct qcow2 *q, struct flush_set *fs)
{
	if (list_empty(&fs->deferred))
		return;
	wait_event(q->data_io_wq, !atomic_read(&q->data_io[fs->epoch]));
	mutex_lock(&q->lock);
	list_splice_init(&fs->deferred, &q->deferred);
	mutex_unlock(&q->lock);
}

/* Called with flush_lock and q->lock held; returns without q->lock. */
static int flush_unlocked(struct qcow2 *q)
{
	struct flush_set fs;
	int ret;

	flush_set_init(&fs);
	ret = flush_copy_all(q, &fs);
	if (ret) {
		/* a moved refcount table, too many dirty tables, no memory */
		flush_set_free(&fs);
		ret = qcow2_flush_meta(q);
		mutex_unlock(&q->lock);
		return ret;
	}
	atomic64_inc(&q->flushes);
	ret = flush_write_unlocked(q, &fs);
	mutex_unlock(&q->lock);
	if (ret)
		flush_put_back_deferred(q, &fs);
	else if (!list_empty(&fs.deferred))
		ret = flush_free_deferred(q, &fs);
	return ret;
}

/*
 * A flush request covers the writes that completed before it was
 * submitted. Their table updates were made under q->lock before they
 * completed, so any flush sequence that begins after this request read
 * flush_started copies the tables (under q->lock) with those updates in:
 * once one such sequence succeeded, the request is done. Requests that
 * queue behind a running flush thus share the next one instead of each
 * running its own.
 */
int qcow2_flush(struct qcow2 *q)
{
	u64 seen, seq;
	int ret;

	if (q->ro)
		return 0;
	ret = qcow2_wb_error(q);
	if (ret)
		return ret;
	smp_mb();	/* the writes' completion before the read of the count */
	seen = atomic64_read(&q->flush_started);
	mutex_lock(&q->flush_lock);
	if (q->flush_done > seen && !q->flush_done_ret) {
		mutex_unlock(&q->flush_lock);
		return 0;
	}
	seq = atomic64_inc_return(&q->flush_started);
	mutex_lock(&q->lock);
	ret = flush_unlocked(q);
	q->flush_done = seq;
	q->flush_done_ret = ret;
	mutex_unlock(&q->flush_lock);
	return ret;
}

/* Under q->lock: would loading two more tables evict a dirty one? */
static bool tail_dirty(struct qcow2 *q)
{
	struct qcow2_cache *caches[] = { &q->l2c, &q->rbc };
	struct qcow2_table *t;
	int i, n;

	for (i = 0; i < ARRAY_SIZE(caches); i++) {
		if (caches[i]->nr + 2 <= caches[i]->max)
			continue;
		n = 0;
		list_for_each_entry_reverse(t, &caches[i]->lru, lru) {
			if (t->dirty)
				return true;
			if (++n == 2)
				break;
		}
	}
	return false;
}

/*
 * Called with q->lock held and no data I/O reference, before a lookup or
 * a metadata change that may load tables: when loading two more would
 * evict a dirty table, write the dirty tables now as a flush request
 * does, holding q->lock only to copy them, rather than let the eviction
 * write them under the lock (for an L2 table: the whole flush sequence).
 * Best effort: the eviction still does that if the table is dirty again.
 * Returns with q->lock held.
 */
void qcow2_cache_clean_tail(struct qcow2 *q)
{
	lockdep_assert_held(&q->lock);
	if (q->ro || !tail_dirty(q))
		return;
	mutex_unlock(&q->lock);
	mutex_lock(&q->flush_lock);
	mutex_lock(&q->lock);
	/* a flush that held flush_lock meanwhile may have done it */
	if (tail_dirty(q))
		flush_unlocked(q);
	else
		mutex_unlock(&q->lock);
	mutex_unlock(&q->flush_lock);
	mutex_lock(&q->lock);
}
