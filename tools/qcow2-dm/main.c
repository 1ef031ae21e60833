// SPDX-License-Identifier: GPL-2.0
/*
 * qcow2-dm: attach QCOW2 images as device-mapper "qcow2" targets.
 * This file only dispatches to the commands.
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "holder.h"
#include "util.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " COMMAND [ARGS]\n"
		"\n"
		"Expose QCOW2 image files as block devices through the dm-qcow2\n"
		"device-mapper target.\n"
		"\n"
		"commands:\n"
		"  attach IMAGE [NAME] [--ro] [--cache-mb N] [--force]\n"
		"                  lock IMAGE, create /dev/mapper/NAME, print its path\n"
		"  detach NAME     remove the device, release the image lock\n"
		"  list [--json]   attached qcow2 devices and their images\n"
		"  info [--json] NAME\n"
		"                  image, backing chain and status of a device\n"
		"  snapshot NAME create|delete|list [TAG]\n"
		"                  internal snapshots of an attached device\n"
		"  snapshot IMAGE revert TAG\n"
		"                  revert a detached image to a snapshot\n"
		"  snapshot NAME --external NEW.qcow2\n"
		"                  switch the live device onto a new overlay\n"
		"  merge NAME      commit the top image into its backing file, online\n"
		"  backup NAME OUT [--format qcow2|raw] [--bitmap B [--incremental PREV]]\n"
		"                  point-in-time copy of the live device into OUT\n"
		"  bitmap NAME list|add|remove|clear [BITMAP]\n"
		"                  persistent dirty bitmaps of an attached device\n"
		"  recover NAME|IMAGE [--dry-run]\n"
		"                  finish or undo a live operation a crash interrupted\n"
		"\n"
		"'" PROG " COMMAND --help' describes each command;\n"
		"'" PROG " --version' prints the version.\n"
		"\n"
		"exit status: 0 done, 1 failed, 2 usage error, 3 not found (device,\n"
		"image or backing file), 4 busy (image locked by another process,\n"
		"device in use, name taken), 5 an interrupted live operation needs\n"
		"'" PROG " recover'.\n");
}

static int run(int argc, char **argv)
{
	const char *cmd;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	cmd = argv[1];
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") ||
	    !strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
		printf(PROG " %s\n", QCOW2_DM_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "attach"))
		return cmd_attach(argc - 1, argv + 1);
	if (!strcmp(cmd, "detach"))
		return cmd_detach(argc - 1, argv + 1);
	if (!strcmp(cmd, "list"))
		return cmd_list(argc - 1, argv + 1);
	if (!strcmp(cmd, "info"))
		return cmd_info(argc - 1, argv + 1);
	if (!strcmp(cmd, "snapshot")) {
		int i;

		for (i = 2; i < argc; i++)
			if (!strcmp(argv[i], "--external"))
				return cmd_snapshot_external(argc - 1, argv + 1);
		return cmd_snapshot(argc - 1, argv + 1);
	}
	if (!strcmp(cmd, "backup"))
		return cmd_backup(argc - 1, argv + 1);
	if (!strcmp(cmd, "bitmap"))
		return cmd_bitmap(argc - 1, argv + 1);
	if (!strcmp(cmd, "merge"))
		return cmd_merge(argc - 1, argv + 1);
	if (!strcmp(cmd, "recover"))
		return cmd_recover(argc - 1, argv + 1);
	if (!strcmp(cmd, "hold"))
		return cmd_hold(argc - 1, argv + 1);
	err("unknown command '%s' (try '" PROG " --help')", cmd);
	return EXIT_USAGE;
}

int main(int argc, char **argv)
{
	return exit_status(run(argc, argv));
}
