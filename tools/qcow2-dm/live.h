/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Operations on a live qcow2-dm device: read its table, run qemu-img,
 * switch the device onto another chain under suspend. Each returns 0 on
 * success and -1 with a message on failure (live_run: the exit status).
 */
#ifndef QCOW2_DM_LIVE_H
#define QCOW2_DM_LIVE_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "chain.h"

/* every file of a chain and its data file, each with a keyword or two */
#define TABLE_MAX	((CHAIN_MAX + 1) * (PATH_MAX + 16) + 256)

/* What a device's table says: "0 <sectors> qcow2 <image> [opts]". */
struct live_table {
	char image[PATH_MAX];
	char backing[PATH_MAX];		/* first backing file, "" if none */
	char backing_fmt[8];		/* "qcow2" or "raw" */
	char data_file[PATH_MAX];	/* external data file, "" if none */
	uint64_t sectors;
	uint64_t cache_mb;
	bool ro;
};

/* Parse the table of @name (modified in place) into @lt. */
int live_parse(const char *name, char *table, struct live_table *lt);

/* The table of device @name, parsed. */
int live_get(const char *name, struct live_table *lt);

/*
 * Run argv[0] from PATH and wait: its exit status, -1 if it did not run.
 * Once live_catch_stops() ran, a SIGINT, SIGTERM or SIGHUP is recorded in
 * live_stop and passed on to the child (a qemu-img copy ends early), and
 * the caller decides how to stop on a consistent chain.
 */
int live_run(char *const argv[]);
extern volatile sig_atomic_t live_stop;
void live_catch_stops(void);
/* SIGINT, SIGTERM and SIGHUP caught by @fn instead (backup's own record). */
void live_catch_stops_with(void (*fn)(int));
/* Pass @sig on to the child live_run() waits for, if any (signal-safe). */
void live_kill_child(int sig);

/*
 * Hold SIGINT, SIGTERM and SIGHUP while a device is suspended: dying there
 * would leave every user of the device stuck. Children started meanwhile
 * inherit the mask and finish; the signal arrives at the unblock.
 */
void live_stops_block(sigset_t *old);
void live_stops_unblock(const sigset_t *old);

/* qemu-img create NEW as an overlay of @lt's image (which is not opened). */
int live_create_overlay(const char *newp, const struct live_table *lt);

/* Start the lock holder of @name on @image's chain. */
int live_hold(const char *name, const char *image);

int live_load(const char *name, const char *image, const char *backing,
	      uint64_t cache_mb);
int live_rollback(const char *name, const struct live_table *lt);

/*
 * Create @name with @table and the DM UUID QCOW2-@name, and its node; the
 * kernel's reason when it refuses the table.
 */
int live_create_device(const char *name, const char *table, bool ro);

/* Load an "error" table into suspended @name: its image changed under it. */
void live_fence(const char *name, uint64_t sectors);

/* Suspend, switch the device onto overlay @newp of its image, resume. */
int live_switch(const char *name, const char *newp,
		const struct live_table *lt);

struct op_state;

/*
 * Commit the top image of @name into its backing file online and reload
 * the device on the backing file (qcow2-dm merge). With @outer (a backup
 * merging its overlay back) the steps are recorded in it, and a failure
 * is left for the caller to recover; else in a state of its own.
 */
int live_merge(const char *name, bool quiet, struct op_state *outer);

#endif
