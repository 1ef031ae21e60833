/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A small streaming JSON writer for --json output: objects and arrays
 * nested up to JSON_DEPTH, commas and escaping done here. Strings are
 * written as UTF-8; a byte that is not part of valid UTF-8 (a path can
 * hold any byte) becomes U+FFFD.
 */
#ifndef QCOW2_DM_JSON_H
#define QCOW2_DM_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_DEPTH	8

struct json {
	FILE *f;
	int depth;
	bool first[JSON_DEPTH + 1];	/* nothing written yet at this level */
};

void json_init(struct json *j, FILE *f);

/*
 * @key names the member inside an object; it is NULL at the top level
 * and inside arrays.
 */
void json_object_begin(struct json *j, const char *key);
void json_object_end(struct json *j);
void json_array_begin(struct json *j, const char *key);
void json_array_end(struct json *j);

/* A string value; NULL writes null. */
void json_string(struct json *j, const char *key, const char *val);
void json_u64(struct json *j, const char *key, uint64_t val);
void json_bool(struct json *j, const char *key, bool val);
void json_null(struct json *j, const char *key);

/* After the top-level value: a newline. */
void json_end(struct json *j);

#endif
