// SPDX-License-Identifier: GPL-2.0
/* A qcow2-dm device as one JSON object (info_json.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dm.h"
#include "holder.h"
#include "info_json.h"
#include "status.h"
#include "util.h"

#define LINE_MAX_LEN	65536
#define MAX_TOKENS	256

/* A number as a number, anything else as a string. */
static void number(struct json *j, const char *key, const char *val)
{
	uint64_t v;

	if (parse_u64(val, 0, UINT64_MAX, &v))
		json_string(j, key, val);
	else
		json_u64(j, key, v);
}

/*
 * Table: 0 <sectors> qcow2 <image> [<n> ro | cache_mb N | data_file F |
 * backing FMT F ...]
 */
static int table_json(struct json *j, char *table)
{
	char *tok[MAX_TOKENS];
	const char *data_file = NULL, *cache_mb = NULL;
	uint64_t sectors;
	bool ro = false;
	int n, i, end;

	n = split(table, tok, MAX_TOKENS);
	if (n < 4 || parse_u64(tok[1], 0, UINT64_MAX >> 9, &sectors))
		return -1;
	end = n > 4 ? 5 + atoi(tok[4]) : 4;
	if (end > n)
		end = n;
	json_string(j, "image", tok[3]);
	json_array_begin(j, "chain");
	json_object_begin(j, NULL);
	json_string(j, "path", tok[3]);
	json_string(j, "format", "qcow2");
	json_object_end(j);
	for (i = 5; i < end; i++) {
		if (!strcmp(tok[i], "backing") && i + 2 < end) {
			json_object_begin(j, NULL);
			json_string(j, "path", tok[i + 2]);
			json_string(j, "format", tok[i + 1]);
			json_object_end(j);
			i += 2;
		} else if (!strcmp(tok[i], "cache_mb") && i + 1 < end) {
			cache_mb = tok[++i];
		} else if (!strcmp(tok[i], "data_file") && i + 1 < end) {
			data_file = tok[++i];
		} else if (!strcmp(tok[i], "ro")) {
			ro = true;
		}
	}
	json_array_end(j);
	json_string(j, "data_file", data_file);
	json_u64(j, "size", sectors << 9);
	json_bool(j, "read_only", ro);
	if (cache_mb)
		number(j, "cache_mb", cache_mb);
	else
		json_null(j, "cache_mb");
	return 0;
}

/* Status: 0 <len> qcow2 version V cluster_size B ... ro|rw */
static void status_json(struct json *j, char *status)
{
	char *tok[MAX_TOKENS];
	size_t k;
	int n, i;

	n = split(status, tok, MAX_TOKENS);
	json_object_begin(j, "status");
	for (k = 0; k < nr_status_keys; k++)
		for (i = 3; i + 1 < n; i++)
			if (!strcmp(tok[i], status_keys[k])) {
				number(j, status_keys[k], tok[i + 1]);
				break;
			}
	if (n > 3 && (!strcmp(tok[n - 1], "ro") || !strcmp(tok[n - 1], "rw")))
		json_string(j, "mode", tok[n - 1]);
	json_object_end(j);
}

/* "NAME STATE granularity BYTES [dirty BYTES]" per line. */
static void bitmaps_json(struct json *j, const char *name)
{
	static char out[LINE_MAX_LEN];
	char *tok[8], *save = NULL, *line;
	int n, i;

	json_array_begin(j, "bitmaps");
	/* a read-only device, or a module from before bitmaps: none shown */
	if (dm_bitmap_list(name, out, sizeof(out), 1) == 0) {
		for (line = strtok_r(out, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save)) {
			n = split(line, tok, 8);
			if (n < 2)
				continue;
			json_object_begin(j, NULL);
			json_string(j, "name", tok[0]);
			json_string(j, "state", tok[1]);
			for (i = 2; i + 1 < n; i += 2)
				number(j, tok[i], tok[i + 1]);
			json_object_end(j);
		}
	}
	json_array_end(j);
}

int info_json(struct json *j, const char *name, bool quiet)
{
	static char table[LINE_MAX_LEN], status[LINE_MAX_LEN];
	char dev[160];
	pid_t pid;

	if (quiet) {
		/* only to read the table: no message for a vanished device */
		if (dm_table(name, table, sizeof(table), true) ||
		    !strstr(table, " qcow2 "))
			return -1;
	} else if (dm_qcow2_table(name, table, sizeof(table))) {
		return -1;
	}
	if (dm_status(name, status, sizeof(status), quiet))
		return quiet ? -1 : err("info: %s: cannot read its status", name);
	json_object_begin(j, NULL);
	json_string(j, "name", name);
	snprintf(dev, sizeof(dev), "/dev/mapper/%s", name);
	json_string(j, "device", dev);
	if (table_json(j, table))
		json_null(j, "image");
	status_json(j, status);
	bitmaps_json(j, name);
	pid = holder_pid(name);
	if (pid > 0)
		json_u64(j, "holder", (uint64_t)pid);
	else
		json_null(j, "holder");
	json_object_end(j);
	return 0;
}
