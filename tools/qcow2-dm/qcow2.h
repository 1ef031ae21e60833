/* SPDX-License-Identifier: GPL-2.0 */
/* The part of a qcow2 header that attaching an image needs. */
#ifndef QCOW2_DM_QCOW2_H
#define QCOW2_DM_QCOW2_H

#include <stdint.h>

#define QCOW2_MAGIC		0x514649fbu	/* "QFI\xfb" */
#define QCOW2_BACKING_MAX	1023		/* the spec's limit */
#define QCOW2_FMT_MAX		32

struct qcow2_info {
	uint32_t version;
	uint32_t cluster_bits;
	uint64_t size;			/* virtual size, bytes */
	uint64_t incompatible;		/* v3 only, 0 on v2 */
	uint32_t crypt_method;
	char backing[QCOW2_BACKING_MAX + 1];	/* "" when none */
	char backing_fmt[QCOW2_FMT_MAX + 1];	/* "" when no extension */
	/* external data file name (incompatible bit 2), "" when none */
	char data_file[QCOW2_BACKING_MAX + 1];
	uint64_t autoclear;		/* v3 only */
	uint32_t nb_bitmaps;		/* bitmaps extension, 0 when none */
	uint64_t bitmap_dir_offset, bitmap_dir_size;
};

/* One persistent dirty bitmap as read from an image (qcow2_bitmap_read). */
struct qcow2_bitmap {
	uint32_t gran_bits;		/* one bit per 1 << gran_bits bytes */
	uint64_t nbits;
	uint8_t *bits;			/* bit i: bits[i / 8] & 1 << i % 8 */
};

/* Does the file behind fd start with the qcow2 magic? 1 yes, 0 no, -1 error. */
int qcow2_probe(int fd);

/*
 * Read and sanity-check the header of the image open on fd. Prints a clear
 * message naming `path` and returns -1 on anything this tool cannot attach
 * (not qcow2, unknown version, unreadable backing or data file name); the
 * kernel target does the full validation of the rest.
 */
int qcow2_read_info(int fd, const char *path, struct qcow2_info *info);

/*
 * Read the dirty bitmap @name of the image open on @fd (whose header is
 * @info). 0: read into @bm (free bm->bits); 1: no such bitmap; -1 with a
 * message: in use (inconsistent), not a dirty bitmap, or damaged.
 */
int qcow2_bitmap_read(int fd, const char *path, const struct qcow2_info *info,
		      const char *name, struct qcow2_bitmap *bm);

/* Is bit @i of @bm set? */
static inline int qcow2_bitmap_test(const struct qcow2_bitmap *bm, uint64_t i)
{
	return bm->bits[i >> 3] >> (i & 7) & 1;
}

#endif
