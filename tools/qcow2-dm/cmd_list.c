// SPDX-License-Identifier: GPL-2.0
/* qcow2-dm list */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "dm.h"
#include "holder.h"
#include "util.h"

#define LIST_MAX	(1 << 20)

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " list\n"
		"\n"
		"One line per device-mapper device with a qcow2 target:\n"
		"  NAME DEVICE IMAGE MODE HOLDER\n"
		"MODE is ro or rw; HOLDER is the pid of the lock holder, or '-'\n"
		"when the device was not made by " PROG " attach.\n"
		"\n"
		"  -h, --help   this text\n");
}

/* "NAME: 0 <len> qcow2 <image> [opts]" -> one output line. */
static void print_line(char *line)
{
	char name[128], image[4096];
	unsigned long long start, len;
	char *colon = strstr(line, ": ");
	const char *mode;
	pid_t pid;

	if (!colon)
		return;
	*colon = '\0';
	snprintf(name, sizeof(name), "%s", line);
	if (sscanf(colon + 2, "%llu %llu qcow2 %4095s", &start, &len, image) != 3)
		return;
	mode = strstr(colon + 2, " ro") ? "ro" : "rw";
	pid = holder_pid(name);
	if (pid > 0)
		printf("%s /dev/mapper/%s %s %s %d\n", name, name, image, mode,
		       (int)pid);
	else
		printf("%s /dev/mapper/%s %s %s -\n", name, name, image, mode);
}

int cmd_list(int argc, char **argv)
{
	static char out[LIST_MAX];
	char *argv_dm[] = { "dmsetup", "table", "--target", "qcow2", NULL };
	char *line, *save = NULL;
	int r;

	if (wants_help(argc, argv)) {
		usage(stdout);
		return 0;
	}
	if (argc != 1)
		return err("list: takes no arguments (try --help)"), 2;
	r = dm_run(argv_dm, out, sizeof(out), 0);
	if (r != 0)
		return err("list: dmsetup table failed"), 1;
	for (line = strtok_r(out, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (!strcmp(line, "No devices found"))
			continue;
		print_line(line);
	}
	return 0;
}
