// SPDX-License-Identifier: GPL-2.0
/*
 * qcow2 header reader: big-endian header fields (v2: 72 bytes, v3: at least
 * 104), the backing file name, and the backing format, bitmaps and external
 * data file header extensions.
 * Every value comes from a file that may be hostile: all offsets and
 * lengths are bounds-checked before use.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qcow2.h"
#include "util.h"

#define HDR_V2_LEN		72
#define HDR_V3_MIN_LEN		104
#define EXT_END			0x00000000u
#define EXT_BACKING_FMT		0xe2792acau
#define EXT_BITMAPS		0x23852875u
#define EXT_DATA_FILE		0x44415441u	/* "DATA" */
#define AUTOCLEAR_BITMAPS	(1ull << 0)
#define BME_IN_USE		(1u << 0)
#define BME_OFFSET_MASK		0x00fffffffffffe00ull
#define BME_MAX_BYTES		(256ull << 20)
#define EXT_AREA_MAX		65536	/* extensions must end in cluster 0 */
#define INCOMPAT_DIRTY		(1ull << 0)
#define INCOMPAT_DATA_FILE	(1ull << 2)

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const unsigned char *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

/* pread exactly len bytes; 0 ok, 1 short (EOF), -1 error. */
static int read_full(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done,
				  (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return 1;
		done += n;
	}
	return 0;
}

int qcow2_probe(int fd)
{
	unsigned char m[4];
	int r = read_full(fd, m, sizeof(m), 0);

	if (r < 0)
		return -1;
	return r == 0 && be32(m) == QCOW2_MAGIC;
}

static int read_backing_name(int fd, const char *path, const unsigned char *h,
			     struct qcow2_info *info)
{
	uint64_t off = be64(h + 8);
	uint32_t len = be32(h + 16);
	int r;

	if (!off)
		return 0;
	if (len == 0 || len > QCOW2_BACKING_MAX)
		return err("%s: backing file name length %u is invalid", path,
			   len);
	r = read_full(fd, info->backing, len, off);
	if (r)
		return r < 0 ? err_errno("%s: reading backing file name", path)
			     : err("%s: backing file name lies past the end of the file",
				   path);
	info->backing[len] = '\0';
	if (strlen(info->backing) != len)
		return err("%s: backing file name contains a NUL byte", path);
	return 0;
}

/*
 * The external data file name: @len bytes at @off, not NUL-terminated.
 * Ignored, as QEMU does, unless the incompatible bit says it is used.
 */
static int read_data_file_name(int fd, const char *path, uint64_t off,
			       uint32_t len, struct qcow2_info *info)
{
	if (!(info->incompatible & INCOMPAT_DATA_FILE))
		return 0;
	if (len > QCOW2_BACKING_MAX)
		return err("%s: data file name length %u is invalid (at most %d)",
			   path, len, QCOW2_BACKING_MAX);
	if (read_full(fd, info->data_file, len, off))
		return err("%s: cannot read the data file name extension", path);
	info->data_file[len] = '\0';
	if (strlen(info->data_file) != len)
		return err("%s: data file name contains a NUL byte", path);
	return 0;
}

/* Walk the header extensions: backing format, bitmaps, data file name. */
static int read_extensions(int fd, const char *path, uint64_t start,
			   struct qcow2_info *info)
{
	uint64_t off = start, end = (uint64_t)1 << info->cluster_bits;
	unsigned char e[8];

	if (end > EXT_AREA_MAX)
		end = EXT_AREA_MAX;
	while (off + 8 <= end) {
		uint32_t type, len;
		int r = read_full(fd, e, 8, off);

		if (r)
			return r < 0 ? err_errno("%s: reading header extensions", path)
				     : 0;	/* tiny file: no extensions */
		type = be32(e);
		len = be32(e + 4);
		if (type == EXT_END)
			return 0;
		if (len > end - off - 8)
			return err("%s: header extension 0x%08x overruns the first cluster",
				   path, type);
		if (type == EXT_BACKING_FMT) {
			if (len == 0 || len > QCOW2_FMT_MAX)
				return err("%s: backing format extension has bad length %u",
					   path, len);
			r = read_full(fd, info->backing_fmt, len, off + 8);
			if (r)
				return err("%s: cannot read the backing format extension",
					   path);
			info->backing_fmt[len] = '\0';
		}
		if (type == EXT_BITMAPS && len >= 24) {
			unsigned char b[24];

			if (read_full(fd, b, sizeof(b), off + 8))
				return err("%s: cannot read the bitmaps extension",
					   path);
			info->nb_bitmaps = be32(b);
			info->bitmap_dir_size = be64(b + 8);
			info->bitmap_dir_offset = be64(b + 16);
		}
		if (type == EXT_DATA_FILE &&
		    read_data_file_name(fd, path, off + 8, len, info))
			return -1;
		off += 8 + (((uint64_t)len + 7) & ~7ull);
	}
	return 0;
}

int qcow2_read_info(int fd, const char *path, struct qcow2_info *info)
{
	unsigned char h[HDR_V3_MIN_LEN];
	uint64_t ext_start;
	int r;

	memset(info, 0, sizeof(*info));
	r = read_full(fd, h, HDR_V2_LEN, 0);
	if (r < 0)
		return err_errno("%s: reading the header", path);
	if (r > 0 || be32(h) != QCOW2_MAGIC)
		return err("%s: not a qcow2 image (bad magic)", path);
	info->version = be32(h + 4);
	if (info->version != 2 && info->version != 3)
		return err("%s: unsupported qcow2 version %u (2 and 3 are supported)",
			   path, info->version);
	info->cluster_bits = be32(h + 20);
	if (info->cluster_bits < 9 || info->cluster_bits > 21)
		return err("%s: cluster_bits %u out of range 9..21", path,
			   info->cluster_bits);
	info->size = be64(h + 24);
	info->crypt_method = be32(h + 32);
	ext_start = HDR_V2_LEN;
	if (info->version == 3) {
		r = read_full(fd, h + HDR_V2_LEN, HDR_V3_MIN_LEN - HDR_V2_LEN,
			      HDR_V2_LEN);
		if (r)
			return err("%s: truncated qcow2 v3 header", path);
		info->incompatible = be64(h + 72);
		info->autoclear = be64(h + 88);
		ext_start = be32(h + 100);
		if (ext_start < HDR_V3_MIN_LEN || ext_start % 8)
			return err("%s: bad header_length %llu", path,
				   (unsigned long long)ext_start);
	}
	if (info->crypt_method)
		return err("%s: encrypted images are not supported", path);
	if (info->incompatible & INCOMPAT_DIRTY)
		return err("%s: image is dirty (lazy refcounts were not flushed): "
			   "run 'qemu-img check -r all %s' first", path, path);
	if (read_backing_name(fd, path, h, info))
		return -1;
	if (read_extensions(fd, path, ext_start, info))
		return -1;
	if ((info->incompatible & INCOMPAT_DATA_FILE) && !info->data_file[0])
		return err("%s: image has an external data file (incompatible "
			   "bit 2) but does not name it", path);
	return 0;
}

/* Find directory entry @name in @dir (@len bytes, @nb entries): its offset. */
static long find_bitmap(const unsigned char *dir, uint64_t len, uint32_t nb,
			const char *name)
{
	uint64_t off = 0;
	uint32_t i;

	for (i = 0; i < nb; i++) {
		uint32_t extra, nlen;

		if (off + 24 > len)
			return -2;
		nlen = (uint32_t)dir[off + 18] << 8 | dir[off + 19];
		extra = be32(dir + off + 20);
		if (24 + (uint64_t)extra + nlen > len - off)
			return -2;
		if (nlen == strlen(name) &&
		    !memcmp(dir + off + 24 + extra, name, nlen))
			return (long)off;
		off += (24 + (uint64_t)extra + nlen + 7) & ~7ull;
	}
	return -1;
}

static int read_bitmap_data(int fd, const char *path, const char *name,
			    const unsigned char *e, uint64_t size,
			    uint32_t cluster_bits, struct qcow2_bitmap *bm)
{
	uint64_t tsize = be32(e + 8), toff = be64(e), bytes, i;
	uint64_t csize = (uint64_t)1 << cluster_bits;
	unsigned char *table;

	bm->gran_bits = e[17];
	if (e[16] != 1 || bm->gran_bits < 9 || bm->gran_bits > 31)
		return err("%s: bitmap '%s' is not a dirty bitmap QEMU can use",
			   path, name);
	bm->nbits = (size + ((uint64_t)1 << bm->gran_bits) - 1) >> bm->gran_bits;
	bytes = (bm->nbits + 7) / 8;
	if (bytes > BME_MAX_BYTES || tsize != (bytes + csize - 1) / csize)
		return err("%s: bitmap '%s': table size does not match", path,
			   name);
	table = malloc(tsize * 8 + 1);
	bm->bits = calloc(1, bytes + csize);
	if (!table || !bm->bits)
		goto fail;
	if (read_full(fd, table, tsize * 8, toff))
		goto fail;
	for (i = 0; i < tsize; i++) {
		uint64_t ent = be64(table + i * 8), off = ent & BME_OFFSET_MASK;

		if (!off) {
			if (ent & 1)
				memset(bm->bits + i * csize, 0xff, csize);
			continue;
		}
		if (read_full(fd, bm->bits + i * csize, csize, off) < 0)
			goto fail;
	}
	free(table);
	return 0;
fail:
	free(table);
	free(bm->bits);
	bm->bits = NULL;
	return err("%s: cannot read bitmap '%s'", path, name);
}

int qcow2_bitmap_read(int fd, const char *path, const struct qcow2_info *info,
		      const char *name, struct qcow2_bitmap *bm)
{
	uint64_t len = info->bitmap_dir_size;
	unsigned char *dir;
	long off;
	int r;

	memset(bm, 0, sizeof(*bm));
	if (!info->nb_bitmaps || !(info->autoclear & AUTOCLEAR_BITMAPS))
		return 1;
	if (len < 24 || len > (64u << 20))
		return err("%s: bitmap directory size invalid", path);
	dir = malloc(len);
	if (!dir)
		return err("out of memory");
	if (read_full(fd, dir, len, info->bitmap_dir_offset)) {
		free(dir);
		return err("%s: cannot read the bitmap directory", path);
	}
	off = find_bitmap(dir, len, info->nb_bitmaps, name);
	if (off == -2)
		r = err("%s: bitmap directory damaged", path);
	else if (off < 0)
		r = 1;
	else if (be32(dir + off + 12) & BME_IN_USE)
		r = err("%s: bitmap '%s' is inconsistent (in use: the image was "
			"not closed cleanly, or is being written)", path, name);
	else
		r = read_bitmap_data(fd, path, name, dir + off, info->size,
				     info->cluster_bits, bm);
	free(dir);
	return r;
}
