// SPDX-License-Identifier: GPL-2.0
/*
 * qcow2-dm snapshot NAME --external NEW.qcow2
 *
 * An external snapshot of a live device: NEW becomes the device's image,
 * an overlay whose backing file is the image the device had, which from
 * then on is only read. The switch is suspend (dm-qcow2 makes everything
 * durable and no bio is in flight), reload, resume, so no write is lost or
 * reordered: every write completed before the suspend is in the old
 * image, every later one goes to NEW.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "live.h"
#include "state.h"
#include "util.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " snapshot NAME --external NEW.qcow2\n"
		"\n"
		"Take an external snapshot of the attached device NAME: create the\n"
		"qcow2 overlay NEW.qcow2 on top of the device's image and switch the\n"
		"live device onto it (suspend, reload, resume). The old image keeps\n"
		"the content the device had at the switch and is from then on only\n"
		"read, as a backing file; writes go to NEW.qcow2. NEW.qcow2 must not\n"
		"exist; it names its backing file by absolute path. Each step is\n"
		"recorded for '" PROG " recover'.\n"
		"\n"
		"  -h, --help   this text\n");
}

int cmd_snapshot_external(int argc, char **argv)
{
	static struct op_state sto;
	char newp[PATH_MAX];
	const char *name = NULL, *arg = NULL;
	struct live_table lt;
	struct stat st;
	int i;

	if (wants_help(argc, argv)) {
		usage(stdout);
		return 0;
	}
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--external") && i + 1 < argc)
			arg = argv[++i];
		else if (argv[i][0] != '-' && !name)
			name = argv[i];
		else
			return err("snapshot: unexpected argument '%s' (try --help)",
				   argv[i]), 2;
	}
	if (!name || !arg)
		return err("snapshot: need NAME and --external NEW.qcow2 (try --help)"), 2;
	if (!valid_dm_name(name))
		return err("snapshot: invalid device name '%s'", name), 2;
	if (live_get(name, &lt))
		return 1;
	if (lt.ro)
		return err("snapshot: %s is read-only: nothing to snapshot", name), 1;
	if (!stat(arg, &st) || errno != ENOENT)
		return err("snapshot: %s already exists", arg), 1;
	if (abs_path_new(arg, newp, sizeof(newp)))
		return 1;
	memset(&sto, 0, sizeof(sto));
	sto.op = OP_EXTERNAL;
	snprintf(sto.name, sizeof(sto.name), "%s", name);
	snprintf(sto.image, sizeof(sto.image), "%s", lt.image);
	snprintf(sto.overlay, sizeof(sto.overlay), "%s", newp);
	sto.cache_mb = lt.cache_mb;
	live_catch_stops();
	if (state_begin(&sto))
		return 1;
	if (live_create_overlay(newp, &lt))
		goto remove_new;	/* it did not exist: a partial one may */
	if (live_stop) {
		err("snapshot: stopped by signal %d", (int)live_stop);
		goto remove_new;
	}
	if (state_step(&sto, ST_OVERLAY_CREATED))
		goto remove_new;
	if (live_switch(name, newp, &lt)) {
		/* the device runs on the old image again: nothing to finish */
		if (state_step(&sto, ST_BEGIN))
			return 1;
		goto remove_new;
	}
	if (state_step(&sto, ST_SWITCHED))
		err("snapshot: %s runs on %s; run '" PROG " recover %s'",
		    name, newp, name);
	else
		state_end(&sto);
	printf("%s\n", newp);
	return 0;
remove_new:
	unlink(newp);
	state_end(&sto);
	return 1;
}
