// SPDX-License-Identifier: GPL-2.0
/*
 * qcow2-compress.c: reading compressed clusters, deflate (raw, window
 * bits 12, as QEMU writes it) and zstd. Serialised by q->zlock, which
 * also protects the buffers and the last decompressed cluster (q->zbuf).
 */
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/zlib.h>
#include <linux/zstd.h>
#include "qcow2.h"
#include "compat.h"

static size_t zstd_window(struct qcow2 *q)
{
	return max_t(size_t, q->cluster_size, 1U << 17);
}

static int alloc_buffers(struct qcow2 *q)
{
	size_t ws;

	if (q->zbuf)
		return 0;
	if (q->compression_type == QCOW2_COMPR_ZSTD)
		ws = zstd_dstream_workspace_bound(zstd_window(q));
	else
		ws = zlib_inflate_workspacesize();
	q->cbuf_size = 2 * (size_t)q->cluster_size + 512;
	q->zws = kvzalloc(ws, GFP_KERNEL);
	q->cbuf = qcow2_alloc_buf(q->cbuf_size);
	q->zbuf = qcow2_alloc_buf(q->cluster_size);
	if (q->zws && q->cbuf && q->zbuf)
		return 0;
	qcow2_compress_free(q);
	return -ENOMEM;
}

void qcow2_compress_free(struct qcow2 *q)
{
	kvfree(q->zws);
	kvfree(q->cbuf);
	kvfree(q->zbuf);
	q->zws = NULL;
	q->cbuf = NULL;
	q->zbuf = NULL;
	q->zentry = 0;
}

static int inflate_deflate(struct qcow2 *q, void *in, size_t len)
{
	struct z_stream_s s = {};
	int ret;

	s.workspace = q->zws;
	if (zlib_inflateInit2(&s, -12) != Z_OK)
		return -EIO;
	s.next_in = in;
	s.avail_in = len;
	s.next_out = q->zbuf;
	s.avail_out = q->cluster_size;
	ret = zlib_inflate(&s, Z_FINISH);
	zlib_inflateEnd(&s);
	if ((ret == Z_STREAM_END || ret == Z_BUF_ERROR) && !s.avail_out)
		return 0;
	return -EIO;
}

static int inflate_zstd(struct qcow2 *q, void *in, size_t len)
{
	zstd_in_buffer ib = { .src = in, .size = len, .pos = 0 };
	zstd_out_buffer ob = { .dst = q->zbuf, .size = q->cluster_size };
	zstd_dstream *ds;
	size_t ret;

	ds = zstd_init_dstream(zstd_window(q), q->zws,
			       zstd_dstream_workspace_bound(zstd_window(q)));
	if (!ds)
		return -EIO;
	while (ob.pos < ob.size) {
		size_t before_in = ib.pos, before_out = ob.pos;

		ret = zstd_decompress_stream(ds, &ob, &ib);
		if (zstd_is_error(ret))
			return -EIO;
		if (!ret || (ib.pos == before_in && ob.pos == before_out))
			break;
	}
	return ob.pos == ob.size ? 0 : -EIO;
}

/* Decompress the cluster described by L2 entry @entry into q->zbuf. */
int qcow2_decompress(struct qcow2 *q, u64 entry)
{
	u64 coff, csize, start, fend;
	size_t want;
	ssize_t got;
	int ret;

	qcow2_compressed_range(q, entry, &coff, &csize);
	start = round_down(coff, 512);
	fend = round_up(qcow2_file_size(q->file), 512);
	want = csize + (coff & 511);	/* whole sectors from start */

	if (coff >= fend || qcow2_overlaps_meta(q, coff, csize)) {
		qcow2_err(q, "compressed cluster at %llu beyond end of file or in metadata",
			  coff);
		return -EIO;
	}
	ret = alloc_buffers(q);
	if (ret)
		return ret;
	want = min_t(u64, want, fend - start);
	got = qcow2_file_io(q->file, q->cbuf, want, start, false);
	if (got < 0) {
		qcow2_err(q, "reading compressed cluster at %llu failed", coff);
		return got;
	}
	memset(q->cbuf + got, 0, q->cbuf_size - got);
	if (q->compression_type == QCOW2_COMPR_ZSTD)
		ret = inflate_zstd(q, q->cbuf + (coff & 511), csize);
	else
		ret = inflate_deflate(q, q->cbuf + (coff & 511), csize);
	if (ret)
		qcow2_err(q, "corrupt compressed cluster at %llu", coff);
	return ret;
}
