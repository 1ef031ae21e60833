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
#include <inttypes.h>
#include <limits.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chain.h"
#include "commands.h"
#include "dm.h"
#include "holder.h"
#include "table.h"
#include "util.h"

#define TABLE_MAX	(CHAIN_MAX * (PATH_MAX + 16) + 256)
#define MAX_TOKENS	(CHAIN_MAX * 3 + 16)

extern char **environ;

struct live_table {
	char image[PATH_MAX];
	uint64_t sectors;
	uint64_t cache_mb;
	bool ro;
};

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
		"exist; it names its backing file by absolute path.\n"
		"\n"
		"  -h, --help   this text\n");
}

/* Table: 0 <sectors> qcow2 <image> [<#opt> ro | cache_mb N | backing F P] */
static int parse_live(const char *name, char *table, struct live_table *lt)
{
	char *tok[MAX_TOKENS], *save = NULL, *t;
	int n = 0, i, nopt = 0;

	memset(lt, 0, sizeof(*lt));
	for (t = strtok_r(table, " \t\n", &save); t && n < MAX_TOKENS;
	     t = strtok_r(NULL, " \t\n", &save))
		tok[n++] = t;
	if (n < 4 || parse_u64(tok[1], 1, UINT64_MAX >> 9, &lt->sectors))
		return err("snapshot: %s: cannot parse its table", name);
	if (snprintf(lt->image, sizeof(lt->image), "%s", tok[3]) >=
	    (int)sizeof(lt->image))
		return err("snapshot: %s: image path too long", name);
	if (n > 4)
		nopt = atoi(tok[4]);
	for (i = 5; i < n && i < 5 + nopt; i++) {
		if (!strcmp(tok[i], "ro"))
			lt->ro = true;
		else if (!strcmp(tok[i], "cache_mb") && i + 1 < n)
			parse_u64(tok[++i], 0, 4096, &lt->cache_mb);
		else if (!strcmp(tok[i], "backing"))
			i += 2;
	}
	return 0;
}

/* Run argv[0] from PATH, wait for it; its exit status, -1 if it did not run. */
static int run(char *const argv[])
{
	pid_t pid;
	int st, r;

	r = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
	if (r) {
		errno = r;
		return err_errno("cannot run %s", argv[0]);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return err_errno("waitpid %s", argv[0]);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* qemu-img create -f qcow2 -u -b OLD -F qcow2 NEW SIZE (OLD not opened). */
static int create_overlay(const char *newp, const struct live_table *lt)
{
	char size[32];
	char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-u",
			 "-b", (char *)lt->image, "-F", "qcow2", (char *)newp,
			 size, NULL };

	snprintf(size, sizeof(size), "%" PRIu64, lt->sectors << 9);
	if (run(argv) != 0)
		return err("snapshot: qemu-img could not create %s", newp);
	return 0;
}

static int dm_do(const char *verb, const char *name, const char *table)
{
	char *argv[] = { "dmsetup", (char *)verb, (char *)name,
			 table ? "--table" : NULL, (char *)table, NULL };

	return dm_run(argv, NULL, 0, 0) == 0 ? 0 : -1;
}

/* The lock holder again for @image's chain (rollback and the new chain). */
static int hold_chain(const char *name, const char *image)
{
	struct chain c;
	int r;

	if (chain_open(&c, image, false))
		return -1;
	r = holder_start(name, &c);
	chain_close(&c);
	return r;
}

/*
 * Under suspend, with the old chain's locks dropped: lock the new chain,
 * load its table. On failure nothing of the new chain is held.
 */
static int load_new(const char *name, const char *newp,
		    const struct live_table *lt)
{
	static char table[TABLE_MAX];
	struct chain c;
	int r = -1;

	if (chain_open(&c, newp, false))
		return -1;
	if (c.n < 2 || strcmp(c.files[1].path, lt->image)) {
		err("snapshot: %s does not have %s as its backing file", newp,
		    lt->image);
		goto close_chain;
	}
	if (table_build(&c, false, lt->cache_mb, table, sizeof(table)))
		goto close_chain;
	if (dm_do("reload", name, table)) {
		err("snapshot: %s: the kernel refused the new table", name);
		goto close_chain;
	}
	r = holder_start(name, &c);
	if (r)
		dm_do("clear", name, NULL);
close_chain:
	chain_close(&c);
	return r;
}

static int switch_device(const char *name, const char *newp,
			 const struct live_table *lt)
{
	if (dm_do("suspend", name, NULL))
		return err("snapshot: %s: suspend failed", name);
	holder_stop(name);
	if (load_new(name, newp, lt))
		goto rollback;
	if (dm_do("resume", name, NULL))
		return err("snapshot: %s: resume failed after the reload: the device is suspended with %s loaded; run 'dmsetup resume %s'",
			   name, newp, name);
	return 0;
rollback:
	if (hold_chain(name, lt->image))
		err("snapshot: %s: could not lock %s again", name, lt->image);
	if (dm_do("resume", name, NULL))
		err("snapshot: %s: resume failed: run 'dmsetup resume %s'",
		    name, name);
	return -1;
}

int cmd_snapshot_external(int argc, char **argv)
{
	char table[TABLE_MAX], newp[PATH_MAX];
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
	if (dm_qcow2_table(name, table, sizeof(table)) ||
	    parse_live(name, table, &lt))
		return 1;
	if (lt.ro)
		return err("snapshot: %s is read-only: nothing to snapshot", name), 1;
	if (!stat(arg, &st) || errno != ENOENT)
		return err("snapshot: %s already exists", arg), 1;
	if (create_overlay(arg, &lt))
		return 1;
	if (!realpath(arg, newp)) {
		err_errno("snapshot: %s", arg);
		goto remove_new;
	}
	if (switch_device(name, newp, &lt))
		goto remove_new;
	printf("%s\n", newp);
	return 0;
remove_new:
	unlink(arg);
	return 1;
}
