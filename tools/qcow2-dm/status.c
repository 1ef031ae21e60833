// SPDX-License-Identifier: GPL-2.0
/* The dm-qcow2 target's table and status lines, as words (status.h). */
#include <string.h>

#include "status.h"

const char *const status_keys[] = {
	"version", "cluster_size", "allocated", "free", "cache_hits",
	"cache_misses", "errors", "flushes", "locked_flushes",
	"deferred_frees", "write_error", "no_space", "no_space_queued",
	"inline_ios",
};
const size_t nr_status_keys = sizeof(status_keys) / sizeof(status_keys[0]);

int split(char *s, char **tok, int max)
{
	int n = 0;
	char *save = NULL, *t;

	for (t = strtok_r(s, " \t\n", &save); t && n < max;
	     t = strtok_r(NULL, " \t\n", &save))
		tok[n++] = t;
	return n;
}
