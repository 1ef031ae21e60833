// SPDX-License-Identifier: GPL-2.0
/* The --help test shared by the commands. */
#include <string.h>

#include "commands.h"

int wants_help(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return 1;
	return 0;
}
