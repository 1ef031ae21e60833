// SPDX-License-Identifier: GPL-2.0
/*
 * qcow2-snapshot.c: internal snapshots (QEMU's snapshot table).
 *
 * The table is read and validated when the image is opened and kept in
 * memory as raw bytes. "snapshot create" and "snapshot delete" run with
 * guest I/O drained (the target's gate) and q->lock held for the whole
 * operation, so nothing else looks at the tables meanwhile.
 *
 * Refcount model (QEMU's): a data cluster's refcount is the number of
 * times it is reached walking every L1 table (active and snapshots) and
 * the L2 tables they point at; a shared L2 table is walked once per L1.
 * Hence creating a snapshot adds one to every L2 table and every data
 * cluster the active L1 reaches, and deleting one subtracts one from
 * everything its L1 reaches.
 *
 * Crash consistency (what `qemu-img check` says after a crash):
 *   create: L1 copy written; refcount increments and the cleared COPIED
 *     flags go through the flush sequence (refcounts durable first); new
 *     snapshot table written and flushed; one header sector switches
 *     nb_snapshots/snapshots_offset; the old table is freed. A crash
 *     before the header write leaves leaks only, except in the window
 *     between the refcount blocks reaching the disk and the L2/L1 tables
 *     with cleared COPIED flags following them: there check_oflag_copied
 *     reports "OFLAG_COPIED" errors (refcount 2, flag set). No order of
 *     two separate writes avoids that and QEMU has the same window; the
 *     data is intact and `qemu-img check -r all` fixes the flags.
 *   delete: the new table (without the entry) and the header go first,
 *     so the snapshot's clusters are at worst leaked; then refcounts go
 *     down and COPIED is set again on active clusters back at refcount 1.
 *     Between the decrements and the COPIED flags reaching the disk the
 *     same kind of OFLAG_COPIED report is possible (refcount 1, flag
 *     clear), also as in QEMU.
 */
#include <linux/slab.h>
#include <linux/ctype.h>
#include <linux/time64.h>
#include <linux/timekeeping.h>
#include <linux/falloc.h>
#include <linux/device-mapper.h>
#include <linux/sched.h>
#include <linux/sort.h>
#include "qcow2.h"
#include "compat.h"

#define SN_HDR_LEN		40
#define SN_EXTRA_LEN		24	/* vm_state_size_large, disk_size, icount */
#define SN_MAX_EXTRA		1024	/* as QEMU */
#define SN_MAX_NB		65536	/* as QEMU */
#define SN_MAX_TABLE		(64U << 20)	/* as QEMU */
#define SN_MAX_TAG		128

/* Fields of one raw table entry. */
static u64 sn_l1_offset(const u8 *e) { return get_unaligned_be64(e); }
static u32 sn_l1_size(const u8 *e) { return get_unaligned_be32(e + 8); }
static u16 sn_id_len(const u8 *e) { return get_unaligned_be16(e + 12); }
static u16 sn_name_len(const u8 *e) { return get_unaligned_be16(e + 14); }
static u32 sn_extra_len(const u8 *e) { return get_unaligned_be32(e + 36); }

static const u8 *sn_id(const u8 *e)
{
	return e + SN_HDR_LEN + sn_extra_len(e);
}

static const u8 *sn_name(const u8 *e)
{
	return sn_id(e) + sn_id_len(e);
}

static const u8 *sn_entry(struct qcow2 *q, u32 i)
{
	return q->snap_raw + q->snap_off[i];
}

static u32 sn_table_len(struct qcow2 *q)
{
	return q->snap_off ? q->snap_off[q->nb_snapshots] : 0;
}

static u64 sn_disk_size(struct qcow2 *q, const u8 *e)
{
	if (sn_extra_len(e) >= 16)
		return get_unaligned_be64(e + SN_HDR_LEN + 8);
	return q->size;		/* old entries: QEMU assumes the current size */
}

void qcow2_snap_free(struct qcow2 *q)
{
	kvfree(q->snap_raw);
	kvfree(q->snap_off);
	q->snap_raw = NULL;
	q->snap_off = NULL;
}

/* One entry at @pos of a buffer of @have bytes: its length, or -EAGAIN. */
static int parse_entry(struct qcow2 *q, const u8 *buf, u32 have, u32 pos,
		       u32 *len, char **error)
{
	const u8 *e = buf + pos;
	u64 need;

	if (have - pos < SN_HDR_LEN)
		return -EAGAIN;
	if (sn_extra_len(e) > SN_MAX_EXTRA) {
		*error = "snapshot table entry with too much extra data";
		return -EINVAL;
	}
	need = round_up((u64)SN_HDR_LEN + sn_extra_len(e) + sn_id_len(e) +
			sn_name_len(e), 8);
	if (pos + need > SN_MAX_TABLE) {
		*error = "snapshot table larger than 64 MiB";
		return -EINVAL;
	}
	if (pos + need > have)
		return -EAGAIN;
	*len = need;
	return 0;
}

/* Where each snapshot's L1 table lies must make sense. */
static int check_snap_l1(struct qcow2 *q, const u8 *e, u64 fsize, u32 tlen,
			 char **error)
{
	u64 off = sn_l1_offset(e), bytes = (u64)sn_l1_size(e) * 8;

	if (sn_l1_size(e) > QCOW2_MAX_L1_BYTES / 8) {
		*error = "snapshot L1 table too large";
		return -EINVAL;
	}
	if (!bytes)
		return 0;
	if (off % q->cluster_size || off > fsize || bytes > fsize - off) {
		*error = "snapshot L1 table misaligned or beyond end of file";
		return -EINVAL;
	}
	if (qcow2_overlaps_meta(q, off, bytes) ||
	    qcow2_ranges_overlap(off, bytes, q->snapshots_offset, tlen)) {
		*error = "snapshot L1 table overlaps other metadata";
		return -EINVAL;
	}
	if (qcow2_meta_add_range(q, off, bytes, QCOW2_META_SNAP_L1)) {
		*error = "cannot index the snapshot L1 tables";
		return -ENOMEM;
	}
	return 0;
}

/* Walk the entries in @buf; -EAGAIN when @have bytes are not enough. */
static int parse_table(struct qcow2 *q, const u8 *buf, u32 have, u32 *off,
		       char **error)
{
	u32 i, pos = 0, len;
	int ret;

	for (i = 0; i < q->nb_snapshots; i++) {
		ret = parse_entry(q, buf, have, pos, &len, error);
		if (ret)
			return ret;
		off[i] = pos;
		pos += len;
	}
	off[i] = pos;
	return 0;
}

/* Read @len bytes at @off; with @short_ok the part beyond EOF reads zeros. */
static int read_at(struct qcow2 *q, u64 off, u32 len, bool short_ok, u8 **out)
{
	u32 bytes = round_up(max(len, 1U), 512);
	u8 *buf = qcow2_alloc_buf(bytes);
	ssize_t got;

	*out = NULL;
	if (!buf)
		return -ENOMEM;
	/* a table may end the file short of a whole sector */
	got = qcow2_file_io(q->file, buf, bytes, off, false);
	if (got < 0 || (!short_ok && got < (ssize_t)len)) {
		kvfree(buf);
		return got < 0 ? got : -EIO;
	}
	*out = buf;
	return 0;
}

/* Read the table, growing the window until every entry fits. */
static int read_table(struct qcow2 *q, u64 fsize, char **error)
{
	/* QEMU does not pad the last entry in the file: up to a sector more */
	u64 cap = min_t(u64, SN_MAX_TABLE,
			round_up(fsize - q->snapshots_offset, 512));
	u32 have = min_t(u64, cap, 65536);
	int ret;

	for (;;) {
		ret = read_at(q, q->snapshots_offset, have, true,
			      &q->snap_raw);
		if (ret) {
			*error = "cannot read the snapshot table";
			return ret;
		}
		ret = parse_table(q, q->snap_raw, have, q->snap_off, error);
		if (ret != -EAGAIN)
			return ret;
		kvfree(q->snap_raw);
		q->snap_raw = NULL;
		if (have == cap) {
			*error = "snapshot table beyond end of file";
			return -EINVAL;
		}
		have = min_t(u64, cap, 2ULL * have);
	}
}

/* At open: read and validate the snapshot table (hostile input). */
int qcow2_snap_load(struct qcow2 *q, u64 fsize, char **error)
{
	u32 i, tlen;
	int ret;

	if (q->nb_snapshots > SN_MAX_NB) {
		*error = "more than 65536 snapshots";
		return -EINVAL;
	}
	q->snap_off = kvcalloc(q->nb_snapshots + 1, sizeof(u32), GFP_KERNEL);
	if (!q->snap_off)
		return -ENOMEM;
	if (!q->nb_snapshots)
		return 0;
	ret = read_table(q, fsize, error);
	if (ret)
		return ret;
	tlen = sn_table_len(q);
	if (qcow2_overlaps_meta(q, q->snapshots_offset, tlen)) {
		*error = "snapshot table overlaps the header, L1 or refcount table";
		return -EINVAL;
	}
	for (i = 0; i < q->nb_snapshots; i++) {
		ret = check_snap_l1(q, sn_entry(q, i), fsize, tlen, error);
		if (ret)
			return ret;
	}
	return 0;
}

/* Bytes of a name: printable non-blank ASCII as is, the rest as \xNN. */
static unsigned int emit_escaped(char *result, unsigned int sz,
				 unsigned int maxlen, const u8 *s, u32 n)
{
	u32 i;

	for (i = 0; i < n; i++) {
		if (s[i] > ' ' && s[i] < 0x7f && s[i] != '\\')
			DMEMIT("%c", s[i]);
		else
			DMEMIT("\\x%02x", s[i]);
	}
	return sz;
}

/*
 * "snapshot list": one line per snapshot,
 *   <id> <tag> <virtual size in bytes> <date, UTC, ISO 8601>
 */
unsigned int qcow2_snapshot_list(struct qcow2 *q, char *result,
				 unsigned int maxlen)
{
	unsigned int sz = 0;
	struct tm tm;
	const u8 *e;
	u32 i;

	mutex_lock(&q->lock);
	for (i = 0; i < q->nb_snapshots; i++) {
		e = sn_entry(q, i);
		sz = emit_escaped(result, sz, maxlen, sn_id(e), sn_id_len(e));
		DMEMIT(" ");
		sz = emit_escaped(result, sz, maxlen, sn_name(e),
				  sn_name_len(e));
		time64_to_tm(get_unaligned_be32(e + 16), 0, &tm);
		DMEMIT(" %llu %04ld-%02d-%02dT%02d:%02d:%02dZ\n",
		       sn_disk_size(q, e), tm.tm_year + 1900, tm.tm_mon + 1,
		       tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	}
	mutex_unlock(&q->lock);
	return sz;
}

/* Index of the snapshot whose name (else id) is @key, or -1. */
static int snap_find(struct qcow2 *q, const char *key)
{
	size_t n = strlen(key);
	const u8 *e;
	u32 i;

	for (i = 0; i < q->nb_snapshots; i++) {
		e = sn_entry(q, i);
		if (sn_name_len(e) == n && !memcmp(sn_name(e), key, n))
			return i;
	}
	for (i = 0; i < q->nb_snapshots; i++) {
		e = sn_entry(q, i);
		if (sn_id_len(e) == n && !memcmp(sn_id(e), key, n))
			return i;
	}
	return -1;
}

/* Numeric id after the largest one in use, as QEMU (strtoul) does. */
static unsigned long next_id(struct qcow2 *q)
{
	unsigned long max = 0, v;
	const u8 *e, *p;
	u32 i, j;

	for (i = 0; i < q->nb_snapshots; i++) {
		e = sn_entry(q, i);
		p = sn_id(e);
		for (v = 0, j = 0; j < sn_id_len(e) && isdigit(p[j]) &&
		     v < ULONG_MAX / 10 - 1; j++)
			v = v * 10 + (p[j] - '0');
		max = max(max, v);
	}
	return max + 1;
}

/* Tags: 1..128 printable, non-blank ASCII, not all digits (ids are). */
static bool valid_tag(const char *tag)
{
	size_t i, n = strlen(tag);
	bool digits = true;

	if (!n || n > SN_MAX_TAG)
		return false;
	for (i = 0; i < n; i++) {
		if (tag[i] <= ' ' || tag[i] >= 0x7f || tag[i] == '\\')
			return false;
		if (!isdigit(tag[i]))
			digits = false;
	}
	return !digits;
}

/*
 * @n contiguous clusters at the end of the file (a snapshot table or L1
 * table must be contiguous). A refcount block or grown refcount table may
 * land in the middle of a run: the run then restarts after it and the
 * clusters before are given back.
 */
static int alloc_contig(struct qcow2 *q, u64 bytes, u64 *out)
{
	u64 n = DIV_ROUND_UP(bytes, q->cluster_size), got = 0, start = 0;
	u64 hint = q->free_hint, off;
	int ret = 0;

	while (got < n) {
		q->free_hint = q->alloc_end >> q->cluster_bits;
		ret = qcow2_alloc_cluster(q, &off);
		if (ret)
			break;
		if (got && off != start + (got << q->cluster_bits)) {
			ret = qcow2_update_refcount(q, start,
						    got << q->cluster_bits, -1);
			if (ret)
				break;
			got = 0;
		}
		if (!got)
			start = off;
		got++;
	}
	if (ret && got)
		qcow2_update_refcount(q, start, got << q->cluster_bits, -1);
	q->free_hint = hint;
	*out = start;
	return ret;
}

static int free_clusters(struct qcow2 *q, u64 off, u64 bytes)
{
	if (!bytes)
		return 0;
	return qcow2_update_refcount(q, off, bytes, -1);
}

/* Write @n table entries big-endian at @off, COPIED flags cleared. */
static int write_l1_copy(struct qcow2 *q, u64 off)
{
	size_t bytes = round_up((size_t)q->l1_size * 8, 512);
	__be64 *raw;
	u32 i;
	int ret;

	raw = qcow2_alloc_buf(bytes);
	if (!raw)
		return -ENOMEM;
	for (i = 0; i < q->l1_size; i++)
		raw[i] = cpu_to_be64(q->l1[i] & ~QCOW2_OFLAG_COPIED);
	ret = qcow2_file_rw(q, q->file, raw, bytes, off, true);
	kvfree(raw);
	return ret;
}

/* The host range an L2 entry references (len 0: none); -EIO if absurd. */
static int entry_range(struct qcow2 *q, u64 entry, u64 *off, u64 *len)
{
	if (entry & QCOW2_OFLAG_COMPRESSED) {
		qcow2_compressed_range(q, entry, off, len);
	} else {
		*off = entry & QCOW2_OFFSET_MASK;
		*len = *off ? q->cluster_size : 0;
		if (*off % q->cluster_size)
			goto bad;
	}
	if (*len && (*off > q->alloc_end || *len > q->alloc_end - *off))
		goto bad;
	return 0;
bad:
	qcow2_corrupt(q, "snapshot: invalid L2 entry %#llx", entry);
	return -EIO;
}

/*
 * Add a reference to one L2 table of the active L1 and to everything it
 * points at, clearing COPIED so the next write copies. Each entry's
 * refcount goes up before its flag is cleared: stopping half way leaves
 * leaks only.
 */
static int share_l2(struct qcow2 *q, u32 i)
{
	u64 l2off = q->l1[i] & QCOW2_OFFSET_MASK, e, off, len;
	struct qcow2_table *t;
	u32 j;
	int ret;

	if (!l2off)
		return 0;
	ret = qcow2_update_refcount(q, l2off, q->cluster_size, 1);
	if (ret)
		return ret;
	q->l1[i] &= ~QCOW2_OFLAG_COPIED;
	qcow2_l1_mark_dirty(q);
	ret = qcow2_cache_get(q, &q->l2c, l2off, false, &t);
	if (ret)
		return ret;
	for (j = 0; j < (1U << q->l2_bits); j++) {
		void *slot = t->data + ((size_t)j << q->l2_entry_shift);

		e = get_unaligned_be64(slot);
		ret = entry_range(q, e, &off, &len);
		if (!ret && len)
			ret = qcow2_update_refcount(q, off, len, 1);
		if (ret)
			return ret;
		if (e & QCOW2_OFLAG_COPIED) {
			put_unaligned_be64(e & ~QCOW2_OFLAG_COPIED, slot);
			qcow2_cache_mark_dirty(q, t);
		}
	}
	return 0;
}

static int share_active(struct qcow2 *q)
{
	u32 i;
	int ret;

	for (i = 0; i < q->l1_size; i++) {
		ret = share_l2(q, i);
		if (ret)
			return ret;
		cond_resched();
	}
	return 0;
}

/* Point the header at a new snapshot table: one sector write, fsync. */
static int write_snap_header(struct qcow2 *q, u32 nb, u64 off)
{
	struct qcow2_header *h = qcow2_header_read(q);
	int ret;

	if (IS_ERR(h))
		return PTR_ERR(h);
	h->nb_snapshots = cpu_to_be32(nb);
	h->snapshots_offset = cpu_to_be64(off);
	ret = qcow2_header_write(q, h);
	if (!ret)
		ret = vfs_fsync(q->file, 0);
	return ret;
}

/*
 * Replace the snapshot table by @raw (@nb entries starting at @off[]):
 * write it to new clusters, make it and every refcount durable, switch
 * the header, then free the old table. Takes @raw and @off on success.
 */
static int replace_table(struct qcow2 *q, u8 *raw, u32 *off, u32 nb)
{
	u32 len = off[nb], old_len = sn_table_len(q);
	u64 old = q->snapshots_offset, noff = 0;
	int ret;

	if (nb) {
		ret = alloc_contig(q, len, &noff);
		if (ret)
			return ret;
		ret = qcow2_file_rw(q, q->file, raw, round_up(len, 512), noff,
				    true);
		if (ret)
			goto free_new;
	}
	ret = qcow2_flush_meta(q);
	if (ret)
		goto free_new;
	/* a failed header write may still have landed: leak, never free */
	ret = write_snap_header(q, nb, noff);
	if (ret)
		return ret;
	qcow2_snap_free(q);
	q->snap_raw = raw;
	q->snap_off = off;
	q->nb_snapshots = nb;
	q->snapshots_offset = noff;
	return old_len ? free_clusters(q, old, old_len) : 0;
free_new:
	/* never referenced by a durable header: give it back (or leak) */
	if (nb)
		free_clusters(q, noff, len);
	return ret;
}

/* Build a new table entry for the snapshot of the active L1 at @l1off. */
static u32 fill_entry(struct qcow2 *q, u8 *e, u64 l1off, const char *id,
		      const char *tag)
{
	u16 idl = strlen(id), nl = strlen(tag);
	struct timespec64 ts;

	ktime_get_real_ts64(&ts);
	put_unaligned_be64(l1off, e);
	put_unaligned_be32(q->l1_size, e + 8);
	put_unaligned_be16(idl, e + 12);
	put_unaligned_be16(nl, e + 14);
	put_unaligned_be32((u32)ts.tv_sec, e + 16);
	put_unaligned_be32(ts.tv_nsec, e + 20);
	put_unaligned_be64(0, e + 24);		/* vm_clock_nsec */
	put_unaligned_be32(0, e + 32);		/* vm_state_size */
	put_unaligned_be32(SN_EXTRA_LEN, e + 36);
	put_unaligned_be64(0, e + 40);		/* vm_state_size_large */
	put_unaligned_be64(q->size, e + 48);	/* disk_size */
	put_unaligned_be64(U64_MAX, e + 56);	/* icount: none recorded */
	memcpy(e + SN_HDR_LEN + SN_EXTRA_LEN, id, idl);
	memcpy(e + SN_HDR_LEN + SN_EXTRA_LEN + idl, tag, nl);
	return round_up(SN_HDR_LEN + SN_EXTRA_LEN + idl + nl, 8);
}

/* The current table plus one entry, in new buffers. */
static int table_plus(struct qcow2 *q, u64 l1off, const char *tag,
		      u8 **raw, u32 **off)
{
	u32 nb = q->nb_snapshots, len = sn_table_len(q);
	char id[24];

	snprintf(id, sizeof(id), "%lu", next_id(q));
	*off = kvcalloc(nb + 2, sizeof(u32), GFP_KERNEL);
	*raw = qcow2_alloc_buf(round_up(len + SN_HDR_LEN + SN_EXTRA_LEN +
					sizeof(id) + SN_MAX_TAG + 8, 512));
	if (!*off || !*raw) {
		kvfree(*off);
		kvfree(*raw);
		return -ENOMEM;
	}
	if (len)
		memcpy(*raw, q->snap_raw, len);
	memcpy(*off, q->snap_off, nb * sizeof(u32));
	(*off)[nb] = len;
	(*off)[nb + 1] = len + fill_entry(q, *raw + len, l1off, id, tag);
	return 0;
}

static int create_check(struct qcow2 *q, const char *tag)
{
	if (q->ro) {
		DMERR_LIMIT("%s: snapshot create: device is read-only", q->path);
		return -EROFS;
	}
	if (q->ext_data) {
		/* its data clusters are not refcounted: nothing can share them */
		DMERR_LIMIT("%s: snapshot create: not possible with an external data file (as in QEMU)",
			    q->path);
		return -EOPNOTSUPP;
	}
	if (!valid_tag(tag)) {
		DMERR_LIMIT("%s: snapshot create: bad tag (1..%d printable characters without blanks or backslash, not only digits)",
			    q->path, SN_MAX_TAG);
		return -EINVAL;
	}
	if (snap_find(q, tag) >= 0) {
		DMERR_LIMIT("%s: snapshot create: tag or id '%s' exists",
			    q->path, tag);
		return -EEXIST;
	}
	if (q->nb_snapshots >= SN_MAX_NB ||
	    sn_table_len(q) + 1024 > SN_MAX_TABLE) {
		DMERR_LIMIT("%s: snapshot create: snapshot table full", q->path);
		return -ENOSPC;
	}
	if (q->refcount_max < 2) {
		DMERR_LIMIT("%s: snapshot create: 1-bit refcounts cannot share clusters",
			    q->path);
		return -EINVAL;
	}
	return 0;
}

static int do_create(struct qcow2 *q, const char *tag)
{
	u64 l1off = 0, l1bytes = (u64)q->l1_size * 8;
	u8 *raw;
	u32 *off;
	int ret;

	ret = qcow2_flush_meta(q);
	if (!ret && l1bytes)
		ret = alloc_contig(q, l1bytes, &l1off);
	if (ret)
		return ret;
	ret = write_l1_copy(q, l1off);
	if (!ret)
		ret = qcow2_meta_add_range(q, l1off, l1bytes,
					   QCOW2_META_SNAP_L1);
	if (ret)
		goto free_l1;
	/* from here a failure leaves leaked clusters, never shared ones */
	ret = share_active(q);
	if (!ret)
		ret = table_plus(q, l1off, tag, &raw, &off);
	if (ret)
		return ret;
	ret = replace_table(q, raw, off, q->nb_snapshots + 1);
	if (ret) {
		kvfree(raw);
		kvfree(off);
		return ret;
	}
	return qcow2_flush_meta(q);
free_l1:
	free_clusters(q, l1off, l1bytes);
	return ret;
}

/* "snapshot create TAG": runs with guest I/O drained by the caller. */
int qcow2_snapshot_create(struct qcow2 *q, const char *tag)
{
	int ret;

	mutex_lock(&q->lock);
	ret = create_check(q, tag);
	if (!ret) {
		ret = do_create(q, tag);
		if (ret)
			DMERR("%s: snapshot create '%s' failed: %d", q->path,
			      tag, ret);
	}
	mutex_unlock(&q->lock);
	return ret;
}

/* Drop one reference to each cluster of [off, off + len), punching freed ones. */
static int unref_range(struct qcow2 *q, u64 off, u64 len)
{
	u64 c = qcow2_cl_align(q, off), end = off + len, ref;
	int ret;

	for (; c < end; c += q->cluster_size) {
		ret = qcow2_update_refcount(q, c, q->cluster_size, -1);
		if (!ret)
			ret = qcow2_get_refcount(q, c >> q->cluster_bits, &ref);
		if (ret)
			return ret;
		if (!ref)
			vfs_fallocate(q->file, FALLOC_FL_PUNCH_HOLE |
				      FALLOC_FL_KEEP_SIZE, c, q->cluster_size);
	}
	return 0;
}

/* Drop the references the deleted snapshot's L2 table at @l2off held. */
static int unshare_l2(struct qcow2 *q, u64 l2off)
{
	struct qcow2_table *t;
	u64 e, off, len;
	u32 j;
	int ret;

	ret = qcow2_cache_get(q, &q->l2c, l2off, false, &t);
	if (ret)
		return ret;
	for (j = 0; j < (1U << q->l2_bits); j++) {
		e = get_unaligned_be64(t->data + ((size_t)j << q->l2_entry_shift));
		ret = entry_range(q, e, &off, &len);
		if (!ret && len)
			ret = unref_range(q, off, len);
		if (ret)
			return ret;
	}
	return free_clusters(q, l2off, q->cluster_size);
}

/* Read and check a snapshot's L1 table before anything is changed. */
static int load_snap_l1(struct qcow2 *q, const u8 *e, u64 **l1)
{
	u32 n = sn_l1_size(e), i;
	__be64 *raw;
	u64 off;
	int ret;

	*l1 = kvcalloc(max(n, 1U), sizeof(u64), GFP_KERNEL);
	if (!*l1)
		return -ENOMEM;
	if (!n)
		return 0;
	ret = read_at(q, sn_l1_offset(e), n * 8, false, (u8 **)&raw);
	if (ret)
		goto free_l1;
	for (i = 0; i < n; i++) {
		(*l1)[i] = be64_to_cpu(raw[i]);
		off = (*l1)[i] & QCOW2_OFFSET_MASK;
		if (((*l1)[i] & QCOW2_L1_RESERVED) || off % q->cluster_size ||
		    off >= q->alloc_end ||
		    (off && qcow2_overlaps_meta(q, off, q->cluster_size)))
			ret = -EINVAL;
	}
	kvfree(raw);
	if (!ret)
		return 0;
	DMERR_LIMIT("%s: snapshot delete: the snapshot's L1 table is corrupt; use qemu-img check",
		    q->path);
free_l1:
	kvfree(*l1);
	*l1 = NULL;
	return ret;
}

/*
 * After a delete: COPIED again on active L2 tables and clusters whose
 * refcount is back at 1 (qemu-img check wants the flag exactly there).
 */
static int fix_l2_copied(struct qcow2 *q, u64 l2off)
{
	struct qcow2_table *t;
	u64 e, off, ref;
	u32 j;
	int ret;

	ret = qcow2_cache_get(q, &q->l2c, l2off, false, &t);
	if (ret)
		return ret;
	for (j = 0; j < (1U << q->l2_bits); j++) {
		void *slot = t->data + ((size_t)j << q->l2_entry_shift);

		e = get_unaligned_be64(slot);
		off = e & QCOW2_OFFSET_MASK;
		if ((e & QCOW2_OFLAG_COMPRESSED) || !off ||
		    (e & QCOW2_OFLAG_COPIED))
			continue;
		ret = qcow2_get_refcount(q, off >> q->cluster_bits, &ref);
		if (ret)
			return ret;
		if (ref == 1) {
			put_unaligned_be64(e | QCOW2_OFLAG_COPIED, slot);
			qcow2_cache_mark_dirty(q, t);
		}
	}
	return 0;
}

static int fix_copied(struct qcow2 *q)
{
	u64 l2off, ref;
	u32 i;
	int ret;

	for (i = 0; i < q->l1_size; i++) {
		l2off = q->l1[i] & QCOW2_OFFSET_MASK;
		if (!l2off)
			continue;
		ret = qcow2_get_refcount(q, l2off >> q->cluster_bits, &ref);
		if (ret)
			return ret;
		if (ref != 1)
			continue;
		ret = fix_l2_copied(q, l2off);
		if (ret)
			return ret;
		cond_resched();
		if (!(q->l1[i] & QCOW2_OFLAG_COPIED)) {
			q->l1[i] |= QCOW2_OFLAG_COPIED;
			qcow2_l1_mark_dirty(q);
		}
	}
	return 0;
}

/* The current table without entry @idx, in new buffers. */
static int table_minus(struct qcow2 *q, u32 idx, u8 **raw, u32 **off)
{
	u32 nb = q->nb_snapshots, len = sn_table_len(q), i, elen;

	elen = q->snap_off[idx + 1] - q->snap_off[idx];
	*off = kvcalloc(nb, sizeof(u32), GFP_KERNEL);
	*raw = qcow2_alloc_buf(round_up(max(len - elen, 1U), 512));
	if (!*off || !*raw) {
		kvfree(*off);
		kvfree(*raw);
		return -ENOMEM;
	}
	memcpy(*raw, q->snap_raw, q->snap_off[idx]);
	memcpy(*raw + q->snap_off[idx], q->snap_raw + q->snap_off[idx + 1],
	       len - q->snap_off[idx + 1]);
	for (i = 0; i < nb; i++)
		(*off)[i] = i < idx ? q->snap_off[i] : q->snap_off[i + 1] - elen;
	return 0;
}

static int unshare_l1(struct qcow2 *q, const u64 *l1, u32 n)
{
	u64 l2off;
	u32 i;
	int ret;

	for (i = 0; i < n; i++) {
		l2off = l1[i] & QCOW2_OFFSET_MASK;
		if (!l2off)
			continue;
		cond_resched();
		ret = unshare_l2(q, l2off);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * Host ranges of the image's metadata, sorted and merged, for the checks
 * of a snapshot delete (QEMU's overlap-check=all, on the control path):
 * header, active L1, refcount table and blocks, snapshot table and every
 * snapshot's L1 table, bitmap directory and the tables of tracked
 * bitmaps; with @l2, the active L2 tables too.
 */
struct meta_ranges {
	struct meta_range { u64 start, end; } *r;
	u32 n;
};

static int meta_cmp(const void *a, const void *b)
{
	const struct meta_range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

static void meta_add(struct meta_ranges *m, u64 off, u64 len)
{
	if (len) {
		m->r[m->n].start = off;
		m->r[m->n++].end = off + len;
	}
}

static int build_ranges(struct qcow2 *q, bool l2, struct meta_ranges *m)
{
	u64 max = 8 + q->rt_entries + q->nb_snapshots + q->nr_bm +
		  (l2 ? q->l1_size : 0);
	u32 i, j;

	m->n = 0;
	m->r = kvmalloc_array(max, sizeof(*m->r), GFP_KERNEL);
	if (!m->r)
		return -ENOMEM;
	meta_add(m, 0, q->cluster_size);
	meta_add(m, q->l1_offset, (u64)q->l1_size * 8);
	meta_add(m, q->rt_offset, (u64)q->rt_clusters << q->cluster_bits);
	for (i = 0; i < q->rt_entries; i++)
		if (q->rt[i])
			meta_add(m, q->rt[i] & ~QCOW2_RT_RESERVED,
				  q->cluster_size);
	if (q->nb_snapshots)
		meta_add(m, q->snapshots_offset, q->snap_off[q->nb_snapshots]);
	for (i = 0; i < q->nb_snapshots; i++) {
		const u8 *e = sn_entry(q, i);

		meta_add(m, sn_l1_offset(e), (u64)sn_l1_size(e) * 8);
	}
	if (q->has_bitmaps)
		meta_add(m, q->bitmap_dir_offset, q->bitmap_dir_size);
	for (i = 0; i < q->nr_bm; i++)
		meta_add(m, q->bm[i].table_offset, (u64)q->bm[i].table_size * 8);
	for (i = 0; l2 && i < q->l1_size; i++)
		if (q->l1[i] & QCOW2_OFFSET_MASK)
			meta_add(m, q->l1[i] & QCOW2_OFFSET_MASK, q->cluster_size);
	sort(m->r, m->n, sizeof(*m->r), meta_cmp, NULL);
	for (i = 0, j = 0; i < m->n; i++) {
		if (j && m->r[i].start <= m->r[j - 1].end)
			m->r[j - 1].end = max(m->r[j - 1].end, m->r[i].end);
		else
			m->r[j++] = m->r[i];
	}
	m->n = j;
	return 0;
}

/* Does [off, off + len) touch a range of @m? */
static bool in_ranges(const struct meta_ranges *m, u64 off, u64 len)
{
	u32 lo = 0, hi = m->n;

	/* the first range that ends after @off */
	while (lo < hi) {
		u32 mid = lo + (hi - lo) / 2;

		if (m->r[mid].end <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < m->n && m->r[lo].start < off + len;
}

/* Every cluster of [off, off + len) has a reference to drop. */
static bool referenced(struct qcow2 *q, u64 off, u64 len)
{
	u64 c, ref;

	for (c = off >> q->cluster_bits; c <= (off + len - 1) >> q->cluster_bits; c++)
		if (qcow2_get_refcount(q, c, &ref) || !ref)
			return false;
	return true;
}

/* Check one L2 table of the deleted snapshot and what it points at. */
static int check_snap_l2(struct qcow2 *q, u64 l2off,
			 const struct meta_ranges *core,
			 const struct meta_ranges *all)
{
	struct qcow2_table *t;
	u64 e, off, len;
	u32 j;
	int ret;

	/* the snapshot's L2 table may be an active one: not in @core */
	if (in_ranges(core, l2off, q->cluster_size) ||
	    !referenced(q, l2off, q->cluster_size))
		goto bad;
	ret = qcow2_cache_get(q, &q->l2c, l2off, false, &t);
	if (ret)
		return ret;
	for (j = 0; j < (1U << q->l2_bits); j++) {
		e = get_unaligned_be64(t->data + ((size_t)j << q->l2_entry_shift));
		ret = entry_range(q, e, &off, &len);
		if (ret)
			return ret;
		if (len && (in_ranges(all, off, len) ||
			    !referenced(q, off, len))) {
			qcow2_corrupt(q, "snapshot delete: L2 entry %#llx of the table at %llu points at metadata or at a free cluster",
				      e, l2off);
			return -EIO;
		}
	}
	return 0;
bad:
	qcow2_corrupt(q, "snapshot delete: the snapshot's L2 table at %llu is metadata or free",
		      l2off);
	return -EIO;
}

/*
 * Before a delete changes anything: every L2 table of the snapshot and
 * every cluster they name must hold a reference to drop and must not be
 * metadata, so that a damaged snapshot can never make the delete punch or
 * free a refcount block, an L1 or L2 table in use.
 */
static int check_snap_delete(struct qcow2 *q, const u64 *l1, u32 n)
{
	struct meta_ranges core, all;
	u64 l2off;
	u32 i;
	int ret;

	ret = build_ranges(q, false, &core);
	if (ret)
		return ret;
	ret = build_ranges(q, true, &all);
	if (ret)
		goto free_core;
	for (i = 0; i < n && !ret; i++) {
		l2off = l1[i] & QCOW2_OFFSET_MASK;
		if (l2off)
			ret = check_snap_l2(q, l2off, &core, &all);
		cond_resched();
	}
	kvfree(all.r);
free_core:
	kvfree(core.r);
	return ret;
}

static int do_delete(struct qcow2 *q, u32 idx)
{
	const u8 *e = sn_entry(q, idx);
	u64 l1off = sn_l1_offset(e), *l1;
	u32 n = sn_l1_size(e), *off;
	u8 *raw;
	int ret;

	ret = qcow2_flush_meta(q);
	if (!ret)
		ret = load_snap_l1(q, e, &l1);
	if (ret)
		return ret;
	ret = check_snap_delete(q, l1, n);
	if (ret)
		goto free_l1;
	ret = table_minus(q, idx, &raw, &off);
	if (ret)
		goto free_l1;
	ret = replace_table(q, raw, off, q->nb_snapshots - 1);
	if (ret) {
		kvfree(raw);
		kvfree(off);
		goto free_l1;
	}
	/* the snapshot is gone for good: its clusters are at worst leaked */
	ret = unshare_l1(q, l1, n);
	if (!ret && n) {
		qcow2_meta_remove_range(q, l1off);
		ret = free_clusters(q, l1off, (u64)n * 8);
	}
	if (!ret)
		ret = fix_copied(q);
	if (!ret)
		ret = qcow2_flush_meta(q);
free_l1:
	kvfree(l1);
	return ret;
}

/* "snapshot delete TAG|ID": runs with guest I/O drained by the caller. */
int qcow2_snapshot_delete(struct qcow2 *q, const char *key)
{
	int idx, ret;

	if (q->ro) {
		DMERR_LIMIT("%s: snapshot delete: device is read-only", q->path);
		return -EROFS;
	}
	mutex_lock(&q->lock);
	idx = snap_find(q, key);
	if (idx < 0) {
		DMERR_LIMIT("%s: snapshot delete: no snapshot with tag or id '%s'",
			    q->path, key);
		ret = -ENOENT;
	} else {
		ret = do_delete(q, idx);
		if (ret)
			DMERR("%s: snapshot delete '%s' failed: %d", q->path,
			      key, ret);
	}
	mutex_unlock(&q->lock);
	return ret;
}
