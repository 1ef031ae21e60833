// SPDX-License-Identifier: GPL-2.0
/*
 * qcow2-dm bitmap NAME list|add|remove|clear: persistent dirty bitmaps of
 * an attached device.
 *
 * The target tracks the image's enabled bitmaps and stores them at every
 * suspend (dm-qcow2.rst, "Dirty bitmaps"); their directory is changed by
 * qemu-img, on the suspended device: the target stores the bitmaps and
 * sends nothing more, the lock holder lets go, qemu-img changes the image,
 * a new table that loads the new directory replaces the old one, and the
 * device resumes (or stays suspended if it was).
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "dm.h"
#include "holder.h"
#include "live.h"
#include "util.h"

#define LIST_MAX	(1 << 20)

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " bitmap NAME list\n"
		"       " PROG " bitmap NAME add BITMAP [--granularity BYTES]\n"
		"       " PROG " bitmap NAME remove|clear BITMAP\n"
		"\n"
		"Persistent dirty bitmaps (QEMU's format) of the image of the\n"
		"attached read-write device NAME. An enabled bitmap records every\n"
		"range written since it was added or cleared; the target keeps it\n"
		"up to date and stores it in the image at every suspend and detach,\n"
		"so that 'qemu-img info' lists it and QEMU, qemu-nbd and\n"
		"'" PROG " backup --incremental' use it.\n"
		"\n"
		"  list         one line per bitmap: NAME STATE granularity BYTES\n"
		"               [dirty BYTES]; STATE is tracked, disabled, or\n"
		"               inconsistent (left in use by a crash: remove it)\n"
		"  add B        new enabled bitmap B, empty\n"
		"  remove B     delete bitmap B\n"
		"  clear B      empty bitmap B\n"
		"  --granularity BYTES   bytes per bit of a new bitmap: a power of\n"
		"               two, 512 to 2 GiB (default: the cluster size)\n"
		"\n"
		"add, remove and clear pause the device while qemu-img changes the\n"
		"image (a fraction of a second); a suspended device stays suspended.\n"
		"\n"
		"  -h, --help   this text\n"
		"\n"
		"Exit status: 0 done, 1 refused or failed (the reason is printed),\n"
		"2 usage error, 3 no such device or image, 4 busy (image locked\n"
		"by another process).\n");
}

static int list(const char *name)
{
	static char out[LIST_MAX];

	if (dm_bitmap_list(name, out, sizeof(out), 0))
		return err("bitmap list: %s: the target refused (not a qcow2 "
			   "device, or a module without bitmaps?)", name), 1;
	fputs(out, stdout);
	return 0;
}

/* qemu-img bitmap --OP on the suspended device's image, then a new table. */
static int change(const char *name, const char *op, const char *bitmap,
		  const char *gran)
{
	static struct live_table lt;
	char opt[16];
	char *argv[8] = { "qemu-img", "bitmap", opt };
	int was_suspended, r, n = 3;

	if (live_get(name, &lt))
		return 1;
	if (lt.ro)
		return err("bitmap %s: %s is read-only", op, name), 1;
	snprintf(opt, sizeof(opt), "--%s", op);
	if (gran) {
		argv[n++] = "-g";
		argv[n++] = (char *)gran;
	}
	argv[n++] = lt.image;
	argv[n++] = (char *)bitmap;
	argv[n] = NULL;
	was_suspended = dm_suspended(name);
	if (was_suspended < 0)
		return 1;
	if (!was_suspended && dm_suspend(name))
		return err("bitmap %s: %s: suspend failed", op, name), 1;
	holder_stop(name);
	r = live_run(argv);
	if (r)
		err("bitmap %s: qemu-img refused '%s' on %s", op, bitmap,
		    lt.image);
	/* a fresh table either way: the old one must not store its directory */
	if (sync_path(lt.image) ||
	    live_load(name, lt.image, NULL, lt.cache_mb)) {
		live_fence(name, lt.sectors);
		return err("bitmap %s: %s could not be reloaded on %s: detach "
			   "it and attach the image again", op, name,
			   lt.image), 1;
	}
	if (!was_suspended && dm_resume(name))
		return err("bitmap %s: %s: resume failed: run 'dmsetup resume "
			   "%s'", op, name, name), 1;
	return r ? 1 : 0;
}

int cmd_bitmap(int argc, char **argv)
{
	const char *gran = NULL;
	uint64_t g;

	if (wants_help(argc, argv)) {
		usage(stdout);
		return 0;
	}
	if (argc < 3)
		return err("bitmap: need NAME and an operation (try --help)"), 2;
	if (!valid_dm_name(argv[1]))
		return err("bitmap: invalid device name '%s'", argv[1]), 2;
	if (!strcmp(argv[2], "list") && argc == 3)
		return list(argv[1]);
	if (argc == 6 && !strcmp(argv[2], "add") &&
	    !strcmp(argv[4], "--granularity")) {
		gran = argv[5];
		if (parse_u64(gran, 512, 1ULL << 31, &g) || (g & (g - 1)))
			return err("bitmap add: --granularity is a power of two "
				   "from 512 to 2147483648"), 2;
	} else if (argc != 4) {
		return err("bitmap: wrong arguments (try --help)"), 2;
	}
	if (strcmp(argv[2], "add") && strcmp(argv[2], "remove") &&
	    strcmp(argv[2], "clear"))
		return err("bitmap: unknown operation '%s' (try --help)",
			   argv[2]), 2;
	if (!argv[3][0] || strlen(argv[3]) > 1023)
		return err("bitmap: a bitmap name is 1 to 1023 bytes"), 2;
	return change(argv[1], argv[2], argv[3], gran);
}
