// SPDX-License-Identifier: GPL-2.0
/* qcow2-dm snapshot NAME create|delete|list TAG, snapshot IMAGE|NAME revert TAG */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "commands.h"
#include "dm.h"
#include "holder.h"
#include "kmsg.h"
#include "live.h"
#include "util.h"

#define LIST_MAX	(1 << 20)

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " snapshot NAME create TAG\n"
		"       " PROG " snapshot NAME delete TAG|ID\n"
		"       " PROG " snapshot NAME list\n"
		"       " PROG " snapshot IMAGE|NAME revert TAG|ID\n"
		"       " PROG " snapshot NAME --external NEW.qcow2   (see: snapshot --external --help)\n"
		"\n"
		"Internal (QEMU-compatible) snapshots of the attached qcow2 device\n"
		"NAME, taken while it is in use: guest I/O pauses for the time the\n"
		"snapshot takes, then resumes. 'qemu-img snapshot -l' lists them and\n"
		"'qemu-img convert -l snapshot.name=TAG' reads them.\n"
		"\n"
		"  create TAG   new snapshot; TAG: 1..128 printable characters, no\n"
		"               blanks or backslash, not only digits (ids are)\n"
		"  delete TAG   remove the snapshot with that tag (else that id)\n"
		"  list         one line per snapshot: ID TAG VIRTUAL-SIZE DATE\n"
		"               (bytes; UTC, ISO 8601)\n"
		"  revert TAG   make the snapshot the current content (runs\n"
		"               'qemu-img snapshot -a') of a DETACHED image file,\n"
		"               or of a SUSPENDED device NAME ('dmsetup suspend\n"
		"               NAME' first): its table is reloaded on the reverted\n"
		"               image and it stays suspended until 'dmsetup resume'\n"
		"\n"
		"  -h, --help   this text\n"
		"\n"
		"Exit status: 0 done, 1 refused or failed (the reason is printed),\n"
		"2 usage error, 3 no such device or image, 4 busy (image locked\n"
		"by another process).\n");
}

/* Message "snapshot OP [TAG]" to NAME; the kernel's reason on failure. */
static int message(const char *name, const char *op, const char *tag,
		   char *out, size_t len)
{
	char msg[4096];
	int kfd;

	if (snprintf(msg, sizeof(msg), "snapshot %s%s%s", op, tag ? " " : "",
		     tag ? tag : "") >= (int)sizeof(msg))
		return err("snapshot %s: tag too long", op);
	kfd = kmsg_open();
	if (!dm_message(name, msg, out, len, true)) {
		if (kfd >= 0)
			close(kfd);
		return 0;
	}
	err("snapshot %s: %s: the target refused or failed", op, name);
	if (!kmsg_report(kfd, name))
		err("snapshot %s: no reason logged", op);
	return -1;
}

/*
 * Revert a suspended device. At suspend the target completed every bio
 * and wrote back its metadata and dirty bitmaps, and it sends nothing
 * while suspended; qemu-img reverts the image under its own locks, then a
 * fresh table is loaded that reads the reverted metadata. The old table (clean caches:
 * its last flush writes nothing) goes at the user's resume, and the bios
 * queued meanwhile go to the new one.
 */
static int revert_suspended(const char *name, const char *tag)
{
	static struct live_table lt;
	char *argv[] = { "qemu-img", "snapshot", "-a", (char *)tag,
			 lt.image, NULL };
	bool failed;

	if (live_get(name, &lt))
		return 1;
	if (lt.ro)
		return err("snapshot revert: %s is read-only", name), 1;
	holder_stop(name);
	failed = live_run(argv) != 0;
	/*
	 * A fresh table either way: even a failed qemu-img may have rewritten
	 * the bitmap directory, which the old table would write again.
	 */
	if (sync_path(lt.image) || live_load(name, lt.image, NULL, lt.cache_mb)) {
		live_fence(name, lt.sectors);
		return err("snapshot revert: %s could not be reloaded on %s: "
			   "detach %s and attach the image again", name,
			   lt.image, name), 1;
	}
	if (failed)
		return err("snapshot revert: qemu-img could not revert %s to "
			   "'%s' (no such snapshot?): %s unchanged, still "
			   "suspended", lt.image, tag, name), 1;
	fprintf(stderr, PROG ": snapshot revert: %s reverted to '%s'; %s stays "
		"suspended until 'dmsetup resume %s'\n", lt.image, tag, name,
		name);
	return 0;
}

/* A detached image: qemu-img does it, under its lock; or a suspended device. */
static int revert(const char *image, const char *tag)
{
	char *argv[] = { "qemu-img", "snapshot", "-a", (char *)tag,
			 (char *)image, NULL };
	struct stat st;
	int susp;

	if (valid_dm_name(image) && dm_exists(image) == 1) {
		susp = dm_suspended(image);
		if (susp < 0)
			return 1;
		if (!susp)
			return err("snapshot revert: %s is attached and running: "
				   "suspend it first ('dmsetup suspend %s'), or "
				   "detach it and run '" PROG " snapshot IMAGE "
				   "revert %s'", image, image, tag), 1;
		return revert_suspended(image, tag);
	}
	if (stat(image, &st) || !S_ISREG(st.st_mode))
		return err("snapshot revert: %s is not an image file", image), 1;
	if (live_run(argv))
		return err("snapshot revert: qemu-img could not revert %s to "
			   "'%s' (attached elsewhere, or no such snapshot?)",
			   image, tag), 1;
	return 0;
}

static int list(const char *name)
{
	static char out[LIST_MAX];

	if (message(name, "list", NULL, out, sizeof(out)))
		return 1;
	fputs(out, stdout);
	return 0;
}

int cmd_snapshot(int argc, char **argv)
{
	char table[8192];
	const char *name, *op;

	if (wants_help(argc, argv)) {
		usage(stdout);
		return 0;
	}
	if (argc < 3)
		return err("snapshot: expected NAME and an operation (try --help)"), 2;
	name = argv[1];
	op = argv[2];
	if (!strcmp(op, "revert"))
		return argc == 4 ? revert(name, argv[3]) :
		       (err("snapshot revert: expected one TAG"), 2);
	if (!valid_dm_name(name))
		return err("snapshot: invalid device name '%s'", name), 2;
	if (!strcmp(op, "list")) {
		if (argc != 3)
			return err("snapshot list: no argument expected"), 2;
		return dm_qcow2_table(name, table, sizeof(table)) ? 1 : list(name);
	}
	if (strcmp(op, "create") && strcmp(op, "delete"))
		return err("snapshot: unknown operation '%s' (try --help)", op), 2;
	if (argc != 4 || !argv[3][0])
		return err("snapshot %s: expected exactly one TAG", op), 2;
	if (dm_qcow2_table(name, table, sizeof(table)))
		return 1;
	return message(name, op, argv[3], NULL, 0) ? 1 : 0;
}
