// SPDX-License-Identifier: GPL-2.0
/*
 * qcow2-header.c: open an image file, parse and validate its header,
 * extensions, L1 table and refcount table before the device goes live.
 * Also the low-level file I/O helpers shared by the other files.
 */
#include <linux/slab.h>
#include <linux/mm.h>
#include <linux/vmalloc.h>
#include <linux/log2.h>
#include <linux/bvec.h>
#include <linux/blkdev.h>
#include <linux/device-mapper.h>
#include <linux/sched/mm.h>
#include "qcow2.h"
#include "compat.h"

void qcow2_err(struct qcow2 *q, const char *fmt, ...)
{
	struct va_format vaf;
	va_list args;

	atomic64_inc(&q->errors);
	if (!__ratelimit(&q->rs))
		return;
	va_start(args, fmt);
	vaf.fmt = fmt;
	vaf.va = &args;
	pr_err("%s: %s: %pV\n", DM_MSG_PREFIX, q->path, &vaf);
	va_end(args);
}

/*
 * Latch the first write-back error @err (see q->wb_err). Running out of
 * space while writing metadata is not one: nothing was accepted, and the
 * write is tried again later.
 */
void qcow2_latch_error(struct qcow2 *q, int err)
{
	if (err == -ENOSPC || err == -ENOMEM || err >= 0)
		return;
	if (!cmpxchg(&q->wb_err, 0, err))
		pr_err("%s: %s: write-back error %d: writes and flushes fail until the table is reloaded\n",
		       DM_MSG_PREFIX, q->path, err);
}

/*
 * The header's first sector, for a read-modify-write under q->lock (every
 * header update is one: the corrupt bit, the refcount table, the snapshot
 * table, the autoclear bits). qcow2_header_write() writes it and frees it.
 */
static_assert(offsetof(struct qcow2_header, incompatible_features) ==
	      QCOW2_HDR_V2_LEN);
static_assert(offsetof(struct qcow2_header, compression_type) ==
	      QCOW2_HDR_V3_LEN);

struct qcow2_header *qcow2_header_read(struct qcow2 *q)
{
	struct qcow2_header *h = qcow2_alloc_buf(512);
	int ret;

	if (!h)
		return ERR_PTR(-ENOMEM);
	ret = qcow2_file_rw(q, q->file, h, 512, 0, false);
	if (ret) {
		kvfree(h);
		return ERR_PTR(ret);
	}
	return h;
}

int qcow2_header_write(struct qcow2 *q, struct qcow2_header *h)
{
	int ret = qcow2_file_rw(q, q->file, h, 512, 0, true);

	kvfree(h);
	return ret;
}

/* Set the corrupt bit (incompatible feature bit 1) in a v3 header. */
static void mark_corrupt(struct work_struct *work)
{
	struct qcow2 *q = container_of(work, struct qcow2, corrupt_work);
	unsigned int noio = memalloc_noio_save();
	struct qcow2_header *h;
	int ret;

	/* q->lock: other header writes (refcount table growth) read-modify-write too */
	mutex_lock(&q->lock);
	h = qcow2_header_read(q);
	ret = PTR_ERR_OR_ZERO(h);
	if (!ret) {
		h->incompatible_features |= cpu_to_be64(QCOW2_INCOMPAT_CORRUPT);
		ret = qcow2_header_write(q, h);
	}
	mutex_unlock(&q->lock);
	if (!ret)
		ret = vfs_fsync(q->file, 0);
	if (ret)
		pr_err("%s: %s: cannot set the corrupt bit: %d\n", DM_MSG_PREFIX,
		       q->path, ret);
	memalloc_noio_restore(noio);
}

/*
 * Damage in the image's metadata, found while serving a request: log it
 * as qcow2_err() does and, the first time, stop every write (see
 * q->corrupt). Reads of undamaged ranges go on.
 */
void qcow2_corrupt(struct qcow2 *q, const char *fmt, ...)
{
	struct va_format vaf;
	va_list args;

	atomic64_inc(&q->errors);
	if (__ratelimit(&q->rs)) {
		va_start(args, fmt);
		vaf.fmt = fmt;
		vaf.va = &args;
		pr_err("%s: %s: %pV\n", DM_MSG_PREFIX, q->path, &vaf);
		va_end(args);
	}
	if (q->ro || test_and_set_bit(0, &q->corrupt))
		return;
	cmpxchg(&q->wb_err, 0, -EIO);
	pr_err("%s: %s: image marked corrupt: writes fail; repair it with 'qemu-img check -r all' once detached\n",
	       DM_MSG_PREFIX, q->path);
	if (q->version >= 3)
		schedule_work(&q->corrupt_work);
}

/* Buffers for file I/O: aligned to their (power of two) size up to a page. */
void *qcow2_alloc_buf(size_t len)
{
	return kvzalloc(roundup_pow_of_two(max_t(size_t, len, 512)),
			GFP_KERNEL);
}

u64 qcow2_file_size(struct file *f)
{
	return i_size_read(file_inode(f));
}

/* A bvec iterator over a kernel buffer (kmalloc or vmalloc memory). */
int qcow2_kiter_init(struct qcow2_kiter *ki, void *buf, size_t len,
		     bool write)
{
	unsigned int nr = DIV_ROUND_UP(offset_in_page(buf) + len, PAGE_SIZE);
	size_t done = 0;
	unsigned int i;

	ki->bv = ki->stack;
	if (nr > ARRAY_SIZE(ki->stack)) {
		ki->bv = kvmalloc_array(nr, sizeof(*ki->bv), GFP_KERNEL);
		if (!ki->bv)
			return -ENOMEM;
	}
	for (i = 0; i < nr; i++) {
		void *p = buf + done;
		unsigned int off = offset_in_page(p);
		unsigned int n = min_t(size_t, PAGE_SIZE - off, len - done);

		ki->bv[i].bv_page = is_vmalloc_addr(p) ? vmalloc_to_page(p) :
							 virt_to_page(p);
		ki->bv[i].bv_offset = off;
		ki->bv[i].bv_len = n;
		done += n;
	}
	iov_iter_bvec(&ki->it, write ? WRITE : READ, ki->bv, nr, len);
	return 0;
}

void qcow2_kiter_free(struct qcow2_kiter *ki)
{
	if (ki->bv != ki->stack)
		kvfree(ki->bv);
}

/*
 * Write all of @it at *@pos. A write that fills the file system returns
 * a short count first and the reason (-ENOSPC) only on the next call:
 * go on until done or refused, so the caller sees the reason.
 */
ssize_t qcow2_write_all(struct file *f, struct iov_iter *it, loff_t *pos)
{
	ssize_t ret, done = 0;

	do {
		ret = qcow2_vfs_write(f, it, pos);
		if (ret > 0)
			done += ret;
	} while (ret > 0 && iov_iter_count(it));
	return ret < 0 ? ret : done;
}

ssize_t qcow2_file_io(struct file *f, void *buf, size_t len, loff_t pos,
		      bool write)
{
	struct qcow2_kiter ki;
	ssize_t ret;

	ret = qcow2_kiter_init(&ki, buf, len, write);
	if (ret)
		return ret;
	if (write)
		ret = qcow2_write_all(f, &ki.it, &pos);
	else
		ret = vfs_iter_read(f, &ki.it, &pos, 0);
	qcow2_kiter_free(&ki);
	return ret;
}

int qcow2_file_rw(struct qcow2 *q, struct file *f, void *buf, size_t len,
		  loff_t pos, bool write)
{
	ssize_t ret = qcow2_file_io(f, buf, len, pos, write);

	if (ret == len)
		return 0;
	qcow2_err(q, "%s of %zu bytes at %lld failed: %zd",
		  write ? "write" : "read", len, pos, ret);
	return ret < 0 ? ret : -EIO;
}

/*
 * The device whose sector size limits direct I/O on @f: the device itself
 * for a block device node (a data file or raw backing file may be one),
 * else the one under the file system (none for tmpfs, 9p, ...).
 */
static struct block_device *file_sector_bdev(struct file *f)
{
	struct inode *inode = file_inode(f);

	if (S_ISBLK(inode->i_mode))
		return I_BDEV(f->f_mapping->host);
	return inode->i_sb->s_bdev;
}

static struct file *open_file(const char *path, bool ro, bool *direct)
{
	int flags = (ro ? O_RDONLY : O_RDWR) | O_LARGEFILE;
	struct block_device *bdev;
	struct file *f;

	f = filp_open(path, flags | O_DIRECT, 0);
	if (IS_ERR(f) && PTR_ERR(f) == -EINVAL)
		return filp_open(path, flags, 0);
	if (IS_ERR(f))
		return f;
	/* 512-byte guest I/O must stay legal: direct I/O only on 512 B sectors */
	bdev = file_sector_bdev(f);
	if (bdev && bdev_logical_block_size(bdev) > 512) {
		filp_close(f, NULL);
		return filp_open(path, flags, 0);
	}
	*direct = true;
	return f;
}

static int parse_extensions(struct qcow2 *q, u8 *hdr, char **error)
{
	u32 off = q->version == 2 ? QCOW2_HDR_V2_LEN : q->header_length;

	while (off + 8 <= q->cluster_size) {
		u32 type = get_unaligned_be32(hdr + off);
		u32 len = get_unaligned_be32(hdr + off + 4);

		if (type == QCOW2_EXT_END)
			return 0;
		if (len > q->cluster_size - off - 8) {
			*error = "header extension beyond the first cluster";
			return -EINVAL;
		}
		switch (type) {
		case QCOW2_EXT_CRYPTO:
			*error = "encrypted images are not supported";
			return -EOPNOTSUPP;
		case QCOW2_EXT_BITMAPS:
			if (len < 24) {
				*error = "bitmaps extension too short";
				return -EINVAL;
			}
			q->has_bitmaps = true;
			q->nb_bitmaps = get_unaligned_be32(hdr + off + 8);
			q->bitmap_dir_size = get_unaligned_be64(hdr + off + 16);
			q->bitmap_dir_offset = get_unaligned_be64(hdr + off + 24);
			break;
		default:
			break;	/* backing format, feature names, data file
				 * name (the table names the file), unknown
				 */
		}
		off += 8 + round_up(len, 8);
	}
	return 0;
}

static int check_v3_fields(struct qcow2 *q, const struct qcow2_header *h,
			   char **error)
{
	q->incompat = be64_to_cpu(h->incompatible_features);
	q->compat = be64_to_cpu(h->compatible_features);
	q->autoclear = be64_to_cpu(h->autoclear_features);
	q->refcount_order = be32_to_cpu(h->refcount_order);
	q->header_length = be32_to_cpu(h->header_length);

	if (q->header_length < QCOW2_HDR_V3_LEN ||
	    q->header_length > q->cluster_size || q->header_length % 8) {
		*error = "invalid header_length";
		return -EINVAL;
	}
	if (q->incompat & ~QCOW2_INCOMPAT_KNOWN) {
		*error = "unknown incompatible feature bits";
		return -EOPNOTSUPP;
	}
	if (q->incompat & QCOW2_INCOMPAT_CORRUPT) {
		*error = "image is marked corrupt; run 'qemu-img check -r all IMAGE'";
		return -EINVAL;
	}
	if (q->incompat & QCOW2_INCOMPAT_DIRTY) {
		*error = "image is dirty (lazy refcounts); repair it with 'qemu-img check -r all IMAGE'";
		return -EINVAL;
	}
	q->ext_data = q->incompat & QCOW2_INCOMPAT_DATA_FILE;
	q->data_raw = q->ext_data && (q->autoclear & QCOW2_AUTOCLEAR_DATA_RAW);
	if (q->header_length > QCOW2_HDR_V3_LEN)
		q->compression_type = h->compression_type;
	if (q->compression_type > QCOW2_COMPR_ZSTD ||
	    !!q->compression_type != !!(q->incompat & QCOW2_INCOMPAT_COMPR)) {
		*error = "unknown or inconsistent compression type";
		return -EOPNOTSUPP;
	}
	q->ext_l2 = q->incompat & QCOW2_INCOMPAT_EXTL2;
	if (q->ext_l2 && q->cluster_bits < 14) {
		*error = "extended L2 needs clusters of 16 KiB or more";
		return -EINVAL;
	}
	if (q->refcount_order > 6) {
		*error = "refcount_order above 6";
		return -EINVAL;
	}
	return 0;
}

static int parse_header(struct qcow2 *q, const struct qcow2_header *h,
			u64 fsize, char **error)
{
	u32 crypt;
	int ret;

	if (be32_to_cpu(h->magic) != QCOW2_MAGIC) {
		*error = "bad magic, not a qcow2 image";
		return -EINVAL;
	}
	q->version = be32_to_cpu(h->version);
	if (q->version != 2 && q->version != 3) {
		*error = "unsupported version (only 2 and 3)";
		return -EOPNOTSUPP;
	}
	q->cluster_bits = be32_to_cpu(h->cluster_bits);
	if (q->cluster_bits < 9 || q->cluster_bits > 21) {
		*error = "cluster_bits outside 9..21";
		return -EINVAL;
	}
	q->cluster_size = 1U << q->cluster_bits;
	q->backing_name_offset = be64_to_cpu(h->backing_file_offset);
	q->backing_name_len = be32_to_cpu(h->backing_file_size);
	q->size = be64_to_cpu(h->size);
	crypt = be32_to_cpu(h->crypt_method);
	q->l1_size = be32_to_cpu(h->l1_size);
	q->l1_offset = be64_to_cpu(h->l1_table_offset);
	q->rt_offset = be64_to_cpu(h->refcount_table_offset);
	q->rt_clusters = be32_to_cpu(h->refcount_table_clusters);
	q->nb_snapshots = be32_to_cpu(h->nb_snapshots);
	q->snapshots_offset = be64_to_cpu(h->snapshots_offset);
	q->refcount_order = 4;
	q->header_length = QCOW2_HDR_V2_LEN;

	if (crypt) {
		*error = "encrypted images are not supported";
		return -EOPNOTSUPP;
	}
	if (q->version == 3) {
		ret = check_v3_fields(q, h, error);
		if (ret)
			return ret;
	}
	if (q->backing_name_offset &&
	    (q->backing_name_len > 1023 ||
	     q->backing_name_offset + q->backing_name_len > q->cluster_size)) {
		*error = "backing file name outside the first cluster";
		return -EINVAL;
	}
	if (q->size > (1ULL << 60)) {
		*error = "virtual size too large";
		return -EINVAL;
	}
	if (q->nb_snapshots && (q->snapshots_offset % q->cluster_size ||
				q->snapshots_offset >= fsize)) {
		*error = "snapshot table offset invalid or beyond end of file";
		return -EINVAL;
	}
	return 0;
}

static int check_tables(struct qcow2 *q, u64 fsize, char **error)
{
	u64 l2_cover, need, l1_bytes, rt_bytes;

	q->l2_entry_shift = q->ext_l2 ? 4 : 3;
	q->l2_bits = q->cluster_bits - q->l2_entry_shift;
	q->subc_bits = q->ext_l2 ? q->cluster_bits - 5 : q->cluster_bits;
	q->rb_bits = q->cluster_bits + 3 - q->refcount_order;
	q->refcount_max = q->refcount_order == 6 ? U64_MAX :
			  (1ULL << (1U << q->refcount_order)) - 1;
	q->csize_shift = 62 - (q->cluster_bits - 8);
	q->csize_mask = (1ULL << (q->cluster_bits - 8)) - 1;
	q->coffset_mask = (1ULL << q->csize_shift) - 1;

	l2_cover = 1ULL << (q->cluster_bits + q->l2_bits);
	need = (q->size + l2_cover - 1) >> (q->cluster_bits + q->l2_bits);
	if (q->l1_size > QCOW2_MAX_L1_BYTES / 8) {
		*error = "l1_size too big";
		return -EINVAL;
	}
	if (q->l1_size < need) {
		*error = "l1_size too small for the virtual size";
		return -EINVAL;
	}
	l1_bytes = (u64)q->l1_size * 8;
	if (q->l1_size && (q->l1_offset % q->cluster_size ||
			   q->l1_offset < q->cluster_size ||
			   q->l1_offset > fsize ||
			   l1_bytes > fsize - q->l1_offset)) {
		*error = "L1 table misaligned, over the header or beyond end of file";
		return -EINVAL;
	}
	rt_bytes = (u64)q->rt_clusters << q->cluster_bits;
	if (!q->rt_clusters || rt_bytes > QCOW2_MAX_RT_BYTES) {
		*error = "refcount table size absurd";
		return -EINVAL;
	}
	if (q->rt_offset % q->cluster_size || q->rt_offset < q->cluster_size ||
	    q->rt_offset > fsize || rt_bytes > fsize - q->rt_offset) {
		*error = "refcount table misaligned, over the header or beyond end of file";
		return -EINVAL;
	}
	if (q->l1_size && qcow2_ranges_overlap(q->l1_offset, l1_bytes,
					 q->rt_offset, rt_bytes)) {
		*error = "L1 table and refcount table overlap";
		return -EINVAL;
	}
	q->rt_entries = rt_bytes / 8;
	return 0;
}

/* Read a table of big-endian u64 into a CPU-order array. */
static u64 *load_table(struct qcow2 *q, u64 offset, u64 entries)
{
	size_t bytes = round_up(entries * 8, 512);
	__be64 *raw;
	u64 *tab, i;

	tab = kvcalloc(max_t(u64, entries, 1), sizeof(u64), GFP_KERNEL);
	raw = qcow2_alloc_buf(bytes);
	if (!tab || !raw)
		goto fail;
	/* a table may end the file short of a whole sector */
	if (entries && qcow2_file_io(q->file, raw, bytes, offset, false) <
		       (ssize_t)(entries * 8))
		goto fail;
	for (i = 0; i < entries; i++)
		tab[i] = be64_to_cpu(raw[i]);
	kvfree(raw);
	return tab;
fail:
	kvfree(raw);
	kvfree(tab);
	return NULL;
}

static int check_table_entries(struct qcow2 *q, u64 fsize, char **error)
{
	u64 i, off;

	for (i = 0; i < q->l1_size; i++) {
		off = q->l1[i] & QCOW2_OFFSET_MASK;
		if (!off)
			continue;
		if ((q->l1[i] & QCOW2_L1_RESERVED) || off % q->cluster_size ||
		    off >= fsize || qcow2_overlaps_meta(q, off, q->cluster_size)) {
			*error = "L1 entry invalid, beyond end of file or into metadata";
			return -EINVAL;
		}
	}
	for (i = 0; i < q->rt_entries; i++) {
		off = q->rt[i] & ~QCOW2_RT_RESERVED;
		if (!q->rt[i])
			continue;
		if ((q->rt[i] & QCOW2_RT_RESERVED) || off % q->cluster_size ||
		    off >= fsize || qcow2_overlaps_meta(q, off, q->cluster_size)) {
			*error = "refcount table entry invalid, beyond end of file or into metadata";
			return -EINVAL;
		}
	}
	return 0;
}

/* Every cluster of the header and of both tables must be refcounted. */
static int check_meta_refcounts(struct qcow2 *q, char **error)
{
	u64 c, ref, last;
	int ret;

	ret = qcow2_get_refcount(q, 0, &ref);
	if (ret || !ref)
		goto bad;
	last = (q->rt_offset + ((u64)q->rt_clusters << q->cluster_bits) - 1) >>
	       q->cluster_bits;
	for (c = q->rt_offset >> q->cluster_bits; c <= last; c++) {
		ret = qcow2_get_refcount(q, c, &ref);
		if (ret || !ref)
			goto bad;
	}
	if (!q->l1_size)
		return 0;
	last = (q->l1_offset + (u64)q->l1_size * 8 - 1) >> q->cluster_bits;
	for (c = q->l1_offset >> q->cluster_bits; c <= last; c++) {
		ret = qcow2_get_refcount(q, c, &ref);
		if (ret || !ref)
			goto bad;
	}
	return 0;
bad:
	*error = "refcount blocks missing or zero for the image metadata";
	return -EINVAL;
}

static unsigned int default_cache_bytes(struct qcow2 *q)
{
	u64 l2 = (q->size >> q->cluster_bits) << q->l2_entry_shift;

	return clamp_t(u64, l2 + l2 / 4, 4U << 20, 64U << 20);
}

static void setup_caches(struct qcow2 *q, unsigned int cache_bytes)
{
	unsigned int n;

	if (!cache_bytes)
		cache_bytes = default_cache_bytes(q);
	n = cache_bytes >> q->cluster_bits;
	qcow2_cache_init(&q->l2c, max(4U, n - n / 5), true);
	qcow2_cache_init(&q->rbc, max(4U, n / 5), false);
}

/*
 * The file data clusters are read from and written to: the image itself,
 * or the external data file given in the table (the kernel never opens a
 * name read from an image). A regular file or a block device, like the
 * data files QEMU opens.
 */
static int open_data_file(struct qcow2 *q, const char *data_path, bool ro,
			  char **error)
{
	umode_t mode;

	if (!q->ext_data) {
		if (data_path) {
			*error = "data_file given, but the image has no external data file";
			return -EINVAL;
		}
		q->dfile = q->file;
		q->ddirect = q->direct;
		return 0;
	}
	if (!data_path) {
		*error = "image has an external data file: give it with 'data_file <path>'";
		return -EINVAL;
	}
	if (q->nb_snapshots) {
		*error = "internal snapshots in an image with an external data file";
		return -EINVAL;
	}
	q->dfile = open_file(data_path, ro, &q->ddirect);
	if (IS_ERR(q->dfile)) {
		int ret = PTR_ERR(q->dfile);

		q->dfile = NULL;
		*error = "cannot open the external data file";
		return ret;
	}
	mode = file_inode(q->dfile)->i_mode;
	if (!S_ISREG(mode) && !S_ISBLK(mode)) {
		*error = "external data file is not a regular file or block device";
		return -EINVAL;
	}
	if (file_inode(q->dfile) == file_inode(q->file)) {
		*error = "the external data file is the image itself";
		return -EINVAL;
	}
	return 0;
}

int qcow2_open_image(struct qcow2 *q, const char *path,
		     const char *data_path, bool ro, char **error)
{
	u64 fsize;
	struct qcow2_header *h;
	u8 *hdr;
	int ret;

	q->ro = ro;
	INIT_WORK(&q->corrupt_work, mark_corrupt);
	mutex_init(&q->lock);
	qcow2_meta_init(q);
	mutex_init(&q->zlock);
	mutex_init(&q->flush_lock);
	spin_lock_init(&q->bm_lock);
	init_waitqueue_head(&q->flush_wq);
	qcow2_inflight_init(q);
	INIT_LIST_HEAD(&q->deferred);
	atomic_set(&q->data_io[0], 0);
	atomic_set(&q->data_io[1], 0);
	init_waitqueue_head(&q->data_io_wq);
	ratelimit_state_init(&q->rs, 5 * HZ, 10);
	atomic64_set(&q->hits, 0);
	atomic64_set(&q->misses, 0);
	atomic64_set(&q->flushes, 0);
	atomic64_set(&q->flush_started, 0);
	atomic64_set(&q->locked_flushes, 0);
	atomic64_set(&q->errors, 0);
	qcow2_cache_init(&q->l2c, 0, true);
	qcow2_cache_init(&q->rbc, 0, false);

	q->path = kstrdup(path, GFP_KERNEL);
	if (!q->path)
		return -ENOMEM;
	if (!ro) {
		q->deferred_pool = mempool_create_slab_pool(QCOW2_DEFERRED_RESERVE,
							    qcow2_deferred_cache);
		if (!q->deferred_pool)
			return -ENOMEM;
	}
	q->file = open_file(path, ro, &q->direct);
	if (IS_ERR(q->file)) {
		ret = PTR_ERR(q->file);
		q->file = NULL;
		*error = "cannot open image file";
		return ret;
	}
	if (!S_ISREG(file_inode(q->file)->i_mode)) {
		*error = "image is not a regular file";
		return -EINVAL;
	}
	fsize = qcow2_file_size(q->file);
	if (fsize < 512) {
		*error = "image file too short for a header";
		return -EINVAL;
	}
	h = qcow2_header_read(q);
	if (IS_ERR(h))
		return PTR_ERR(h);
	ret = parse_header(q, h, fsize, error);
	kvfree(h);
	if (ret)
		return ret;

	/* the whole first cluster, for the extensions */
	hdr = qcow2_alloc_buf(q->cluster_size);
	if (!hdr)
		return -ENOMEM;
	ret = qcow2_file_io(q->file, hdr, min_t(u64, q->cluster_size,
						round_up(fsize, 512)), 0, false);
	if (ret >= 0)
		ret = parse_extensions(q, hdr, error);
	kvfree(hdr);
	if (ret < 0)
		return ret;
	ret = open_data_file(q, data_path, ro, error);
	if (ret)
		return ret;

	ret = check_tables(q, fsize, error);
	if (ret)
		return ret;
	q->l1 = load_table(q, q->l1_offset, q->l1_size);
	q->rt = load_table(q, q->rt_offset, q->rt_entries);
	if (!q->l1 || !q->rt) {
		*error = "cannot read L1 or refcount table";
		return -EIO;
	}
	ret = check_table_entries(q, fsize, error);
	if (ret)
		return ret;
	ret = qcow2_meta_index_tables(q);
	if (ret) {
		*error = "cannot index the metadata clusters";
		return ret;
	}
	ret = qcow2_snap_load(q, fsize, error);
	if (ret)
		return ret;
	q->alloc_end = round_up(fsize, q->cluster_size);
	setup_caches(q, 0);
	ret = check_meta_refcounts(q, error);
	if (ret)
		return ret;
	ret = qcow2_count_clusters(q);
	if (ret) {
		*error = "cannot read refcount blocks";
		return ret;
	}
	return 0;
}

/* Resize the caches once the table's cache_mb is known. */
void qcow2_set_cache_size(struct qcow2 *q, u64 bytes)
{
	unsigned int n = bytes >> q->cluster_bits;

	q->l2c.max = max(4U, n - n / 5);
	q->rbc.max = max(4U, n / 5);
}

void qcow2_close_image(struct qcow2 *q)
{
	flush_work(&q->corrupt_work);
	qcow2_cache_destroy(&q->l2c);
	qcow2_cache_destroy(&q->rbc);
	if (q->deferred_pool) {
		qcow2_deferred_free_list(q, &q->deferred);
		mempool_destroy(q->deferred_pool);
		q->deferred_pool = NULL;
	}
	qcow2_compress_free(q);
	qcow2_snap_free(q);
	qcow2_bitmaps_free(q);
	qcow2_meta_destroy(q);
	kvfree(q->l1);
	kvfree(q->rt);
	q->l1 = NULL;
	q->rt = NULL;
	if (q->dfile && q->dfile != q->file)
		filp_close(q->dfile, NULL);
	q->dfile = NULL;
	if (q->file)
		filp_close(q->file, NULL);
	q->file = NULL;
	kfree(q->path);
	q->path = NULL;
}

/*
 * Before the first write: persistent bitmaps are loaded to be tracked and
 * become "in use" (qcow2-bitmap.c) and unknown autoclear bits are
 * cleared, as the specification asks of a writer that ignores them.
 */
int qcow2_update_header_for_write(struct qcow2 *q)
{
	u64 keep = (q->has_bitmaps ? QCOW2_AUTOCLEAR_BITMAPS : 0) |
		   (q->data_raw ? QCOW2_AUTOCLEAR_DATA_RAW : 0);
	struct qcow2_header *h;
	int ret;

	if (q->version < 3 || q->header_updated)
		return 0;
	if (q->autoclear & QCOW2_AUTOCLEAR_BITMAPS) {
		ret = qcow2_bitmaps_open(q);
		if (ret)
			return ret;
	}
	if (q->autoclear & ~keep) {
		h = qcow2_header_read(q);
		if (IS_ERR(h))
			return PTR_ERR(h);
		q->autoclear &= keep;
		h->autoclear_features = cpu_to_be64(q->autoclear);
		ret = qcow2_header_write(q, h);
		if (ret)
			return ret;
	}
	ret = vfs_fsync(q->file, 0);
	if (!ret)
		q->header_updated = true;
	return ret;
}
