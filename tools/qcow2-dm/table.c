// SPDX-License-Identifier: GPL-2.0
/*
 * Build the dm-qcow2 table line; the data file and every backing file are
 * named explicitly.
 */
#include <stdarg.h>
#include <stdio.h>

#include "table.h"
#include "util.h"

struct strbuf {
	char *buf;
	size_t len, used;
	int overflow;
};

static void sb_add(struct strbuf *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void sb_add(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (sb->overflow)
		return;
	va_start(ap, fmt);
	n = vsnprintf(sb->buf + sb->used, sb->len - sb->used, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sb->len - sb->used)
		sb->overflow = 1;
	else
		sb->used += n;
}

int table_build(const struct chain *c, bool ro, uint64_t cache_mb,
		char *buf, size_t len)
{
	struct strbuf sb = { buf, len, 0, 0 };
	unsigned int nopt = (ro ? 1 : 0) + (cache_mb ? 2 : 0) +
			    (c->has_data ? 2 : 0) + 3 * (c->n - 1);
	int i;

	if (c->top.size % 512)
		return err("%s: virtual size %llu is not a multiple of 512 bytes",
			   c->files[0].path, (unsigned long long)c->top.size);
	if (c->top.size == 0)
		return err("%s: virtual size is 0", c->files[0].path);
	sb_add(&sb, "0 %llu qcow2 %s", (unsigned long long)(c->top.size >> 9),
	       c->files[0].path);
	if (nopt)
		sb_add(&sb, " %u", nopt);
	if (ro)
		sb_add(&sb, " ro");
	if (cache_mb)
		sb_add(&sb, " cache_mb %llu", (unsigned long long)cache_mb);
	if (c->has_data)
		sb_add(&sb, " data_file %s", c->data.path);
	for (i = 1; i < c->n; i++)
		sb_add(&sb, " backing %s %s", c->files[i].qcow2 ? "qcow2" : "raw",
		       c->files[i].path);
	if (sb.overflow)
		return err("table line too long");
	return 0;
}
