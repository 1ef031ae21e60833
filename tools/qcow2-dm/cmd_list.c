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

#define LIST_MAX	(1 << 20)

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

/* "NAME: 0 <len> qcow2 ..." -> the object of NAME, if it is still there. */
static void json_line(struct json *j, char *line)
{
	char *colon = strstr(line, ": ");

	if (!colon)
		return;
	*colon = '\0';
	info_json(j, line, true);
}

int cmd_list(int argc, char **argv)
{
	static char out[LIST_MAX];
	char *argv_dm[] = { "dmsetup", "table", "--target", "qcow2", NULL };
	char *line, *save = NULL;
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
	r = dm_run(argv_dm, out, sizeof(out), 0);
	if (r != 0)
		return err("list: dmsetup table failed"), EXIT_FAILED;
	json_init(&j, stdout);
	if (as_json)
		json_array_begin(&j, NULL);
	for (line = strtok_r(out, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (!strcmp(line, "No devices found"))
			continue;
		if (as_json)
			json_line(&j, line);
		else
			print_line(line);
	}
	if (as_json) {
		json_array_end(&j);
		json_end(&j);
	}
	return 0;
}
