/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The image, its external data file and its backing chain, every file
 * opened and locked by this process, so the table can name each one
 * explicitly.
 */
#ifndef QCOW2_DM_CHAIN_H
#define QCOW2_DM_CHAIN_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "qcow2.h"

#define CHAIN_MAX	16	/* the image plus at most 15 backing files */

struct chain_file {
	char path[PATH_MAX];	/* absolute, canonical */
	bool qcow2;		/* else raw */
	int fd;
};

struct chain {
	struct qcow2_info top;	/* header of the attached image */
	int n;			/* files[0] is the image itself */
	struct chain_file files[CHAIN_MAX];
	bool has_data;		/* the image has an external data file: */
	struct chain_file data;	/* it, raw; not in files[] */
};

/*
 * Open image (read-write unless ro), read its header, follow the backing
 * chain (names relative to the folder of the image that names them;
 * format from the backing format extension, else by probing the magic),
 * refusing loops, too-deep chains and anything not qcow2 or raw; open the
 * image's external data file (named like a backing file, read-write
 * unless ro), refusing one on a backing image; and lock every file the
 * way QEMU would. -1 with a message on any failure, with everything
 * closed again.
 */
int chain_open(struct chain *c, const char *image, bool ro);

/* Close every file (which drops the locks). */
void chain_close(struct chain *c);

#endif
