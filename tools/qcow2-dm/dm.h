/* SPDX-License-Identifier: GPL-2.0 */
/* Device-mapper access by running dmsetup(8). */
#ifndef QCOW2_DM_DM_H
#define QCOW2_DM_DM_H

#include <stddef.h>

/*
 * Run dmsetup with argv (argv[0] is "dmsetup"; the binary run is $DMSETUP,
 * else "dmsetup" on PATH), udev disabled so the
 * /dev/mapper nodes are made by dmsetup itself. When out is not NULL the
 * standard output is captured there (NUL-terminated, truncated to len);
 * stderr goes to ours unless quiet. Returns dmsetup's exit status, or -1
 * when it could not run.
 */
int dm_run(char *const argv[], char *out, size_t len, int quiet);

/* 1 when a device NAME exists, 0 when not, -1 on error. */
int dm_exists(const char *name);

/*
 * The table of device NAME when it is a single qcow2 target, in buf; -1
 * (with a message) when it does not exist or is not a qcow2 device.
 */
int dm_qcow2_table(const char *name, char *buf, size_t len);

/*
 * The target's "bitmap list" message for device NAME into out: one line
 * per persistent dirty bitmap. dmsetup's exit status, as dm_run().
 */
int dm_bitmap_list(const char *name, char *out, size_t len, int quiet);

#endif
