// SPDX-License-Identifier: GPL-2.0
/*
 * Operations on a live qcow2-dm device: read its table, run qemu-img,
 * switch the device onto another chain under suspend.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dm.h"
#include "holder.h"
#include "kmsg.h"
#include "live.h"
#include "qcow2.h"
#include "table.h"
#include "util.h"

#define MAX_TOKENS	(CHAIN_MAX * 3 + 16)

extern char **environ;

/*
 * Table: 0 <sectors> qcow2 <image>
 *	  [<#opt> ro | cache_mb N | data_file P | backing F P]
 */
int live_parse(const char *name, char *table, struct live_table *lt)
{
	char *tok[MAX_TOKENS], *save = NULL, *t;
	int n = 0, i, nopt = 0;

	memset(lt, 0, sizeof(*lt));
	for (t = strtok_r(table, " \t\n", &save); t && n < MAX_TOKENS;
	     t = strtok_r(NULL, " \t\n", &save))
		tok[n++] = t;
	if (n < 4 || parse_u64(tok[1], 1, UINT64_MAX >> 9, &lt->sectors))
		return err("%s: cannot parse its table", name);
	if (snprintf(lt->image, sizeof(lt->image), "%s", tok[3]) >=
	    (int)sizeof(lt->image))
		return err("%s: image path too long", name);
	if (n > 4)
		nopt = atoi(tok[4]);
	for (i = 5; i < n && i < 5 + nopt; i++) {
		if (!strcmp(tok[i], "ro"))
			lt->ro = true;
		else if (!strcmp(tok[i], "cache_mb") && i + 1 < n)
			parse_u64(tok[++i], 0, 4096, &lt->cache_mb);
		else if (!strcmp(tok[i], "data_file") && i + 1 < n) {
			if (snprintf(lt->data_file, sizeof(lt->data_file),
				     "%s", tok[++i]) >=
			    (int)sizeof(lt->data_file))
				return err("%s: data file path too long", name);
		} else if (!strcmp(tok[i], "backing") && i + 2 < n) {
			if (!lt->backing[0]) {
				snprintf(lt->backing_fmt,
					 sizeof(lt->backing_fmt), "%s",
					 tok[i + 1]);
				if (snprintf(lt->backing, sizeof(lt->backing),
					     "%s", tok[i + 2]) >=
				    (int)sizeof(lt->backing))
					return err("%s: backing path too long",
						   name);
			}
			i += 2;
		}
	}
	return 0;
}

int live_get(const char *name, struct live_table *lt)
{
	static char table[TABLE_MAX];

	if (dm_qcow2_table(name, table, sizeof(table)))
		return -1;
	return live_parse(name, table, lt);
}

/* the child live_run() waits for, to pass a stop signal on to */
static volatile pid_t live_child;
volatile sig_atomic_t live_stop;

void live_kill_child(int sig)
{
	pid_t child = live_child;

	if (child > 0)
		kill(child, sig);
}

static void on_stop(int sig)
{
	live_stop = sig;
	live_kill_child(sig);
}

void live_catch_stops_with(void (*fn)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

void live_catch_stops(void)
{
	live_catch_stops_with(on_stop);
}

void live_stops_block(sigset_t *old)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, old);
}

void live_stops_unblock(const sigset_t *old)
{
	sigprocmask(SIG_SETMASK, old, NULL);
}

/* Run argv[0] from PATH, wait for it; its exit status, -1 if it did not run. */
int live_run(char *const argv[])
{
	pid_t pid;
	int st, r;

	r = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
	if (r) {
		errno = r;
		return err_errno("cannot run %s", argv[0]);
	}
	live_child = pid;
	/* a stop that came just before the child existed */
	if (live_stop)
		kill(pid, live_stop);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			live_child = 0;
			return err_errno("waitpid %s", argv[0]);
		}
	live_child = 0;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/*
 * qemu-img create -f qcow2 -u -b OLD -F qcow2 NEW SIZE: OLD is not opened
 * (qemu-img would stop at our locks). NEW gets OLD's cluster size.
 */
int live_create_overlay(const char *newp, const struct live_table *lt)
{
	char size[32], opts[64];
	char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-u",
			 "-b", (char *)lt->image, "-F", "qcow2", "-o", opts,
			 (char *)newp, size, NULL };
	struct qcow2_info info;
	int fd, r;

	fd = open(lt->image, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_errno("%s", lt->image);
	r = qcow2_read_info(fd, lt->image, &info);
	close(fd);
	if (r)
		return -1;
	/* before anything is created: backup, merge and external all stop */
	if (info.data_file[0])
		return err("%s has an external data file (%s): not supported, "
			   "an overlay on it cannot be attached (the target "
			   "opens no backing image with a data file)",
			   lt->image, info.data_file);
	snprintf(opts, sizeof(opts), "cluster_size=%u", 1U << info.cluster_bits);
	snprintf(size, sizeof(size), "%" PRIu64, lt->sectors << 9);
	if (live_run(argv) != 0)
		return err("qemu-img could not create %s", newp);
	/* the device will write into it: its header must not vanish */
	if (sync_path(newp)) {
		unlink(newp);
		return -1;
	}
	return 0;
}

/* The lock holder again for @image's chain (rollback and the new chain). */
int live_hold(const char *name, const char *image)
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
 * Under suspend, with the old chain's locks dropped: lock the chain of
 * @image, load its table, start its lock holder. When @backing is set,
 * the image must have it as its first backing file. On failure nothing
 * of the new chain is held and no table is left loaded.
 */
int live_load(const char *name, const char *image, const char *backing,
	      uint64_t cache_mb)
{
	static char table[TABLE_MAX];
	struct chain c;
	int r = -1;

	if (chain_open(&c, image, false))
		return -1;
	if (backing && (c.n < 2 || strcmp(c.files[1].path, backing))) {
		err("%s does not have %s as its backing file", image, backing);
		goto close_chain;
	}
	if (table_build(&c, false, cache_mb, table, sizeof(table)))
		goto close_chain;
	if (dm_reload(name, table)) {
		err("%s: the kernel refused the new table", name);
		goto close_chain;
	}
	r = holder_start(name, &c);
	if (r)
		dm_clear(name);
close_chain:
	chain_close(&c);
	return r;
}

/* Lock @lt's image again and resume: the way back from a failed switch. */
int live_rollback(const char *name, const struct live_table *lt)
{
	if (live_hold(name, lt->image))
		err("%s: could not lock %s again", name, lt->image);
	if (dm_resume(name))
		return err("%s: resume failed: run 'dmsetup resume %s'", name,
			   name);
	return 0;
}

/* Suspend, switch the device onto overlay @newp of its image, resume. */
int live_switch(const char *name, const char *newp,
		const struct live_table *lt)
{
	sigset_t old;
	int r = 0;

	live_stops_block(&old);
	if (dm_suspend(name)) {
		r = err("%s: suspend failed", name);
		goto unblock;
	}
	holder_stop(name);
	if (live_load(name, newp, lt->image, lt->cache_mb)) {
		live_rollback(name, lt);
		r = -1;
		goto unblock;
	}
	if (dm_resume(name))
		r = err("%s: resume failed after the reload: the device is suspended with %s loaded; run 'dmsetup resume %s'",
			name, newp, name);
unblock:
	live_stops_unblock(&old);
	return r;
}

/*
 * The old table's view of the image is stale once qemu-img changed it:
 * when no table of the changed image can be loaded, load one that fails
 * every request, so that a resume can never let the old one write.
 */
void live_fence(const char *name, uint64_t sectors)
{
	char table[64];

	snprintf(table, sizeof(table), "0 %llu error",
		 (unsigned long long)sectors);
	if (dm_reload(name, table))
		err("%s: DO NOT RESUME it: its table no longer matches the "
		    "image; run 'dmsetup remove %s'", name, name);
}

/*
 * The DM UUID, "QCOW2-NAME" (within the kernel's 128 characters): udev,
 * lsblk and LVM tell the project's devices by the prefix, as LVM's own
 * carry "LVM-". Set at create, it stays across the table reloads of live
 * operations.
 */
static void dm_uuid(char *uuid, size_t len, const char *name)
{
	snprintf(uuid, len, "QCOW2-%.122s", name);
}

int live_create_device(const char *name, const char *table, bool ro)
{
	char uuid[129];
	char node[256];
	struct stat st;
	int kfd = kmsg_open();

	dm_uuid(uuid, sizeof(uuid), name);
	if (dm_create(name, uuid, table, ro)) {
		err("%s: the kernel refused the table", name);
		if (!kmsg_report(kfd, name))
			err("%s: no reason logged: is the dm-qcow2 module loaded "
			    "(dmsetup targets)?", name);
		if (dm_exists(name) == 1)
			dm_remove(name, false);
		return -1;
	}
	if (kfd >= 0)
		close(kfd);
	snprintf(node, sizeof(node), "/dev/mapper/%s", name);
	if (stat(node, &st) || !S_ISBLK(st.st_mode)) {
		err("%s: device created but %s is missing", name, node);
		dm_remove(name, false);
		return -1;
	}
	return 0;
}
