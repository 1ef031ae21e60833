// SPDX-License-Identifier: GPL-2.0
/* The JSON writer of --json (json.h). */
#include <inttypes.h>
#include <string.h>

#include "json.h"

void json_init(struct json *j, FILE *f)
{
	memset(j, 0, sizeof(*j));
	j->f = f;
	j->first[0] = true;
}

/* Length of the valid UTF-8 sequence at @s (1..4), 0 when invalid. */
static int utf8_len(const unsigned char *s)
{
	int n, i;
	uint32_t c;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0)
		n = 2, c = s[0] & 0x1f;
	else if ((s[0] & 0xf0) == 0xe0)
		n = 3, c = s[0] & 0x0f;
	else if ((s[0] & 0xf8) == 0xf0)
		n = 4, c = s[0] & 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	/* overlong forms, surrogates and beyond U+10FFFF are not UTF-8 */
	if ((n == 2 && c < 0x80) || (n == 3 && c < 0x800) ||
	    (n == 4 && c < 0x10000) || c > 0x10ffff ||
	    (c >= 0xd800 && c <= 0xdfff))
		return 0;
	return n;
}

static void put_string(struct json *j, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	int n;

	fputc('"', j->f);
	while (*s) {
		if (*s == '"' || *s == '\\') {
			fprintf(j->f, "\\%c", *s++);
		} else if (*s < 0x20 || *s == 0x7f) {
			fprintf(j->f, "\\u%04x", *s++);
		} else {
			n = utf8_len(s);
			if (n) {
				fwrite(s, 1, n, j->f);
				s += n;
			} else {
				fputs("\\ufffd", j->f);
				s++;
			}
		}
	}
	fputc('"', j->f);
}

/*
 * Nothing written yet at the current level? (Deeper than JSON_DEPTH, a
 * caller's bug, shares the deepest flag.)
 */
static bool *first(struct json *j)
{
	return &j->first[j->depth < JSON_DEPTH ? j->depth : JSON_DEPTH];
}

/* The comma and the key before a value at the current level. */
static void member(struct json *j, const char *key)
{
	if (!*first(j))
		fputc(',', j->f);
	*first(j) = false;
	if (key) {
		put_string(j, key);
		fputc(':', j->f);
	}
}

static void open_level(struct json *j, const char *key, char c)
{
	member(j, key);
	fputc(c, j->f);
	j->depth++;
	*first(j) = true;
}

static void close_level(struct json *j, char c)
{
	fputc(c, j->f);
	if (j->depth > 0)
		j->depth--;
}

void json_object_begin(struct json *j, const char *key)
{
	open_level(j, key, '{');
}

void json_object_end(struct json *j)
{
	close_level(j, '}');
}

void json_array_begin(struct json *j, const char *key)
{
	open_level(j, key, '[');
}

void json_array_end(struct json *j)
{
	close_level(j, ']');
}

void json_string(struct json *j, const char *key, const char *val)
{
	if (!val) {
		json_null(j, key);
		return;
	}
	member(j, key);
	put_string(j, val);
}

void json_u64(struct json *j, const char *key, uint64_t val)
{
	member(j, key);
	fprintf(j->f, "%" PRIu64, val);
}

void json_bool(struct json *j, const char *key, bool val)
{
	member(j, key);
	fputs(val ? "true" : "false", j->f);
}

void json_null(struct json *j, const char *key)
{
	member(j, key);
	fputs("null", j->f);
}

void json_end(struct json *j)
{
	fputc('\n', j->f);
}
