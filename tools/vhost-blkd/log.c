// SPDX-License-Identifier: GPL-2.0
/* Log lines on stderr, each naming the socket the daemon serves. */
#include <stdarg.h>
#include <stdio.h>

#include "vhost_blkd.h"

static const char *log_socket = "?";

void vud_log_init(const char *socket)
{
	log_socket = socket;
}

void vud_log(const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* one write per line, so lines of several daemons do not mix */
	fprintf(stderr, "vhost-blkd %s: %s\n", log_socket, line);
}
