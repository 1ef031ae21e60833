// SPDX-License-Identifier: GPL-2.0
/* qcow2-dm snapshot NAME create|delete|list TAG, snapshot IMAGE revert TAG */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "commands.h"
#include "dm.h"
#include "kmsg.h"
#include "util.h"

#define LIST_MAX	(1 << 20)

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " snapshot NAME create TAG\n"
		"       " PROG " snapshot NAME delete TAG|ID\n"
		"       " PROG " snapshot NAME list\n"
		"       " PROG " snapshot IMAGE revert TAG|ID\n"
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
		"  revert TAG   on a DETACHED image file: make the snapshot the\n"
		"               current content (runs 'qemu-img snapshot -a')\n"
		"\n"
		"  -h, --help   this text\n"
		"\n"
		"Exit status: 0 done, 1 refused or failed (the reason is printed),\n"
		"2 usage error.\n");
}

/* dmsetup message NAME 0 snapshot ARGS...; the kernel's reason on failure. */
static int message(const char *name, const char *op, const char *tag,
		   char *out, size_t len)
{
	char *argv[] = { "dmsetup", "message", (char *)name, "0", "snapshot",
			 (char *)op, (char *)tag, NULL };
	int kfd = kmsg_open(), r;

	r = dm_run(argv, out, len, 1);
	if (r == 0) {
		if (kfd >= 0)
			close(kfd);
		return 0;
	}
	err("snapshot %s: %s: the target refused or failed", op, name);
	if (!kmsg_report(kfd, name))
		err("snapshot %s: no reason logged (dmsetup status %d)", op, r);
	return -1;
}

static int run_wait(char *const argv[])
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return err_errno("fork");
	if (pid == 0) {
		execvp(argv[0], argv);
		fprintf(stderr, PROG ": cannot run %s: %s\n", argv[0],
			strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return err_errno("waitpid");
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* Revert works on a detached image only: qemu-img does it, under its lock. */
static int revert(const char *image, const char *tag)
{
	char *argv[] = { "qemu-img", "snapshot", "-a", (char *)tag,
			 (char *)image, NULL };
	struct stat st;

	if (valid_dm_name(image) && dm_exists(image) == 1)
		return err("snapshot revert: %s is attached: detach it first, "
			   "then run '" PROG " snapshot IMAGE revert %s'",
			   image, tag), 1;
	if (stat(image, &st) || !S_ISREG(st.st_mode))
		return err("snapshot revert: %s is not an image file", image), 1;
	if (run_wait(argv))
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
