/* SPDX-License-Identifier: GPL-2.0 */
/* The dm-qcow2 table line for an opened chain. */
#ifndef QCOW2_DM_TABLE_H
#define QCOW2_DM_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chain.h"

/*
 * "0 <sectors> qcow2 <image> [<#opt> ro cache_mb N data_file <path>
 *  backing <fmt> <path>...]"
 * cache_mb 0 means the target's default. -1 with a message on error.
 */
int table_build(const struct chain *c, bool ro, uint64_t cache_mb,
		char *buf, size_t len);

#endif
