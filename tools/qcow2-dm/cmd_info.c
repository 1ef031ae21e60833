// SPDX-License-Identifier: GPL-2.0
/* qcow2-dm info NAME */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "dm.h"
#include "holder.h"
#include "info_json.h"
#include "json.h"
#include "status.h"
#include "util.h"

#define LINE_MAX_LEN	65536
#define MAX_TOKENS	256

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " info [--json] NAME\n"
		"\n"
		"Show the image of the qcow2 device NAME, its external data file\n"
		"('data_file:', when it has one), its backing chain, options, lock\n"
		"holder and the target status: qcow2 version, cluster size,\n"
		"allocated and free clusters, cache hits and misses, errors seen, flush\n"
		"sequences run (and how many of them held the per-image lock),\n"
		"ro or rw, and one 'bitmap:' line per persistent dirty bitmap of the\n"
		"image (as 'qcow2-dm bitmap NAME list' prints it). One 'key: value'\n"
		"per line.\n"
		"\n"
		"  --json       one JSON object instead: name, device, image, chain\n"
		"               (path and format of the image and each backing\n"
		"               file, in order), data_file, size (bytes),\n"
		"               read_only, cache_mb, status (the counters above and\n"
		"               mode), bitmaps (name, state, granularity, dirty)\n"
		"               and holder (pid or null)\n"
		"  -h, --help   this text\n");
}

/* Table: 0 <len> qcow2 <image> [<n> opts...] */
static int print_table(const char *name, char *table)
{
	char *tok[MAX_TOKENS];
	int n, i, nopt = 0;

	printf("name: %s\ndevice: /dev/mapper/%s\ntable: %s\n", name, name, table);
	n = split(table, tok, MAX_TOKENS);
	if (n < 4)
		return err("info: %s: short table", name);
	printf("sectors: %s\nimage: %s\n", tok[1], tok[3]);
	if (n > 4)
		nopt = atoi(tok[4]);
	for (i = 5; i < n && i < 5 + nopt; i++) {
		if (!strcmp(tok[i], "backing") && i + 2 < n) {
			printf("backing: %s %s\n", tok[i + 1], tok[i + 2]);
			i += 2;
		} else if (!strcmp(tok[i], "cache_mb") && i + 1 < n) {
			printf("cache_mb: %s\n", tok[++i]);
		} else if (!strcmp(tok[i], "data_file") && i + 1 < n) {
			printf("data_file: %s\n", tok[++i]);
		} else if (!strcmp(tok[i], "ro")) {
			printf("option: ro\n");
		} else {
			printf("option: %s\n", tok[i]);
		}
	}
	return 0;
}

/* Status: 0 <len> qcow2 version V cluster_size B ... errors N ro|rw */
static int print_status(const char *name, char *status)
{
	char *tok[MAX_TOKENS];
	size_t k;
	int n, i, found = 0;

	n = split(status, tok, MAX_TOKENS);
	for (k = 0; k < nr_status_keys; k++) {
		for (i = 3; i + 1 < n; i++) {
			if (!strcmp(tok[i], status_keys[k])) {
				printf("%s: %s\n", status_keys[k], tok[i + 1]);
				found++;
				break;
			}
		}
	}
	if (n > 3 && (!strcmp(tok[n - 1], "ro") || !strcmp(tok[n - 1], "rw"))) {
		printf("mode: %s\n", tok[n - 1]);
		found++;
	}
	if (found != (int)nr_status_keys + 1)
		return err("info: %s: unexpected status line from the target", name);
	return 0;
}

/* One "bitmap: NAME STATE ..." line per bitmap the target reports. */
static void print_bitmaps(const char *name)
{
	static char out[LINE_MAX_LEN];
	char *save = NULL, *line;

	/* a module from before bitmaps refuses the message: nothing to show */
	if (dm_bitmap_list(name, out, sizeof(out), 1))
		return;
	for (line = strtok_r(out, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		printf("bitmap: %s\n", line);
}

static int info_as_json(const char *name)
{
	struct json j;

	if (!valid_dm_name(name))
		return err("info: invalid device name '%s'", name), EXIT_USAGE;
	json_init(&j, stdout);
	if (info_json(&j, name, false))
		return EXIT_FAILED;
	json_end(&j);
	return 0;
}

int cmd_info(int argc, char **argv)
{
	static char table[LINE_MAX_LEN], status[LINE_MAX_LEN];
	pid_t pid;

	if (wants_help(argc, argv)) {
		usage(stdout);
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "--json"))
		return info_as_json(argv[2]);
	if (argc == 3 && !strcmp(argv[2], "--json"))
		return info_as_json(argv[1]);
	if (argc != 2)
		return err("info: expected exactly one NAME (try --help)"), 2;
	if (!valid_dm_name(argv[1]))
		return err("info: invalid device name '%s'", argv[1]), 2;
	if (dm_qcow2_table(argv[1], table, sizeof(table)))
		return 1;
	if (dm_status(argv[1], status, sizeof(status), false))
		return err("info: %s: cannot read its status", argv[1]), 1;
	if (print_table(argv[1], table))
		return 1;
	pid = holder_pid(argv[1]);
	if (pid > 0)
		printf("lock_holder: %d\n", (int)pid);
	else
		printf("lock_holder: none\n");
	printf("status: %s", status);
	if (status[0] && status[strlen(status) - 1] != '\n')
		putchar('\n');
	if (print_status(argv[1], status))
		return 1;
	print_bitmaps(argv[1]);
	return 0;
}
