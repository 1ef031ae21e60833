/* SPDX-License-Identifier: GPL-2.0 */
/* One qcow2-dm device as a JSON object (info --json, list --json). */
#ifndef QCOW2_DM_INFO_JSON_H
#define QCOW2_DM_INFO_JSON_H

#include <stdbool.h>

#include "json.h"

/*
 * Write the object of device @name: name, device, image, chain (the image
 * and its backing files, in order, each with its format), data_file,
 * size in bytes, read_only, cache_mb, other table options, status (the
 * target's counters), bitmaps and holder (the lock holder's pid or null).
 * Nothing is written and -1 returned when the device is gone or not a
 * qcow2 device (with a message unless @quiet).
 */
int info_json(struct json *j, const char *name, bool quiet);

#endif
