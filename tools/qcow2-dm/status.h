/* SPDX-License-Identifier: GPL-2.0 */
/* The dm-qcow2 target's table and status lines, as words. */
#ifndef QCOW2_DM_STATUS_H
#define QCOW2_DM_STATUS_H

#include <stddef.h>

/* The counters of the status line, after "0 <len> qcow2", in its order. */
extern const char *const status_keys[];
extern const size_t nr_status_keys;

/* Split @s in place at blanks into at most @max words; their count. */
int split(char *s, char **tok, int max);

#endif
