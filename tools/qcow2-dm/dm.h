/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Device-mapper access through libdevmapper. When udev runs, the nodes
 * under /dev/mapper come from its rules and each call that adds or drops
 * one waits for them; without udev the library makes them itself.
 *
 * Each call returns 0 on success and -1 on failure, with the library's
 * reason printed (as dmsetup prints it) unless the call is told quiet.
 * The names share libdevmapper's dm_ prefix but none of its symbols.
 */
#ifndef QCOW2_DM_DM_H
#define QCOW2_DM_DM_H

#include <stdbool.h>
#include <stddef.h>

/* dmsetup create NAME --uuid UUID --table TABLE [--readonly]; the node. */
int dm_create(const char *name, const char *uuid, const char *table,
	      bool ro);

/* Load TABLE ("START LEN TARGET PARAMS" lines) as NAME's inactive table. */
int dm_reload(const char *name, const char *table);

/* Drop NAME's inactive table. */
int dm_clear(const char *name);

/* Suspend NAME: in-flight I/O completes, file systems on it freeze. */
int dm_suspend(const char *name);

/* Resume NAME, with its inactive table if one is loaded. */
int dm_resume(const char *name);

/*
 * Remove NAME and its node, retried for 5 s while it is busy. @force
 * first swaps in an "error" table, as dmsetup remove --force does.
 */
int dm_remove(const char *name, bool force);

/*
 * Send MSG to sector 0 of NAME; the target's reply, if any, in out
 * (NUL-terminated, ending in a newline, truncated to len; out may be NULL).
 */
int dm_message(const char *name, const char *msg, char *out, size_t len,
	       bool quiet);

/* NAME's table or status, one "START LEN TARGET ARGS\n" line a target. */
int dm_table(const char *name, char *out, size_t len, bool quiet);
int dm_status(const char *name, char *out, size_t len, bool quiet);

/* 1 when a device NAME exists, 0 when not, -1 on error. */
int dm_exists(const char *name);

/* 1 when NAME is suspended, 0 when active, -1 (with a message) on error. */
int dm_suspended(const char *name);

/*
 * Call fn(name, line, arg) for each qcow2 target line of each device,
 * in the kernel's order (line may be modified).
 */
int dm_list_qcow2(void (*fn)(const char *name, char *line, void *arg),
		  void *arg);

/*
 * The table of device NAME when it is a single qcow2 target, in buf; -1
 * (with a message) when it does not exist or is not a qcow2 device.
 */
int dm_qcow2_table(const char *name, char *buf, size_t len);

/*
 * The target's "bitmap list" message for device NAME into out: one line
 * per persistent dirty bitmap.
 */
int dm_bitmap_list(const char *name, char *out, size_t len, int quiet);

#endif
