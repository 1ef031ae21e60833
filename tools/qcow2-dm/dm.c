// SPDX-License-Identifier: GPL-2.0
/* Device-mapper access by running dmsetup(8). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dm.h"
#include "util.h"

static void child(char *const argv[], int outfd, int quiet)
{
	const char *bin = getenv("DMSETUP");
	int null;

	if (!bin || !*bin)
		bin = "dmsetup";
	/* no udev to create nodes: let libdevmapper make them itself */
	setenv("DM_DISABLE_UDEV", "1", 1);
	null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, 0);
		if (quiet)
			dup2(null, 2);
	}
	if (outfd >= 0)
		dup2(outfd, 1);
	execvp(bin, argv);
	fprintf(stderr, PROG ": cannot run %s: %s\n", bin, strerror(errno));
	_exit(127);
}

static int collect(int fd, char *out, size_t len)
{
	size_t used = 0;
	char sink[512];

	for (;;) {
		ssize_t n;

		if (used + 1 < len)
			n = read(fd, out + used, len - 1 - used);
		else
			n = read(fd, sink, sizeof(sink));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (used + 1 < len)
			used += n;
	}
	out[used] = '\0';
	return 0;
}

int dm_run(char *const argv[], char *out, size_t len, int quiet)
{
	int pfd[2] = { -1, -1 }, status;
	pid_t pid;

	if (out && pipe2(pfd, O_CLOEXEC))
		return err_errno("pipe");
	pid = fork();
	if (pid < 0) {
		err_errno("fork");
		goto close_pipe;
	}
	if (pid == 0)
		child(argv, pfd[1], quiet);
	if (out) {
		close(pfd[1]);
		pfd[1] = -1;
		collect(pfd[0], out, len);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			err_errno("waitpid");
			goto close_pipe;
		}
	}
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
close_pipe:
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	return -1;
}

int dm_exists(const char *name)
{
	char *argv[] = { "dmsetup", "info", "-c", "--noheadings", "-o", "name",
			 (char *)name, NULL };
	char out[256];
	int r = dm_run(argv, out, sizeof(out), 1);

	if (r < 0)
		return -1;
	return r == 0;
}

int dm_bitmap_list(const char *name, char *out, size_t len, int quiet)
{
	char *argv[] = { "dmsetup", "message", (char *)name, "0", "bitmap",
			 "list", NULL };

	return dm_run(argv, out, len, quiet);
}

int dm_qcow2_table(const char *name, char *buf, size_t len)
{
	char *argv[] = { "dmsetup", "table", (char *)name, NULL };
	char *nl;
	int r = dm_run(argv, buf, len, 1);

	if (r < 0)
		return -1;
	if (r != 0) {
		fail_reason(EXIT_NOT_FOUND);
		return err("%s: no such device-mapper device", name);
	}
	nl = strchr(buf, '\n');
	if (nl && nl[1]) {
		fail_reason(EXIT_NOT_FOUND);
		return err("%s: has more than one target: not a qcow2-dm device",
			   name);
	}
	if (nl)
		*nl = '\0';
	{
		unsigned long long start, len_s;
		char target[32];

		if (sscanf(buf, "%llu %llu %31s", &start, &len_s, target) != 3 ||
		    strcmp(target, "qcow2")) {
			fail_reason(EXIT_NOT_FOUND);
			return err("%s: not a qcow2 device (table: %s)", name, buf);
		}
	}
	return 0;
}
