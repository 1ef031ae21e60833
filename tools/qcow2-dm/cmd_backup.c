// SPDX-License-Identifier: GPL-2.0
/*
 * qcow2-dm backup NAME OUT: a full, point-in-time copy of a live device.
 *
 * The device switches onto a temporary overlay (an external snapshot), so
 * its image is frozen at that instant; qemu-img copies the frozen image
 * (with its backing chain) into OUT while the device keeps being written;
 * then the overlay is merged back online. Whatever happens to the copy
 * (failure, SIGINT, SIGTERM), the overlay is merged back before exit, so
 * the backup holds nothing once it returns.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "live.h"
#include "util.h"

static volatile sig_atomic_t stop_signal;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " backup NAME OUT [--format qcow2|raw]\n"
		"\n"
		"Copy the content that the attached device NAME has at this instant\n"
		"into the new file OUT (qcow2 by default, compressed clusters not\n"
		"used), while the device stays in use. The device's image is frozen\n"
		"under a temporary overlay for the copy, which is merged back\n"
		"afterwards (see merge): the device pauses twice, briefly. SIGINT\n"
		"or SIGTERM stops the copy, removes OUT and still merges back.\n"
		"Prints the backup's path on success.\n"
		"\n"
		"  --format F   qcow2 (default) or raw\n"
		"  -h, --help   this text\n");
}

static void on_signal(int sig)
{
	stop_signal = sig;
}

/* Stop signals end the copy (qemu-img gets them too), not this process. */
static void catch_stops(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

static int copy_out(const char *image, const char *out, const char *fmt)
{
	char *argv[] = { "qemu-img", "convert", "-O", (char *)fmt,
			 (char *)image, (char *)out,
			 isatty(STDERR_FILENO) ? "-p" : NULL, NULL };
	int r = live_run(argv);

	if (stop_signal)
		return err("backup: stopped by signal %d", (int)stop_signal);
	if (r)
		return err("backup: qemu-img convert failed");
	/* qemu-img convert writes OUT with a volatile cache ("unsafe") */
	return sync_path(out);
}

static int parse(int argc, char **argv, const char **name, const char **out,
		 const char **fmt)
{
	int i;

	*name = *out = NULL;
	*fmt = "qcow2";
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--format") && i + 1 < argc)
			*fmt = argv[++i];
		else if (argv[i][0] == '-')
			return err("backup: unknown option '%s' (try --help)",
				   argv[i]);
		else if (!*name)
			*name = argv[i];
		else if (!*out)
			*out = argv[i];
		else
			return err("backup: too many arguments (try --help)");
	}
	if (!*name || !*out)
		return err("backup: need NAME and OUT (try --help)");
	if (strcmp(*fmt, "qcow2") && strcmp(*fmt, "raw"))
		return err("backup: --format is qcow2 or raw");
	if (!valid_dm_name(*name))
		return err("backup: invalid device name '%s'", *name);
	return 0;
}

static int tmp_path(const struct live_table *lt, char *tmp, size_t len)
{
	const char *slash = strrchr(lt->image, '/');

	if (!slash)
		return err("backup: %s: not an absolute path", lt->image);
	return fmt_path(tmp, len, "%.*s/.%s.backup-%d.qcow2",
			(int)(slash - lt->image), lt->image, slash + 1,
			(int)getpid());
}

int cmd_backup(int argc, char **argv)
{
	const char *name, *out, *fmt;
	char tmp[PATH_MAX];
	struct live_table lt;
	struct timespec t0, t1;
	struct stat st;
	int r;

	if (wants_help(argc, argv)) {
		usage(stdout);
		return 0;
	}
	if (parse(argc, argv, &name, &out, &fmt))
		return 2;
	if (live_get(name, &lt))
		return 1;
	if (!stat(out, &st) || errno != ENOENT)
		return err("backup: %s already exists", out), 1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	catch_stops();
	if (lt.ro) {		/* nothing writes it: copy it as it is */
		r = copy_out(lt.image, out, fmt);
		goto done;
	}
	if (tmp_path(&lt, tmp, sizeof(tmp)) || live_create_overlay(tmp, &lt))
		return 1;
	if (live_switch(name, tmp, &lt)) {
		unlink(tmp);
		return 1;
	}
	fprintf(stderr, PROG ": backup: %s frozen at this instant, copying it to %s\n",
		lt.image, out);
	r = copy_out(lt.image, out, fmt);
	if (live_merge(name, true)) {
		err("backup: merging %s back failed: %s still runs on it; run '"
		    PROG " merge %s'", tmp, name, name);
		r = -1;
	} else {
		unlink(tmp);	/* merged back: no longer in the chain */
	}
done:
	if (r) {
		unlink(out);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (!stat(out, &st))
		fprintf(stderr, PROG ": backup: %s: %llu MiB virtual, %.1f MiB file, %.1f s\n",
			out, (unsigned long long)(lt.sectors >> 11),
			st.st_blocks / 2048.0,
			(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	printf("%s\n", out);
	return 0;
}
