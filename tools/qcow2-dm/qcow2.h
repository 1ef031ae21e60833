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
};

/* Does the file behind fd start with the qcow2 magic? 1 yes, 0 no, -1 error. */
int qcow2_probe(int fd);

/*
 * Read and sanity-check the header of the image open on fd. Prints a clear
 * message naming `path` and returns -1 on anything this tool cannot attach
 * (not qcow2, unknown version, unreadable backing name); the kernel target
 * does the full validation of the rest.
 */
int qcow2_read_info(int fd, const char *path, struct qcow2_info *info);

#endif
