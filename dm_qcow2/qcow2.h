/* SPDX-License-Identifier: GPL-2.0 */
/*
 * qcow2.h: in-memory state of one QCOW2 image opened by dm-qcow2.
 *
 * The format is QEMU's docs/interop/qcow2.txt. Every field read from the
 * image is treated as hostile: it is bounds-checked before use.
 */
#ifndef DM_QCOW2_H
#define DM_QCOW2_H

#include <linux/types.h>
#include <linux/fs.h>
#include <linux/mutex.h>
#include <linux/list.h>
#include <linux/wait.h>
#include <linux/uio.h>
#include <linux/ratelimit.h>
#include <linux/bvec.h>
#include <linux/spinlock.h>
#include <linux/mempool.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>
#include <linux/maple_tree.h>

#define DM_MSG_PREFIX "qcow2"

#define QCOW2_MAGIC		0x514649fbU	/* "QFI\xfb" */
#define QCOW2_HDR_V2_LEN	72
#define QCOW2_HDR_V3_LEN	104

/* The image header as stored (big-endian), in the first sector. */
struct qcow2_header {
	__be32 magic;
	__be32 version;
	__be64 backing_file_offset;
	__be32 backing_file_size;
	__be32 cluster_bits;
	__be64 size;			/* guest bytes */
	__be32 crypt_method;
	__be32 l1_size;			/* entries */
	__be64 l1_table_offset;
	__be64 refcount_table_offset;
	__be32 refcount_table_clusters;
	__be32 nb_snapshots;
	__be64 snapshots_offset;
	/* version 3 */
	__be64 incompatible_features;
	__be64 compatible_features;
	__be64 autoclear_features;
	__be32 refcount_order;
	__be32 header_length;
	/* when header_length > 104 */
	u8 compression_type;
	u8 padding[7];
} __packed;

#define QCOW2_INCOMPAT_DIRTY	(1ULL << 0)
#define QCOW2_INCOMPAT_CORRUPT	(1ULL << 1)
#define QCOW2_INCOMPAT_DATA_FILE (1ULL << 2)
#define QCOW2_INCOMPAT_COMPR	(1ULL << 3)
#define QCOW2_INCOMPAT_EXTL2	(1ULL << 4)
#define QCOW2_INCOMPAT_KNOWN	0x1fULL
#define QCOW2_AUTOCLEAR_BITMAPS	(1ULL << 0)
#define QCOW2_AUTOCLEAR_DATA_RAW (1ULL << 1)

#define QCOW2_EXT_END		0x00000000U
#define QCOW2_EXT_BACKING_FMT	0xe2792acaU
#define QCOW2_EXT_FEATURES	0x6803f857U
#define QCOW2_EXT_BITMAPS	0x23852875U
#define QCOW2_EXT_CRYPTO	0x0537be77U
#define QCOW2_EXT_DATA_FILE	0x44415441U

#define QCOW2_OFLAG_COPIED	(1ULL << 63)
#define QCOW2_OFLAG_COMPRESSED	(1ULL << 62)
#define QCOW2_OFLAG_ZERO	(1ULL << 0)
#define QCOW2_OFFSET_MASK	0x00fffffffffffe00ULL
#define QCOW2_L1_RESERVED	0x7f000000000001ffULL
#define QCOW2_L2_RESERVED	0x3f000000000001feULL
#define QCOW2_RT_RESERVED	0x00000000000001ffULL

#define QCOW2_MAX_L1_BYTES	(32U << 20)	/* as QEMU */
#define QCOW2_MAX_RT_BYTES	(8U << 20)	/* as QEMU */
#define QCOW2_SUBCLUSTERS	32

#define QCOW2_COMPR_DEFLATE	0
#define QCOW2_COMPR_ZSTD	1

/* What a guest range maps to, within one cluster. */
enum qcow2_kind {
	QC_UNALLOC,	/* backing file or zeros */
	QC_ZERO,	/* reads as zeros */
	QC_DATA,	/* host data at host offset */
	QC_COMPRESSED,	/* compressed cluster */
};

struct qcow2_map {
	enum qcow2_kind kind;
	u64 entry;	/* raw L2 entry (standard part) */
	u64 bitmap;	/* extended L2 bitmap, else 0 */
	u64 host;	/* host offset of the range start for QC_DATA */
	u32 len;	/* bytes from the request position with this kind */
	bool copied;	/* cluster (and its L2 table) writable in place */
	u8 epoch;	/* q->data_io counter that holds the range's I/O */
};

/* One cached metadata table: an L2 table or a refcount block. */
struct qcow2_table {
	struct hlist_node hnode;
	struct list_head lru;
	u64 offset;
	bool dirty;
	bool filled;	/* read by fill_unlocked, not looked up yet */
	u64 gen;	/* q->meta_gen when last made dirty */
	void *data;
};

#define QCOW2_CACHE_HBITS 8
struct qcow2_cache {
	struct hlist_head hash[1 << QCOW2_CACHE_HBITS];
	struct list_head lru;	/* most recently used first */
	unsigned int nr, max;
	bool is_l2;
	/*
	 * Bumped whenever a table is loaded, written or dropped: a table
	 * read from the file without q->lock (qcow2_cache_fill_unlocked)
	 * is only current if gen did not move during the read.
	 */
	u64 gen;
};

/*
 * A refcount decrement of a host range held back until the L2/L1 change
 * is durable. Adjacent ranges are merged as they are queued. Records come
 * from q->deferred_pool without sleeping (they are taken under q->lock in
 * the I/O path); once QCOW2_DEFERRED_MAX are held, the request path runs
 * a flush that applies them, so their memory stays bounded whatever the
 * guest discards.
 */
struct qcow2_deferred {
	struct list_head list;
	u64 offset, len;
	bool punch;
};

#define QCOW2_DEFERRED_MAX	512
#define QCOW2_DEFERRED_RESERVE	(QCOW2_DEFERRED_MAX + 128)

/* the slab cache of struct qcow2_deferred, for every image's mempool */
extern struct kmem_cache *qcow2_deferred_cache;

/* A persistent dirty bitmap tracked in memory (qcow2-bitmap.c). */
struct qcow2_bitmap {
	u32 dir_off;		/* its entry in q->bm_dir */
	u32 gran_bits;
	size_t bytes;		/* of bits: one per granule of the disk */
	u32 table_size;
	u64 table_offset;
	u64 *table;		/* CPU byte order */
	u8 *bits;		/* QEMU's layout: bit i is byte i / 8, 1 << i % 8 */
};

/*
 * A guest cluster whose allocation (or copy-on-write) is in flight, in
 * bucket hash_64(vcluster) of q->inflight; a write that finds its cluster
 * there sleeps on the bucket's own wait queue, so a leave wakes only the
 * writers of clusters that hash alike, not every waiting writer.
 */
#define QCOW2_INFLIGHT_BITS	6
struct qcow2_inflight {
	struct hlist_node node;
	u64 vcluster;
};

struct qcow2 {
	struct file *file;
	const char *path;
	bool ro;
	bool direct;
	/*
	 * Where data clusters live: the image itself, or the external data
	 * file the table names (ext_data). An external data file maps every
	 * guest cluster to the same offset in it, as QEMU does; its clusters
	 * are not refcounted, and the image can have neither compressed
	 * clusters nor internal snapshots. data_raw: the data file is also a
	 * raw image of the disk, kept so (discard leaves data in place).
	 */
	struct file *dfile;
	bool ddirect;
	bool ext_data;
	bool data_raw;
	struct qcow2 *parent;	/* the image this one backs, or NULL */

	/* header, validated */
	u32 version;
	u32 cluster_bits;
	u32 cluster_size;
	u64 size;			/* virtual size in bytes */
	u64 incompat, compat, autoclear;
	u32 header_length;
	u8 compression_type;
	u64 backing_name_offset;
	u32 backing_name_len;
	u32 nb_snapshots;
	u64 snapshots_offset;
	/*
	 * The snapshot table, validated at open and kept as read (raw, so
	 * unknown extra data survives a rewrite); snap_off[i] is where entry
	 * i starts, snap_off[nb_snapshots] the table length. Changed only by
	 * the snapshot messages, with q->lock held and guest I/O drained.
	 */
	u8 *snap_raw;
	u32 *snap_off;
	bool ext_l2;
	u32 l2_entry_shift;		/* 3 or 4 */
	u32 l2_bits;			/* log2 of entries per L2 table */
	u32 subc_bits;			/* log2 of subcluster size */
	u32 refcount_order;
	u32 rb_bits;			/* log2 of refcounts per block */
	u64 refcount_max;
	u32 csize_shift;
	u64 csize_mask;
	u64 coffset_mask;

	/* bitmaps extension */
	bool has_bitmaps;
	u32 nb_bitmaps;
	u64 bitmap_dir_offset, bitmap_dir_size;
	bool header_updated;		/* autoclear/bitmaps written once */
	/*
	 * Read-write images only: the directory as read (flags kept up to
	 * date) and the bitmaps tracked. bm_lock protects their bits; the
	 * rest changes at open, suspend and resume, with no request in
	 * flight, under q->lock.
	 */
	u8 *bm_dir;
	size_t bm_dir_bytes;
	struct qcow2_bitmap *bm;
	u32 nr_bm;
	size_t bm_mem;			/* bits and tables of bm[], bytes */
	spinlock_t bm_lock;
	bool bm_stored;			/* stored, in-use flags clear on disk */

	/* tables held in memory (CPU byte order), protected by lock */
	u32 l1_size;
	u64 l1_offset;
	u64 *l1;
	bool l1_dirty;
	u64 rt_offset;
	u32 rt_clusters;
	u64 rt_entries;
	u64 *rt;
	bool rt_dirty;
	bool rt_moved;			/* header must point at a new table */

	struct qcow2_cache l2c;
	struct qcow2_cache rbc;

	/*
	 * Metadata clusters a lookup checks data against (qcow2-overlap.c):
	 * L2 tables of the active L1 and refcount blocks in meta_xa,
	 * snapshot L1 tables and bitmap tables in meta_mt; changed under
	 * lock. meta_short: an insert failed for lack of memory.
	 */
	struct xarray meta_xa;
	struct maple_tree meta_mt;
	bool meta_short;

	/*
	 * lock protects: l1, rt, both caches, alloc_end, free_hint,
	 * nr_allocated/nr_free, inflight, deferred and the dirty flags.
	 */
	struct mutex lock;
	u64 alloc_end;			/* next append offset (cluster aligned) */
	u64 free_hint;			/* lowest cluster index maybe free */
	u64 nr_allocated, nr_free;
	struct hlist_head inflight[1 << QCOW2_INFLIGHT_BITS];
	wait_queue_head_t alloc_wq[1 << QCOW2_INFLIGHT_BITS];
	struct list_head deferred;
	/* records allocated, on q->deferred or taken by a flush (under lock) */
	unsigned int nr_deferred;
	mempool_t *deferred_pool;

	/*
	 * Data I/O to a host cluster that a lookup returned, counted from
	 * the lookup (under lock) to its completion in
	 * data_io[data_epoch at the lookup]. Before clusters are freed, the
	 * I/O of every lookup made before the L2 change that freed them
	 * must have completed, so that a cluster discarded while a write
	 * to it was in flight is neither punched nor handed to another
	 * guest cluster under that write. The locked flush sequence waits,
	 * holding lock, for both counts to reach zero. A flush request
	 * (qcow2_flush) instead switches data_epoch when it takes the
	 * deferred frees and waits without lock for the old count only:
	 * lookups after the switch cannot find those clusters. data_epoch
	 * changes under lock and flush_lock, and only once the other count
	 * is zero.
	 */
	atomic_t data_io[2];
	unsigned int data_epoch;
	wait_queue_head_t data_io_wq;

	/*
	 * A flush request (qcow2_flush) copies the dirty tables under lock
	 * and writes the copies without it; flush_lock serialises such
	 * flushes (taken before lock). meta_gen counts changes to metadata
	 * (a table's gen, l1_gen: the count when last made dirty), so that
	 * the flush cleans only what did not change after its copies.
	 * flush_writing is set while the copies are being written: every
	 * write of metadata under lock first waits for it to clear, as two
	 * writes in flight to one table could land in either order.
	 */
	struct mutex flush_lock;
	/*
	 * Flush requests that queue on flush_lock behind a running flush
	 * share the next one (qcow2_flush): flush_started counts flush
	 * sequences begun; flush_done is the number of the last one that
	 * ended and flush_done_ret its result (both under flush_lock).
	 */
	atomic64_t flush_started;
	u64 flush_done;
	int flush_done_ret;
	u64 meta_gen, l1_gen, rt_gen;
	bool flush_writing;
	wait_queue_head_t flush_wq;

	/* backing chain: a qcow2 image, or a raw file */
	struct qcow2 *bq;
	struct file *braw;

	/* decompression, serialised by zlock */
	struct mutex zlock;
	void *zws;
	void *zbuf;			/* decompressed cluster */
	void *cbuf;			/* compressed input */
	size_t cbuf_size;
	u64 zentry;			/* entry whose data zbuf holds, or 0 */

	/*
	 * The first write-back error (a failed fsync, a failed metadata
	 * write), or 0. Once set, writes, discards and flushes fail until
	 * the table is reloaded: pages whose write-back failed are clean
	 * again, so a later fsync would succeed without them, and a flush
	 * that then wrote L2 entries could point them at lost data.
	 */
	int wb_err;
	/*
	 * Damage found in the metadata while serving a request (an L2 entry
	 * beyond the file or over metadata, a missing refcount block):
	 * writes fail from then on, as after a write-back error, and
	 * corrupt_work sets the corrupt bit in the header, as QEMU does, so
	 * that nothing opens the image read-write before qemu-img check -r.
	 */
	unsigned long corrupt;		/* bit 0: damage seen */
	struct work_struct corrupt_work;

	atomic64_t hits, misses, errors;
	atomic64_t flushes, locked_flushes;	/* flush sequences run */
	struct ratelimit_state rs;
};

static inline u64 qcow2_cl_off(struct qcow2 *q, u64 pos)
{
	return pos & ((u64)q->cluster_size - 1);
}

static inline u64 qcow2_cl_align(struct qcow2 *q, u64 pos)
{
	return pos & ~((u64)q->cluster_size - 1);
}

/*
 * Host byte range of a compressed L2 entry: its offset, and the sector
 * count field (sectors spanned, minus one) less the start's misalignment.
 * Unchecked: the entry comes from the image.
 */
static inline void qcow2_compressed_range(struct qcow2 *q, u64 entry,
					  u64 *off, u64 *len)
{
	*off = entry & q->coffset_mask;
	*len = (((entry >> q->csize_shift) & q->csize_mask) + 1) * 512 -
	       (*off & 511);
}

void qcow2_err(struct qcow2 *q, const char *fmt, ...);
void qcow2_latch_error(struct qcow2 *q, int err);
__printf(2, 3) void qcow2_corrupt(struct qcow2 *q, const char *fmt, ...);

/* The latched write-back error (see q->wb_err), or 0. */
static inline int qcow2_wb_error(struct qcow2 *q)
{
	return READ_ONCE(q->wb_err);
}

/* qcow2-header.c */
int qcow2_open_image(struct qcow2 *q, const char *path,
		     const char *data_path, bool ro, char **error);
void qcow2_close_image(struct qcow2 *q);
void qcow2_set_cache_size(struct qcow2 *q, u64 bytes);
int qcow2_update_header_for_write(struct qcow2 *q);
struct qcow2_header *qcow2_header_read(struct qcow2 *q);
int qcow2_header_write(struct qcow2 *q, struct qcow2_header *h);
struct qcow2_kiter {
	struct iov_iter it;
	struct bio_vec *bv;
	struct bio_vec stack[4];
};

int qcow2_kiter_init(struct qcow2_kiter *ki, void *buf, size_t len,
		     bool write);
void qcow2_kiter_free(struct qcow2_kiter *ki);
ssize_t qcow2_write_all(struct file *f, struct iov_iter *it, loff_t *pos);
ssize_t qcow2_file_io(struct file *f, void *buf, size_t len, loff_t pos,
		      bool write);
int qcow2_file_rw(struct qcow2 *q, struct file *f, void *buf, size_t len,
		  loff_t pos, bool write);
u64 qcow2_file_size(struct file *f);
void *qcow2_alloc_buf(size_t len);

static inline bool qcow2_ranges_overlap(u64 a, u64 alen, u64 b, u64 blen)
{
	return a < b + blen && b < a + alen;
}

/* qcow2-overlap.c */
enum qcow2_meta {
	QCOW2_META_L2,
	QCOW2_META_REFBLOCK,
	QCOW2_META_SNAP_L1,
	QCOW2_META_BITMAP_TABLE,
};

void qcow2_meta_init(struct qcow2 *q);
void qcow2_meta_destroy(struct qcow2 *q);
int qcow2_meta_add(struct qcow2 *q, u64 off, enum qcow2_meta kind, gfp_t gfp);
void qcow2_meta_remove(struct qcow2 *q, u64 off);
int qcow2_meta_add_range(struct qcow2 *q, u64 off, u64 len,
			 enum qcow2_meta kind);
void qcow2_meta_remove_range(struct qcow2 *q, u64 off);
int qcow2_meta_index_tables(struct qcow2 *q);
bool qcow2_overlaps_meta(struct qcow2 *q, u64 off, u64 len);
const char *qcow2_overlap_what(struct qcow2 *q, u64 off, u64 len);
bool qcow2_overlaps_any(struct qcow2 *q, u64 off, u64 len);

/* qcow2-cache.c */
void qcow2_cache_init(struct qcow2_cache *c, unsigned int max, bool is_l2);
void qcow2_cache_destroy(struct qcow2_cache *c);
int qcow2_cache_get(struct qcow2 *q, struct qcow2_cache *c, u64 offset,
		    bool fresh, struct qcow2_table **out);
void qcow2_cache_mark_dirty(struct qcow2 *q, struct qcow2_table *t);
void qcow2_l1_mark_dirty(struct qcow2 *q);
int qcow2_cache_write_dirty(struct qcow2 *q, struct qcow2_cache *c);
bool qcow2_cache_cached(struct qcow2_cache *c, u64 offset);
void qcow2_cache_clean_tail(struct qcow2 *q);
void qcow2_cache_fill_unlocked(struct qcow2 *q, struct qcow2_cache *c,
			       u64 offset);
bool qcow2_cache_has_dirty(struct qcow2_cache *c);
int qcow2_flush_meta(struct qcow2 *q);
int qcow2_flush(struct qcow2 *q);

/* qcow2-refcount.c */
int qcow2_get_refcount(struct qcow2 *q, u64 cluster, u64 *ref);
void qcow2_refblock_prefetch(struct qcow2 *q, u64 cluster);
int qcow2_update_refcount(struct qcow2 *q, u64 offset, u64 len, int delta);
int qcow2_alloc_cluster(struct qcow2 *q, u64 *offset);
int qcow2_defer_free(struct qcow2 *q, u64 offset, u64 len, bool punch);
void qcow2_deferred_free_list(struct qcow2 *q, struct list_head *list);
int qcow2_deferred_bound(struct qcow2 *q);
int qcow2_apply_deferred(struct qcow2 *q, struct list_head *list);
void qcow2_deferred_check_punch(struct qcow2 *q, struct list_head *list);
void qcow2_deferred_punch(struct qcow2 *q, struct list_head *list);
void qcow2_deferred_prefetch(struct qcow2 *q, struct list_head *list);
int qcow2_count_clusters(struct qcow2 *q);

/* qcow2-io.c */
void qcow2_inflight_init(struct qcow2 *q);
bool qcow2_map_direct(struct qcow2 *q, u64 pos, u64 len, bool write,
		      bool nowait, u64 *host, u8 *epoch);
void qcow2_data_io_done(struct qcow2 *q, u8 epoch);
void qcow2_wait_data_io(struct qcow2 *q);
int qcow2_read(struct qcow2 *q, struct iov_iter *it, u64 pos, u64 len);
int qcow2_write(struct qcow2 *q, struct iov_iter *it, u64 pos, u64 len);
/* What qcow2_discard() does with the range. */
enum qcow2_unmap {
	QCOW2_DISCARD,		/* drop it (reads what the backing has, or zeros) */
	QCOW2_ZERO,		/* make it read zeros, freeing what it may */
	QCOW2_ZERO_KEEP,	/* read zeros, keep host clusters (REQ_NOUNMAP) */
};

int qcow2_discard(struct qcow2 *q, u64 pos, u64 len, enum qcow2_unmap how);

/* qcow2-snapshot.c */
int qcow2_snap_load(struct qcow2 *q, u64 fsize, char **error);
void qcow2_snap_free(struct qcow2 *q);
unsigned int qcow2_snapshot_list(struct qcow2 *q, char *result,
				 unsigned int maxlen);
int qcow2_snapshot_create(struct qcow2 *q, const char *tag);
int qcow2_snapshot_delete(struct qcow2 *q, const char *key);

/* qcow2-bitmap.c */
int qcow2_bitmaps_open(struct qcow2 *q);
void qcow2_bitmaps_free(struct qcow2 *q);
void qcow2_bitmaps_mark(struct qcow2 *q, u64 pos, u64 len);
int qcow2_bitmaps_store(struct qcow2 *q);
int qcow2_bitmaps_resume(struct qcow2 *q);
int qcow2_bitmaps_release(struct qcow2 *q);
unsigned int qcow2_bitmaps_list(struct qcow2 *q, char *result,
				unsigned int maxlen);

/* qcow2-compress.c */
int qcow2_decompress(struct qcow2 *q, u64 entry);
void qcow2_compress_free(struct qcow2 *q);

#endif /* DM_QCOW2_H */
