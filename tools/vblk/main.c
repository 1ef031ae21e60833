// SPDX-License-Identifier: GPL-2.0
/* vblk: command line parsing and dispatch. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "vblk_cmd.h"

enum {
	OPT_VU = 256, OPT_SCSI, OPT_KERNEL, OPT_VDEV, OPT_QUEUES, OPT_QSIZE, OPT_WORKERS,
	OPT_SERIAL, OPT_RO, OPT_NOIND, OPT_NOEVT, OPT_TIMEOUT, OPT_UNMAP,
	OPT_DEPTH, OPT_BS, OPT_SIZE, OPT_OFFSET, OPT_SEED, OPT_PASSES,
	OPT_WONLY, OPT_CONLY, OPT_QUIET,
};

static const struct option longopts[] = {
	{ "vhost-user", required_argument, NULL, OPT_VU },
	{ "vhost-scsi", required_argument, NULL, OPT_SCSI },
	{ "kernel", no_argument, NULL, OPT_KERNEL },
	{ "vhost-dev", required_argument, NULL, OPT_VDEV },
	{ "queues", required_argument, NULL, OPT_QUEUES },
	{ "queue-size", required_argument, NULL, OPT_QSIZE },
	{ "workers", required_argument, NULL, OPT_WORKERS },
	{ "serial", required_argument, NULL, OPT_SERIAL },
	{ "readonly", no_argument, NULL, OPT_RO },
	{ "no-indirect", no_argument, NULL, OPT_NOIND },
	{ "no-event-idx", no_argument, NULL, OPT_NOEVT },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "unmap", no_argument, NULL, OPT_UNMAP },
	{ "depth", required_argument, NULL, OPT_DEPTH },
	{ "bs", required_argument, NULL, OPT_BS },
	{ "size", required_argument, NULL, OPT_SIZE },
	{ "offset", required_argument, NULL, OPT_OFFSET },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "passes", required_argument, NULL, OPT_PASSES },
	{ "write-only", no_argument, NULL, OPT_WONLY },
	{ "check-only", no_argument, NULL, OPT_CONLY },
	{ "quiet", no_argument, NULL, OPT_QUIET },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int num_opt(const char *name, const char *s, uint64_t max,
		   uint64_t *v)
{
	if (parse_u64(s, v) || *v > max) {
		fprintf(stderr, "vblk: bad --%s '%s'\n", name, s);
		return -1;
	}
	return 0;
}

/* Options that take numbers; returns 0, or -1 on a bad value. */
static int set_num(struct cli *c, int opt, const char *arg)
{
	uint64_t v;

	switch (opt) {
	case OPT_QUEUES:
		if (num_opt("queues", arg, VBLK_MAX_QUEUES, &v) || !v)
			return -1;
		c->opts.num_queues = v;
		return 0;
	case OPT_QSIZE:
		if (num_opt("queue-size", arg, VBLK_MAX_QUEUE_SIZE, &v))
			return -1;
		c->opts.queue_size = v;
		return 0;
	case OPT_WORKERS:
		if (num_opt("workers", arg, 1024, &v))
			return -1;
		c->opts.workers = v;
		return 0;
	case OPT_TIMEOUT:
		if (num_opt("timeout", arg, 86400, &v))
			return -1;
		c->timeout_ms = v * 1000;
		return 0;
	case OPT_DEPTH:
		if (num_opt("depth", arg, VBLK_MAX_QUEUE_SIZE, &v) || !v)
			return -1;
		c->depth = v;
		return 0;
	case OPT_BS:
		if (num_opt("bs", arg, 64 << 20, &v) || !v || v % 512)
			return -1;
		c->bs = v;
		return 0;
	case OPT_SIZE:
		return num_opt("size", arg, UINT64_MAX, &c->size);
	case OPT_OFFSET:
		return num_opt("offset", arg, UINT64_MAX, &c->offset);
	case OPT_SEED:
		if (num_opt("seed", arg, UINT32_MAX, &v))
			return -1;
		c->seed = v;
		return 0;
	case OPT_PASSES:
		if (num_opt("passes", arg, UINT32_MAX, &v))
			return -1;
		c->passes = v;
		return 0;
	}
	return -1;
}

static int set_opt(struct cli *c, int opt, const char *arg)
{
	switch (opt) {
	case OPT_VU:
		c->backend = arg;
		c->opts.transport = VBLK_TR_USER;
		return 0;
	case OPT_SCSI:
		c->backend = arg;
		c->opts.transport = VBLK_TR_SCSI;
		return 0;
	case OPT_KERNEL:
		c->opts.transport = VBLK_TR_KERNEL;
		return 0;
	case OPT_VDEV:
		c->opts.vhost_dev = arg;
		return 0;
	case OPT_SERIAL:
		c->opts.serial = arg;
		return 0;
	case OPT_RO:
		c->opts.readonly = true;
		return 0;
	case OPT_NOIND:
		c->opts.no_indirect = true;
		return 0;
	case OPT_NOEVT:
		c->opts.no_event_idx = true;
		return 0;
	case OPT_UNMAP:
		c->unmap = true;
		return 0;
	case OPT_WONLY:
		c->mode = VERIFY_WRITE;
		return 0;
	case OPT_CONLY:
		c->mode = VERIFY_CHECK;
		return 0;
	case OPT_QUIET:
		c->quiet = true;
		return 0;
	}
	return set_num(c, opt, arg);
}

static int dispatch(struct cli *c)
{
	static const struct {
		const char *name;
		int (*fn)(struct cli *c);
	} tab[] = {
		{ "id", cmd_id }, { "info", cmd_info }, { "read", cmd_read },
		{ "write", cmd_write }, { "flush", cmd_flush },
		{ "discard", cmd_range }, { "write-zeroes", cmd_range },
		{ "verify", cmd_verify },
	};
	size_t i;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (!strcmp(c->cmd, tab[i].name))
			return tab[i].fn(c);
	fprintf(stderr, "vblk: unknown command '%s'\n", c->cmd);
	usage_cmd(NULL, stderr);
	return EX_USAGE;
}

int main(int argc, char **argv)
{
	struct cli c = { .depth = 16, .bs = 64 << 10, .seed = 1, .passes = 1,
			 .timeout_ms = 30000 };
	bool help = false;
	int opt, pos;

	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (opt == 'h')
			help = true;
		else if (opt == '?' || set_opt(&c, opt, optarg))
			return EX_USAGE;
	}
	pos = optind;
	c.cmd = pos < argc ? argv[pos++] : NULL;
	if (help) {
		usage_cmd(c.cmd, stdout);
		return EX_OK;
	}
	if (!c.cmd) {
		usage_cmd(NULL, stderr);
		return EX_USAGE;
	}
	if (!c.backend) {
		if (pos >= argc) {
			fprintf(stderr, "vblk %s: BACKEND missing\n", c.cmd);
			usage_cmd(c.cmd, stderr);
			return EX_USAGE;
		}
		c.backend = argv[pos++];
	}
	c.args = argv + pos;
	c.nargs = argc - pos;
	return dispatch(&c);
}
