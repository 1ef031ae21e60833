// SPDX-License-Identifier: GPL-2.0
/* qcow2-dm list */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "dm.h"
#include "holder.h"
#include "info_json.h"
#include "json.h"
#include "util.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " list [--json]\n"
		"\n"
		"One line per device-mapper device with a qcow2 target:\n"
		"  NAME DEVICE IMAGE MODE HOLDER\n"
		"MODE is ro or rw; HOLDER is the pid of the lock holder, or '-'\n"
		"when the device was not made by " PROG " attach.\n"
		"\n"
		"  --json       a JSON array instead, one object per device, as\n"
		"               '" PROG " info --json' prints it\n"
		"  -h, --help   this text\n");
}

/* NAME and "0 <len> qcow2 <image> [opts]" -> one output line. */
static void print_line(const char *name, char *line, void *arg)
{
	char image[4096];
	unsigned long long start, len;
	const char *mode;
	pid_t pid;

	(void)arg;
	if (sscanf(line, "%llu %llu qcow2 %4095s", &start, &len, image) != 3)
		return;
	mode = strstr(line, " ro") ? "ro" : "rw";
	pid = holder_pid(name);
	if (pid > 0)
		printf("%s /dev/mapper/%s %s %s %d\n", name, name, image, mode,
		       (int)pid);
	else
		printf("%s /dev/mapper/%s %s %s -\n", name, name, image, mode);
}

/* NAME -> its object, if it is still there. */
static void json_line(const char *name, char *line, void *arg)
{
	(void)line;
	info_json(arg, name, true);
}

int cmd_list(int argc, char **argv)
{
	bool as_json = argc == 2 && !strcmp(argv[1], "--json");
	struct json j;
	int r;

	if (wants_help(argc, argv)) {
		usage(stdout);
		return 0;
	}
	if (argc != 1 && !as_json)
		return err("list: takes no arguments but --json (try --help)"),
		       EXIT_USAGE;
	json_init(&j, stdout);
	if (as_json)
		json_array_begin(&j, NULL);
	r = dm_list_qcow2(as_json ? json_line : print_line, &j);
	if (as_json) {
		json_array_end(&j);
		json_end(&j);
	}
	if (r)
		return err("list: cannot list the device-mapper devices"),
		       EXIT_FAILED;
	return 0;
}
