// SPDX-License-Identifier: GPL-2.0
/* qcow2-dm attach IMAGE [NAME] [--ro] [--cache-mb N] */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "chain.h"
#include "commands.h"
#include "dm.h"
#include "holder.h"
#include "tab.h"
#include "table.h"
#include "live.h"
#include "state.h"
#include "util.h"

struct attach_opts {
	const char *image;
	char name[128];
	bool ro;
	bool force;
	uint64_t cache_mb;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " attach IMAGE [NAME] [--ro] [--cache-mb N] [--force]\n"
		"       " PROG " attach --tab NAME\n"
		"\n"
		"Lock the qcow2 IMAGE and its backing chain the way QEMU does, create\n"
		"the device-mapper device NAME with the qcow2 target and print\n"
		"/dev/mapper/NAME. NAME defaults to the image file name without its\n"
		"extension.\n"
		"\n"
		"  --ro           read-only device; the image is opened read-only\n"
		"  --cache-mb N   metadata cache size in MiB (default: the target's)\n"
		"  --force        attach even when a file of the chain has the state\n"
		"                 of an interrupted live operation next to it (the\n"
		"                 chain may be stale: run '" PROG " recover' instead)\n"
		"  --tab NAME     attach the image that the line of device NAME in\n"
		"                 /etc/qcow2-dm/tab ($QCOW2_DM_TAB) names, with its\n"
		"                 options: NAME IMAGE [ro,cache-mb=N,noauto|-]\n"
		"                 (qcow2-dm@NAME.service runs this at boot)\n"
		"  -h, --help     this text\n"
		"\n"
		"Backing files named in an image are resolved relative to that\n"
		"image's folder; their format comes from the backing format header\n"
		"extension, else from probing for the qcow2 magic (qcow2 or raw).\n"
		"An external data file that IMAGE names (qemu-img create -o\n"
		"data_file=...) is resolved the same way, opened read-write unless\n"
		"--ro and locked like the image; a backing image with an external\n"
		"data file is refused.\n");
}

/* Default name: file name, extension dropped, odd characters replaced. */
static void default_name(const char *image, char *name, size_t len)
{
	const char *base = strrchr(image, '/');
	char *dot;
	size_t i;

	snprintf(name, len, "%s", base ? base + 1 : image);
	dot = strrchr(name, '.');
	if (dot && dot != name)
		*dot = '\0';
	for (i = 0; name[i]; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			    "0123456789._+-", name[i]))
			name[i] = '_';
}

/* attach --tab NAME: the options come from NAME's line in the tab. */
static int parse_tab(int argc, char **argv, struct attach_opts *o)
{
	static struct tab_entry e;

	memset(o, 0, sizeof(*o));
	if (argc != 3)
		return err("attach: --tab takes one NAME and no other argument");
	if (!valid_dm_name(argv[2]))
		return err("attach: invalid device name '%s'", argv[2]);
	if (tab_lookup(argv[2], &e))
		return 1;
	o->image = e.image;
	snprintf(o->name, sizeof(o->name), "%s", e.name);
	o->ro = e.ro;
	o->cache_mb = e.cache_mb;
	return 0;
}

static int parse_args(int argc, char **argv, struct attach_opts *o)
{
	const char *name = NULL;
	int i;

	memset(o, 0, sizeof(*o));
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--ro")) {
			o->ro = true;
		} else if (!strcmp(argv[i], "--force")) {
			o->force = true;
		} else if (!strcmp(argv[i], "--cache-mb")) {
			if (++i >= argc ||
			    parse_u64(argv[i], 1, 4096, &o->cache_mb))
				return err("attach: --cache-mb needs a number of MiB (1..4096)");
		} else if (argv[i][0] == '-' && argv[i][1]) {
			return err("attach: unknown option '%s' (try --help)", argv[i]);
		} else if (!o->image) {
			o->image = argv[i];
		} else if (!name) {
			name = argv[i];
		} else {
			return err("attach: too many arguments (try --help)");
		}
	}
	if (!o->image)
		return err("attach: no IMAGE given (try --help)");
	if (name)
		snprintf(o->name, sizeof(o->name), "%s", name);
	else
		default_name(o->image, o->name, sizeof(o->name));
	if (!valid_dm_name(name ? name : o->name))
		return err("attach: invalid device name '%s' (1..127 of A-Z a-z 0-9 . _ + -)",
			   name ? name : o->name);
	return 0;
}

/*
 * A live operation on this chain was interrupted: its newest writes may
 * sit in a file above this one, or this one may be a half-made overlay.
 */
static int interrupted(const struct chain *c)
{
	int i;

	for (i = 0; i < c->n; i++) {
		if (!state_exists_for(c->files[i].path))
			continue;
		fail_reason(EXIT_RECOVER);
		return err("attach: a live operation on %s was interrupted: its "
			   "newest writes may be in another file; run '" PROG
			   " recover %s' (or attach --force)",
			   c->files[i].path, c->files[i].path);
	}
	return 0;
}

int cmd_attach(int argc, char **argv)
{
	static char table[TABLE_MAX];
	struct attach_opts o;
	struct chain c;
	int r;

	if (wants_help(argc, argv)) {
		usage(stdout);
		return 0;
	}
	if (argc > 1 && !strcmp(argv[1], "--tab")) {
		r = parse_tab(argc, argv, &o);
		if (r)
			return r < 0 ? EXIT_USAGE : EXIT_FAILED;
	} else if (parse_args(argc, argv, &o)) {
		return EXIT_USAGE;
	}
	r = dm_exists(o.name);
	if (r < 0)
		return 1;
	if (r) {
		fail_reason(EXIT_BUSY);
		return err("attach: device %s already exists", o.name), 1;
	}
	if (chain_open(&c, o.image, o.ro))
		return 1;
	if (!o.force && interrupted(&c))
		goto close_chain;
	if (table_build(&c, o.ro, o.cache_mb, table, sizeof(table)))
		goto close_chain;
	if (live_create_device(o.name, table, o.ro))
		goto close_chain;
	if (holder_start(o.name, &c))
		goto remove_dev;
	chain_close(&c);
	printf("/dev/mapper/%s\n", o.name);
	return 0;
remove_dev:
	dm_remove(o.name, false);
close_chain:
	chain_close(&c);
	return 1;
}
