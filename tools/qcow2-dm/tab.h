/* SPDX-License-Identifier: GPL-2.0 */
/*
 * /etc/qcow2-dm/tab: the images attached at boot (qcow2-dm@.service,
 * qcow2-dm-generator), one per line, like crypttab:
 *
 *   NAME  IMAGE  [OPTIONS]
 *
 * OPTIONS is "-" or a comma-separated list of ro, cache-mb=N and noauto
 * (not attached at boot). '#' starts a comment line. $QCOW2_DM_TAB names
 * another file.
 */
#ifndef QCOW2_DM_TAB_H
#define QCOW2_DM_TAB_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

struct tab_entry {
	char name[128];
	char image[PATH_MAX];
	bool ro;
	bool noauto;
	uint64_t cache_mb;	/* 0: the target's default */
};

/* The path of the tab file. */
const char *tab_path(void);

/*
 * Find the line of device @name in the tab: 0 and @e filled, -1 with a
 * message when the tab cannot be read, has no such line (fail reason
 * EXIT_NOT_FOUND) or that line is malformed.
 */
int tab_lookup(const char *name, struct tab_entry *e);

#endif
