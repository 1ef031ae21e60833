// SPDX-License-Identifier: GPL-2.0
/* qcow2-dm detach NAME */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "dm.h"
#include "holder.h"
#include "util.h"

/* libdevmapper's retries of a busy remove: 25, 200 ms apart */
#define REMOVE_TRIES	25
#define REMOVE_WAIT_MS	200

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " detach NAME\n"
		"\n"
		"Remove the qcow2 device NAME (the target writes back its metadata\n"
		"and marks the image clean), then release the image lock. A device\n"
		"still in use (mounted, open) is retried for %d seconds, then left\n"
		"attached with an error.\n"
		"\n"
		"  -h, --help   this text\n",
		REMOVE_TRIES * REMOVE_WAIT_MS / 1000);
}

/* Remove it (the library retries while busy), or say why not. */
static int remove_device(const char *name)
{
	if (!dm_remove(name, false) || dm_exists(name) == 0)
		return 0;
	fail_reason(EXIT_BUSY);
	return err("detach: %s is busy (mounted or held open?): not detached, "
		   "image still locked", name);
}

int cmd_detach(int argc, char **argv)
{
	char table[8192];

	if (wants_help(argc, argv)) {
		usage(stdout);
		return 0;
	}
	if (argc != 2)
		return err("detach: expected exactly one NAME (try --help)"), 2;
	if (!valid_dm_name(argv[1]))
		return err("detach: invalid device name '%s'", argv[1]), 2;
	if (dm_qcow2_table(argv[1], table, sizeof(table))) {
		/* no device: still drop a stale lock holder */
		if (holder_pid(argv[1]) > 0)
			holder_stop(argv[1]);
		return 1;
	}
	if (remove_device(argv[1]))
		return 1;
	return holder_stop(argv[1]) ? 1 : 0;
}
