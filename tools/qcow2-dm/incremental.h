/* SPDX-License-Identifier: GPL-2.0 */
/* The copy of an incremental backup (qcow2-dm backup --incremental). */
#ifndef QCOW2_DM_INCREMENTAL_H
#define QCOW2_DM_INCREMENTAL_H

#include <signal.h>
#include <stdint.h>

#include "qcow2.h"

/*
 * Create @out as a qcow2 overlay of @prev (the previous backup) and copy
 * into it, from the frozen chain of @image, every range whose bit is set
 * in @bm, through two dm-qcow2 devices named after @name. Stops early
 * when *@stop becomes non-zero. 0, or -1 with a message (@out is left for
 * the caller to remove).
 */
int incremental_copy(const char *name, const char *image, uint64_t size,
		     const struct qcow2_bitmap *bm, const char *prev,
		     const char *out, volatile sig_atomic_t *stop);

#endif
