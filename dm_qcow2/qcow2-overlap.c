// SPDX-License-Identifier: GPL-2.0
/*
 * qcow2-overlap.c: may a host range named by an L2 entry hold guest data?
 *
 * QEMU refuses a write that would land on metadata (overlap-check). Here
 * the same question is asked of every host cluster a lookup returns and
 * of every cluster the allocator hands out, so that a damaged or hostile
 * image can neither show its metadata to the guest nor have it
 * overwritten by guest data:
 *
 *  - the header, the L1 table, the refcount table, the snapshot table and
 *    the bitmap directory are a few ranges held in struct qcow2;
 *  - L2 tables of the active L1 and refcount blocks are single clusters
 *    that come and go while the device runs: an xarray keyed by cluster
 *    number (meta_xa). Inserted without sleeping under q->lock; erasing
 *    never allocates, so a cluster leaves the index exactly when it stops
 *    being metadata and can never be reported falsely;
 *  - snapshot L1 tables and bitmap tables are ranges that change only on
 *    the control path: a maple tree (meta_mt).
 *
 * What is not indexed: L2 tables that only snapshots reference (QEMU's
 * "inactive L2", also left out of its default checks); they are checked
 * when a snapshot delete would release clusters (check_snap_delete()).
 */
#include <linux/xarray.h>
#include <linux/maple_tree.h>
#include "qcow2.h"

static const char * const meta_names[] = {
	[QCOW2_META_L2] = "in an L2 table",
	[QCOW2_META_REFBLOCK] = "in a refcount block",
	[QCOW2_META_SNAP_L1] = "in a snapshot L1 table",
	[QCOW2_META_BITMAP_TABLE] = "in a bitmap table",
};

void qcow2_meta_init(struct qcow2 *q)
{
	xa_init(&q->meta_xa);
	mt_init(&q->meta_mt);
}

void qcow2_meta_destroy(struct qcow2 *q)
{
	xa_destroy(&q->meta_xa);
	mtree_destroy(&q->meta_mt);
}

/*
 * Under q->lock: host cluster @off is now an L2 table or a refcount
 * block. @gfp is GFP_KERNEL at open and GFP_NOWAIT on the I/O path (the
 * lock is needed by every request). Only a failure at open is returned:
 * later, a cluster left out only makes the check weaker, never wrong.
 */
int qcow2_meta_add(struct qcow2 *q, u64 off, enum qcow2_meta kind, gfp_t gfp)
{
	void *old;

	old = xa_store(&q->meta_xa, off >> q->cluster_bits,
		       xa_mk_value(kind), gfp | __GFP_NOWARN);
	if (!xa_is_err(old))
		return 0;
	if (gfp == GFP_KERNEL)
		return xa_err(old);
	if (!q->meta_short) {
		q->meta_short = true;
		pr_warn_ratelimited("%s: %s: out of memory for the metadata index: overlap checks miss new tables until reload\n",
				    DM_MSG_PREFIX, q->path);
	}
	return 0;
}

/* Under q->lock: host cluster @off is no longer metadata. */
void qcow2_meta_remove(struct qcow2 *q, u64 off)
{
	xa_erase(&q->meta_xa, off >> q->cluster_bits);
}

/* Under q->lock, control path: [off, off + len) is a table of @kind. */
int qcow2_meta_add_range(struct qcow2 *q, u64 off, u64 len,
			 enum qcow2_meta kind)
{
	if (!len)
		return 0;
	return mtree_store_range(&q->meta_mt, off >> q->cluster_bits,
				 (off + len - 1) >> q->cluster_bits,
				 xa_mk_value(kind), GFP_KERNEL);
}

/* Under q->lock, control path: the table that starts at @off is gone. */
void qcow2_meta_remove_range(struct qcow2 *q, u64 off)
{
	mtree_erase(&q->meta_mt, off >> q->cluster_bits);
}

/*
 * Under q->lock: the kind of indexed metadata that [off, off + len)
 * touches, as a phrase for the log, or NULL.
 */
static const char *meta_indexed(struct qcow2 *q, u64 off, u64 len)
{
	unsigned long first = off >> q->cluster_bits;
	unsigned long last = (off + len - 1) >> q->cluster_bits;
	unsigned long i = first;
	void *e;

	if (!len)
		return NULL;
	e = xa_find(&q->meta_xa, &i, last, XA_PRESENT);
	if (!e && !mtree_empty(&q->meta_mt)) {
		i = first;
		e = mt_find(&q->meta_mt, &i, last);
	}
	if (!e || xa_to_value(e) >= ARRAY_SIZE(meta_names))
		return NULL;
	return meta_names[xa_to_value(e)];
}

/* Does [off, off + len) touch the header, the L1 table or the refcount table? */
bool qcow2_overlaps_meta(struct qcow2 *q, u64 off, u64 len)
{
	if (qcow2_ranges_overlap(off, len, 0, q->cluster_size))
		return true;
	if (q->l1_size &&
	    qcow2_ranges_overlap(off, len, q->l1_offset, (u64)q->l1_size * 8))
		return true;
	return qcow2_ranges_overlap(off, len, q->rt_offset,
				    (u64)q->rt_clusters << q->cluster_bits);
}

/*
 * Under q->lock: the metadata that [off, off + len) touches, as a phrase
 * for the log, or NULL if guest data may be there.
 */
const char *qcow2_overlap_what(struct qcow2 *q, u64 off, u64 len)
{
	if (qcow2_overlaps_meta(q, off, len))
		return "in the header, L1 or refcount table";
	if (q->nb_snapshots && q->snap_off &&
	    qcow2_ranges_overlap(off, len, q->snapshots_offset,
				 q->snap_off[q->nb_snapshots]))
		return "in the snapshot table";
	if (q->has_bitmaps &&
	    qcow2_ranges_overlap(off, len, q->bitmap_dir_offset,
				 q->bitmap_dir_size))
		return "in the bitmap directory";
	return meta_indexed(q, off, len);
}

bool qcow2_overlaps_any(struct qcow2 *q, u64 off, u64 len)
{
	return qcow2_overlap_what(q, off, len) != NULL;
}

/*
 * At open, under no lock yet (nothing else sees @q): index every L2
 * table of the active L1 and every refcount block. The entries were
 * checked by check_table_entries().
 */
int qcow2_meta_index_tables(struct qcow2 *q)
{
	u64 i, off;
	int ret;

	for (i = 0; i < q->l1_size; i++) {
		off = q->l1[i] & QCOW2_OFFSET_MASK;
		if (!off)
			continue;
		ret = qcow2_meta_add(q, off, QCOW2_META_L2, GFP_KERNEL);
		if (ret)
			return ret;
	}
	for (i = 0; i < q->rt_entries; i++) {
		off = q->rt[i] & ~QCOW2_RT_RESERVED;
		if (!off)
			continue;
		ret = qcow2_meta_add(q, off, QCOW2_META_REFBLOCK, GFP_KERNEL);
		if (ret)
			return ret;
	}
	return 0;
}
