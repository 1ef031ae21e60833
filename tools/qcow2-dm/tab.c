// SPDX-License-Identifier: GPL-2.0
/* Reading /etc/qcow2-dm/tab (tab.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tab.h"
#include "util.h"

const char *tab_path(void)
{
	const char *p = getenv("QCOW2_DM_TAB");

	return p && *p ? p : "/etc/qcow2-dm/tab";
}

/* One OPTIONS word into @e. */
static int parse_option(const char *opt, struct tab_entry *e, int lineno)
{
	if (!strcmp(opt, "ro"))
		e->ro = true;
	else if (!strcmp(opt, "noauto"))
		e->noauto = true;
	else if (!strncmp(opt, "cache-mb=", 9)) {
		if (parse_u64(opt + 9, 1, 4096, &e->cache_mb))
			return err("%s:%d: cache-mb needs a number of MiB (1..4096)",
				   tab_path(), lineno);
	} else {
		return err("%s:%d: unknown option '%s' (ro, cache-mb=N, noauto)",
			   tab_path(), lineno, opt);
	}
	return 0;
}

/* "NAME IMAGE [OPTIONS]" of line @lineno into @e. */
static int parse_line(char *line, struct tab_entry *e, int lineno)
{
	char *save = NULL, *name, *image, *opts, *opt, *osave = NULL;

	name = strtok_r(line, " \t\n", &save);
	image = strtok_r(NULL, " \t\n", &save);
	opts = strtok_r(NULL, " \t\n", &save);
	if (!image || strtok_r(NULL, " \t\n", &save))
		return err("%s:%d: expected NAME IMAGE [OPTIONS]", tab_path(),
			   lineno);
	memset(e, 0, sizeof(*e));
	if (!valid_dm_name(name))
		return err("%s:%d: invalid device name '%s'", tab_path(), lineno,
			   name);
	snprintf(e->name, sizeof(e->name), "%s", name);
	if (fmt_path(e->image, sizeof(e->image), "%s", image))
		return -1;
	if (!opts || !strcmp(opts, "-"))
		return 0;
	for (opt = strtok_r(opts, ",", &osave); opt;
	     opt = strtok_r(NULL, ",", &osave))
		if (parse_option(opt, e, lineno))
			return -1;
	return 0;
}

int tab_lookup(const char *name, struct tab_entry *e)
{
	char line[PATH_MAX + 512], copy[sizeof(line)], *first;
	int lineno = 0, r = 1;
	FILE *f = fopen(tab_path(), "re");

	if (!f) {
		if (errno == ENOENT)
			fail_reason(EXIT_NOT_FOUND);
		return err_errno("%s", tab_path());
	}
	while (r > 0 && fgets(line, sizeof(line), f)) {
		lineno++;
		memcpy(copy, line, sizeof(line));
		first = strtok(copy, " \t\n");
		if (!first || first[0] == '#' || strcmp(first, name))
			continue;
		r = parse_line(line, e, lineno);
	}
	fclose(f);
	if (r > 0) {
		fail_reason(EXIT_NOT_FOUND);
		return err("%s: no device '%s' in it", tab_path(), name);
	}
	return r;
}
