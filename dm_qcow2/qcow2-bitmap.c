// SPDX-License-Identifier: GPL-2.0
/*
 * qcow2-bitmap.c: persistent dirty bitmaps (QEMU's "bitmaps" extension).
 *
 * A dirty bitmap holds one bit per `granularity` bytes of the guest disk,
 * set when the range was written since the bitmap was last cleared; an
 * incremental backup copies only the ranges whose bit is set. A bitmap
 * flagged "in use" on disk is inconsistent (its writer did not store it
 * back: a crash, or a writer that did not track) and QEMU refuses to use
 * it for anything but removal.
 *
 * dm-qcow2 does what QEMU does. At a read-write open every consistent,
 * enabled ("auto") dirty-tracking bitmap that passes validation is loaded
 * into memory, and marked in use on disk before the first guest write.
 * Every write, write-zeroes and discard sets the bits of its range
 * (qcow2_bitmaps_mark). At suspend, once the metadata is written back,
 * the bits go back to the image and the in-use flags are cleared
 * (qcow2_bitmaps_store): a suspended or detached device leaves bitmaps
 * that QEMU, qemu-img and a new table use as they are. A resume marks them
 * in use again before any write (qcow2_bitmaps_resume).
 *
 * Disabled bitmaps are never written: their content does not change with
 * guest writes. Enabled bitmaps that cannot be tracked (unknown flags,
 * extra data, too large, a table that does not check out) are marked in
 * use and left so: never silently wrong.
 *
 * Store ordering: while its in-use flag is set on disk a bitmap's content
 * means nothing to a reader, so its data clusters are rewritten in place;
 * a range that was all zeros (no cluster) gets a new cluster; refcounts
 * are flushed and the file fsynced; then the table (rewritten in place:
 * qemu-img check counts the references of a bitmap in use too, so it may
 * only point at clusters whose refcount is durable), fsync; only then the
 * directory with the flags cleared, fsync. A crash at any point leaves
 * every bitmap either in use or complete, at worst with a leaked cluster.
 * Clusters are only written in place if the image gives them a refcount
 * of exactly one, so a hostile table cannot make us overwrite a cluster
 * that a snapshot shares.
 *
 * The directory itself (bitmaps added, removed, cleared) is left to
 * qemu-img on a suspended or detached device: see qcow2-dm bitmap.
 */
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/ctype.h>
#include <linux/device-mapper.h>
#include <linux/sched.h>
#include "qcow2.h"
#include "compat.h"

#define BME_IN_USE		(1U << 0)
#define BME_AUTO		(1U << 1)
#define BME_EXTRA_COMPAT	(1U << 2)
#define BME_TYPE_DIRTY		1
#define BME_MIN_GRAN_BITS	9
#define BME_MAX_GRAN_BITS	31
#define BME_MAX_NAME		1023
#define BME_OFFSET_MASK		0x00fffffffffffe00ULL
#define BME_RESERVED		0xff000000000001feULL
#define BME_ALL_ONES		1ULL
#define BME_MAX_BYTES		(16U << 20)	/* bits of one bitmap in memory */
/*
 * Bits and tables of all tracked bitmaps of one image: a hostile image
 * with 65535 bitmaps of 16 MiB each must not take a terabyte of memory.
 */
#define BME_MAX_TOTAL		(64U << 20)
#define BME_MAX_DIR		(64U << 20)
#define BME_MAX_BITMAPS		65535		/* as QEMU */

/* Fields of the directory entry at @e (validated to fit before use). */
static u64 bme_table_offset(const u8 *e) { return get_unaligned_be64(e); }
static u32 bme_table_size(const u8 *e) { return get_unaligned_be32(e + 8); }
static u32 bme_flags(const u8 *e) { return get_unaligned_be32(e + 12); }
static u8 bme_type(const u8 *e) { return e[16]; }
static u8 bme_gran_bits(const u8 *e) { return e[17]; }
static u16 bme_name_len(const u8 *e) { return get_unaligned_be16(e + 18); }
static u32 bme_extra_len(const u8 *e) { return get_unaligned_be32(e + 20); }

static size_t bme_len(const u8 *e)
{
	return round_up(24 + (size_t)bme_extra_len(e) + bme_name_len(e), 8);
}

static const char *bme_name(const u8 *e)
{
	return (const char *)e + 24 + bme_extra_len(e);
}

/* Set bits [first, last] of a bitmap in QEMU's layout (LSB first). */
static void bits_set(u8 *b, u64 first, u64 last)
{
	u64 n;

	for (; first <= last && (first & 7); first++)
		b[first >> 3] |= 1 << (first & 7);
	if (first > last)
		return;
	n = (last - first + 1) >> 3;
	memset(b + (first >> 3), 0xff, n);
	for (first += n << 3; first <= last; first++)
		b[first >> 3] |= 1 << (first & 7);
}

/* Read the directory the header points at into q->bm_dir and check it. */
static int read_dir(struct qcow2 *q)
{
	u64 fsize = qcow2_file_size(q->file);
	size_t off = 0;
	u32 i;

	if (q->bitmap_dir_size > BME_MAX_DIR || q->bitmap_dir_size < 24 ||
	    q->bitmap_dir_offset % 512 || q->bitmap_dir_offset >= fsize ||
	    q->bitmap_dir_size > fsize - q->bitmap_dir_offset ||
	    q->nb_bitmaps > BME_MAX_BITMAPS ||
	    q->nb_bitmaps > q->bitmap_dir_size / 24) {
		qcow2_err(q, "bitmap directory invalid");
		return -EINVAL;
	}
	q->bm_dir_bytes = round_up(q->bitmap_dir_size, 512);
	q->bm_dir = qcow2_alloc_buf(q->bm_dir_bytes);
	if (!q->bm_dir)
		return -ENOMEM;
	/* the directory may end the file short of a whole sector */
	if (qcow2_file_io(q->file, q->bm_dir, q->bm_dir_bytes,
			  q->bitmap_dir_offset, false) <
	    (ssize_t)q->bitmap_dir_size) {
		qcow2_err(q, "cannot read the bitmap directory");
		return -EIO;
	}
	for (i = 0; i < q->nb_bitmaps; i++) {
		if (off + 24 > q->bitmap_dir_size ||
		    bme_len(q->bm_dir + off) > q->bitmap_dir_size - off) {
			qcow2_err(q, "bitmap directory entry %u truncated", i);
			return -EINVAL;
		}
		off += bme_len(q->bm_dir + off);
	}
	return 0;
}

/* Bytes of bits of a bitmap with granularity 1 << @gran of the disk. */
static u64 bits_bytes(struct qcow2 *q, u32 gran)
{
	return DIV_ROUND_UP(DIV_ROUND_UP(q->size, 1ULL << gran), 8);
}

/* Why the entry at @e cannot be tracked, or NULL if it can. */
static const char *untrackable(struct qcow2 *q, const u8 *e)
{
	u64 bytes, fsize = qcow2_file_size(q->file);
	u32 gran = bme_gran_bits(e);

	if (bme_flags(e) & ~(BME_IN_USE | BME_AUTO | BME_EXTRA_COMPAT))
		return "unknown flags";
	if (bme_type(e) != BME_TYPE_DIRTY)
		return "not a dirty tracking bitmap";
	if (gran < BME_MIN_GRAN_BITS || gran > BME_MAX_GRAN_BITS)
		return "granularity out of range";
	if (bme_extra_len(e))
		return "extra data";
	if (!bme_name_len(e) || bme_name_len(e) > BME_MAX_NAME)
		return "invalid name length";
	bytes = bits_bytes(q, gran);
	if (bytes > BME_MAX_BYTES)
		return "too large to track in memory";
	if (bme_table_size(e) != DIV_ROUND_UP(bytes, q->cluster_size))
		return "table size does not match the disk size";
	if (q->bm_mem + bytes + (u64)bme_table_size(e) * 8 > BME_MAX_TOTAL)
		return "the bitmaps tracked already take the 64 MiB allowed";
	if (!bme_table_offset(e) ||
	    qcow2_cl_off(q, bme_table_offset(e)) ||
	    bme_table_offset(e) >= fsize ||
	    (u64)bme_table_size(e) * 8 > fsize - bme_table_offset(e) ||
	    qcow2_overlaps_meta(q, bme_table_offset(e),
				(u64)bme_table_size(e) * 8))
		return "table outside the file or over metadata";
	return NULL;
}

/* Under q->lock: does the image give [@off, @off + @len) refcount 1? */
static bool owned_once(struct qcow2 *q, u64 off, u64 len)
{
	u64 c, ref;

	for (c = off >> q->cluster_bits;
	     c <= (off + len - 1) >> q->cluster_bits; c++)
		if (qcow2_get_refcount(q, c, &ref) || ref != 1)
			return false;
	return true;
}

/* Under q->lock: read the table and data clusters of @bm. */
static const char *load_bits(struct qcow2 *q, struct qcow2_bitmap *bm)
{
	u64 fsize = qcow2_file_size(q->file);
	size_t tbytes = round_up((size_t)bm->table_size * 8, 512);
	u8 *buf;
	u32 i;

	if (!owned_once(q, bm->table_offset, (u64)bm->table_size * 8))
		return "table cluster not owned by the bitmap";
	buf = qcow2_alloc_buf(max_t(size_t, tbytes, q->cluster_size));
	bm->table = kvcalloc(bm->table_size, sizeof(u64), GFP_KERNEL);
	bm->bits = kvzalloc(bm->bytes, GFP_KERNEL);
	if (!buf || !bm->table || !bm->bits) {
		kvfree(buf);
		return "out of memory";
	}
	if (qcow2_file_io(q->file, buf, tbytes, bm->table_offset, false) <
	    (ssize_t)bm->table_size * 8)
		goto io_error;
	for (i = 0; i < bm->table_size; i++)
		bm->table[i] = get_unaligned_be64(buf + (size_t)i * 8);
	for (i = 0; i < bm->table_size; i++) {
		u64 e = bm->table[i], off = e & BME_OFFSET_MASK;
		size_t at = (size_t)i << q->cluster_bits;
		size_t n = min_t(size_t, q->cluster_size, bm->bytes - at);

		if ((e & BME_RESERVED) || qcow2_cl_off(q, off) ||
		    (off && (e & BME_ALL_ONES)) || off >= fsize ||
		    (off && (qcow2_overlaps_meta(q, off, q->cluster_size) ||
			     !owned_once(q, off, q->cluster_size)))) {
			kvfree(buf);
			return "invalid table entry";
		}
		if (!off) {
			if (e & BME_ALL_ONES)
				memset(bm->bits + at, 0xff, n);
			continue;
		}
		if (qcow2_file_io(q->file, buf, q->cluster_size, off, false) <
		    (ssize_t)n)
			goto io_error;
		memcpy(bm->bits + at, buf, n);
	}
	kvfree(buf);
	return NULL;
io_error:
	kvfree(buf);
	return "read error";
}

/* Under q->lock: track the entry at dir offset @off if it can be. */
static void load_one(struct qcow2 *q, u32 off)
{
	const u8 *e = q->bm_dir + off;
	struct qcow2_bitmap *bm = &q->bm[q->nr_bm];
	const char *why = untrackable(q, e);

	if (!why) {
		memset(bm, 0, sizeof(*bm));
		bm->dir_off = off;
		bm->gran_bits = bme_gran_bits(e);
		bm->bytes = bits_bytes(q, bm->gran_bits);
		bm->table_size = bme_table_size(e);
		bm->table_offset = bme_table_offset(e);
		why = load_bits(q, bm);
		if (!why && qcow2_meta_add_range(q, bm->table_offset,
						 (u64)bm->table_size * 8,
						 QCOW2_META_BITMAP_TABLE))
			why = "out of memory";
		if (!why) {
			q->bm_mem += bm->bytes + (size_t)bm->table_size * 8;
			q->nr_bm++;
			return;
		}
		kvfree(bm->table);
		kvfree(bm->bits);
	}
	/* the name comes from the image: escaped */
	pr_warn_ratelimited("%s: %s: bitmap '%*pE' not tracked (%s): marked in use\n",
			    DM_MSG_PREFIX, q->path,
			    (int)min_t(u16, bme_name_len(e), 64), bme_name(e),
			    why);
}

/* Write the directory with the in-use flag of tracked bitmaps @in_use. */
static int write_dir(struct qcow2 *q, bool in_use)
{
	u32 i;
	int ret;

	for (i = 0; i < q->nr_bm; i++) {
		u8 *e = q->bm_dir + q->bm[i].dir_off;
		u32 flags = bme_flags(e) & ~BME_IN_USE;

		put_unaligned_be32(flags | (in_use ? BME_IN_USE : 0), e + 12);
	}
	ret = qcow2_file_rw(q, q->file, q->bm_dir, q->bm_dir_bytes,
			    q->bitmap_dir_offset, true);
	if (!ret)
		ret = vfs_fsync(q->file, 0);
	if (ret)
		qcow2_err(q, "cannot write the bitmap directory: %d", ret);
	return ret;
}

/*
 * At a read-write open, before any write: load what can be tracked and
 * mark every enabled bitmap in use (durably, as the caller fsyncs).
 */
int qcow2_bitmaps_open(struct qcow2 *q)
{
	size_t off = 0;
	u32 i;
	int ret;

	if (!q->nb_bitmaps)
		return 0;
	ret = read_dir(q);
	if (ret)
		return ret;
	q->bm = kvcalloc(q->nb_bitmaps, sizeof(*q->bm), GFP_KERNEL);
	if (!q->bm)
		return -ENOMEM;
	mutex_lock(&q->lock);
	for (i = 0; i < q->nb_bitmaps; i++, off += bme_len(q->bm_dir + off)) {
		u8 *e = q->bm_dir + off;
		u32 flags = bme_flags(e);

		if ((flags & BME_IN_USE) || !(flags & BME_AUTO))
			continue;	/* inconsistent already, or disabled */
		load_one(q, off);
		put_unaligned_be32(flags | BME_IN_USE, e + 12);
	}
	mutex_unlock(&q->lock);
	return write_dir(q, true);
}

void qcow2_bitmaps_free(struct qcow2 *q)
{
	u32 i;

	for (i = 0; i < q->nr_bm; i++) {
		kvfree(q->bm[i].table);
		kvfree(q->bm[i].bits);
	}
	kvfree(q->bm);
	q->bm = NULL;
	q->nr_bm = 0;
	q->bm_mem = 0;
	kvfree(q->bm_dir);
	q->bm_dir = NULL;
}

/* A guest write, write-zeroes or discard of [@pos, @pos + @len). */
void qcow2_bitmaps_mark(struct qcow2 *q, u64 pos, u64 len)
{
	u32 i;

	if (!q->nr_bm || !len || pos >= q->size)
		return;
	len = min(len, q->size - pos);
	spin_lock(&q->bm_lock);
	for (i = 0; i < q->nr_bm; i++) {
		struct qcow2_bitmap *bm = &q->bm[i];

		bits_set(bm->bits, pos >> bm->gran_bits,
			 (pos + len - 1) >> bm->gran_bits);
	}
	spin_unlock(&q->bm_lock);
}

/*
 * Under q->lock: the data clusters of @bm, in place, and new ones (their
 * refcount only in the cache yet) for ranges that had none.
 */
static int store_data(struct qcow2 *q, struct qcow2_bitmap *bm, u8 *buf)
{
	u32 i;
	int ret;

	for (i = 0; i < bm->table_size; i++) {
		size_t at = (size_t)i << q->cluster_bits;
		size_t n = min_t(size_t, q->cluster_size, bm->bytes - at);
		u64 off = bm->table[i] & BME_OFFSET_MASK;

		memset(buf, 0, q->cluster_size);
		spin_lock(&q->bm_lock);
		memcpy(buf, bm->bits + at, n);
		spin_unlock(&q->bm_lock);
		if (!off) {
			bm->table[i] = 0;
			if (!memchr_inv(buf, 0, n))
				continue;	/* stays a zero entry */
			ret = qcow2_alloc_cluster(q, &off);
			if (ret)
				return ret;
			bm->table[i] = off;
		}
		ret = qcow2_file_rw(q, q->file, buf, q->cluster_size, off,
				    true);
		if (ret)
			return ret;
	}
	return 0;
}

/* Under q->lock, once its new clusters are durable and owned: the table. */
static int store_table(struct qcow2 *q, struct qcow2_bitmap *bm)
{
	size_t tbytes = round_up((size_t)bm->table_size * 8, 512);
	u8 *tbuf = qcow2_alloc_buf(tbytes);
	u32 i;
	int ret;

	if (!tbuf)
		return -ENOMEM;
	for (i = 0; i < bm->table_size; i++)
		put_unaligned_be64(bm->table[i], tbuf + (size_t)i * 8);
	ret = qcow2_file_rw(q, q->file, tbuf, tbytes, bm->table_offset, true);
	kvfree(tbuf);
	return ret;
}

/* The bitmaps extension in the header cluster @hdr, or NULL. */
static const u8 *find_ext(struct qcow2 *q, const u8 *hdr)
{
	u32 off = q->version >= 3 ? q->header_length : QCOW2_HDR_V2_LEN;

	while (off + 8 <= q->cluster_size) {
		u32 type = get_unaligned_be32(hdr + off);
		u32 len = get_unaligned_be32(hdr + off + 4);

		if (type == QCOW2_EXT_END || len > q->cluster_size - off - 8)
			return NULL;
		if (type == QCOW2_EXT_BITMAPS && len >= 24)
			return hdr + off + 8;
		off += 8 + round_up(len, 8);
	}
	return NULL;
}

/*
 * Under q->lock: is the directory on disk still the one we loaded (but
 * for in-use flags)? qemu-img rewrites it, in new clusters, whenever it
 * opens the image read-write; a table that went on writing the one it
 * loaded would overwrite freed clusters. Our caller refuses then.
 */
static bool dir_unchanged(struct qcow2 *q)
{
	u8 *hdr = qcow2_alloc_buf(q->cluster_size);
	u8 *dir = qcow2_alloc_buf(q->bm_dir_bytes);
	const u8 *ext;
	bool same = false;
	size_t off = 0;
	u32 i;

	if (!hdr || !dir ||
	    qcow2_file_io(q->file, hdr, q->cluster_size, 0, false) < 512 ||
	    !(be64_to_cpu(((struct qcow2_header *)hdr)->autoclear_features) &
	      QCOW2_AUTOCLEAR_BITMAPS))
		goto out;
	ext = find_ext(q, hdr);
	if (!ext || get_unaligned_be32(ext) != q->nb_bitmaps ||
	    get_unaligned_be64(ext + 8) != q->bitmap_dir_size ||
	    get_unaligned_be64(ext + 16) != q->bitmap_dir_offset)
		goto out;
	if (qcow2_file_io(q->file, dir, q->bm_dir_bytes, q->bitmap_dir_offset,
			  false) < (ssize_t)q->bitmap_dir_size)
		goto out;
	for (i = 0; i < q->nb_bitmaps; i++, off += bme_len(q->bm_dir + off)) {
		u32 ours = bme_flags(q->bm_dir + off);
		u32 disk = get_unaligned_be32(dir + off + 12);

		put_unaligned_be32((disk & ~BME_IN_USE) | (ours & BME_IN_USE),
				   dir + off + 12);
	}
	same = !memcmp(dir, q->bm_dir, q->bitmap_dir_size);
out:
	kvfree(hdr);
	kvfree(dir);
	if (!same)
		qcow2_err(q, "the bitmap directory changed under the device: not writing it; load a new table");
	return same;
}

/*
 * At suspend, with no guest request in flight and the metadata written
 * back: store every tracked bitmap and clear its in-use flag.
 */
int qcow2_bitmaps_store(struct qcow2 *q)
{
	u8 *buf;
	u32 i;
	int ret = 0;

	if (!q->nr_bm || q->bm_stored)
		return 0;
	buf = qcow2_alloc_buf(q->cluster_size);
	if (!buf)
		return -ENOMEM;
	mutex_lock(&q->flush_lock);
	mutex_lock(&q->lock);
	if (!dir_unchanged(q))
		ret = -ESTALE;
	for (i = 0; i < q->nr_bm && !ret; i++)
		ret = store_data(q, &q->bm[i], buf);
	/*
	 * qemu-img check counts the references of bitmaps in use too: a
	 * table may only point at new clusters once their data and
	 * refcounts are durable (a crash in between leaks them).
	 */
	if (!ret)
		ret = qcow2_flush_meta(q);
	if (!ret)
		ret = vfs_fsync(q->file, 0);
	for (i = 0; i < q->nr_bm && !ret; i++)
		ret = store_table(q, &q->bm[i]);
	if (!ret)
		ret = vfs_fsync(q->file, 0);
	if (!ret)
		ret = write_dir(q, false);
	if (!ret)
		q->bm_stored = true;
	mutex_unlock(&q->lock);
	mutex_unlock(&q->flush_lock);
	kvfree(buf);
	if (ret)
		qcow2_err(q, "storing dirty bitmaps failed (%d): they stay in use",
			  ret);
	return ret;
}

/*
 * Flag the tracked bitmaps in use (@in_use) or stored, provided the
 * directory on disk is still the one this table loaded.
 */
static int flag_in_use(struct qcow2 *q, bool in_use)
{
	int ret;

	mutex_lock(&q->lock);
	ret = dir_unchanged(q) ? write_dir(q, in_use) : -ESTALE;
	if (!ret)
		q->bm_stored = !in_use;
	mutex_unlock(&q->lock);
	return ret;
}

/* Before a resume that may write: stored bitmaps are in use again. */
int qcow2_bitmaps_resume(struct qcow2 *q)
{
	return q->bm_stored ? flag_in_use(q, true) : 0;
}

/*
 * A table that never ran goes away: its bits are still what the disk
 * holds, so only the in-use flags that its open set are taken back.
 */
int qcow2_bitmaps_release(struct qcow2 *q)
{
	return q->nr_bm && !q->bm_stored ? flag_in_use(q, false) : 0;
}

static u64 dirty_bytes(struct qcow2 *q, struct qcow2_bitmap *bm)
{
	u64 set = 0;
	size_t i;

	for (i = 0; i < bm->bytes; i++) {
		if (!(i & 4095)) {
			if (i)
				spin_unlock(&q->bm_lock);
			cond_resched();
			spin_lock(&q->bm_lock);
		}
		set += hweight8(bm->bits[i]);
	}
	if (bm->bytes)
		spin_unlock(&q->bm_lock);
	return min(set << bm->gran_bits, q->size);
}

static struct qcow2_bitmap *tracked(struct qcow2 *q, size_t off)
{
	u32 i;

	for (i = 0; i < q->nr_bm; i++)
		if (q->bm[i].dir_off == off)
			return &q->bm[i];
	return NULL;
}

/*
 * "bitmap list": one line per bitmap of the image,
 *   NAME STATE granularity BYTES [dirty BYTES]
 * STATE: tracked (enabled, kept up to date), disabled (left as it is),
 * inconsistent (in use on disk: found so, or not trackable). Read-write
 * devices only: a read-only one does not look at bitmaps.
 */
unsigned int qcow2_bitmaps_list(struct qcow2 *q, char *result,
				unsigned int maxlen)
{
	unsigned int sz = 0;
	size_t off = 0;
	u32 i;

	*result = '\0';
	if (!q->bm_dir)
		return 0;
	for (i = 0; i < q->nb_bitmaps; i++, off += bme_len(q->bm_dir + off)) {
		const u8 *e = q->bm_dir + off;
		struct qcow2_bitmap *bm = tracked(q, off);
		const char *name = bme_name(e);
		const char *state = "inconsistent";
		u16 j;

		if (bm)
			state = "tracked";
		else if (!(bme_flags(e) & (BME_AUTO | BME_IN_USE)))
			state = "disabled";
		/* names come from the image: one word of printable bytes */
		for (j = 0; j < bme_name_len(e); j++)
			DMEMIT("%c", isgraph(name[j]) ? name[j] : '?');
		DMEMIT(" %s granularity %llu", state,
		       bme_gran_bits(e) < 64 ? 1ULL << bme_gran_bits(e) : 0);
		if (bm)
			DMEMIT(" dirty %llu", dirty_bytes(q, bm));
		DMEMIT("\n");
	}
	return sz;
}
