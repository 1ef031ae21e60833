// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blkd: serve one vhost-user-blk socket for one backend, with the
 * in-kernel /dev/vhost-blk doing the data path. Options, the startup
 * check of the backend, and the accept loop (one front-end at a time;
 * the next one may come after the last went away).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhost_blkd.h"

static const char usage_text[] =
"usage: vhost-blkd --socket PATH [OPTIONS] DEVICE|FILE\n"
"\n"
"Serve DEVICE (a block device, e.g. a dm-qcow2 device) or FILE (a raw\n"
"image) as a vhost-user-blk back-end on the unix socket PATH. The rings\n"
"are handed to /dev/vhost-blk, which serves every request in the kernel;\n"
"the daemon only answers control messages. Runs in the foreground, logs\n"
"to stderr, serves one front-end at a time and waits for the next one\n"
"when it disconnects. SIGTERM or SIGINT end it.\n"
"\n"
"options:\n"
"  -s, --socket PATH      unix socket to listen on (required; a stale\n"
"                         socket at PATH is replaced)\n"
"  -q, --queues N         virtqueues offered (1 to 16, default 16)\n"
"  -w, --workers N        vhost-blk worker threads (1 to 16, default:\n"
"                         the kernel's, one)\n"
"      --busyloop US      the kernel worker polls each ring for US\n"
"                         microseconds before it sleeps, so a busy guest\n"
"                         need not kick (VHOST_SET_VRING_BUSYLOOP_TIMEOUT;\n"
"                         0 to 1000000, default 0: off)\n"
"  -r, --read-only        open the backend read-only; the guest sees a\n"
"                         read-only disk (VIRTIO_BLK_F_RO)\n"
"  -S, --serial S         serial returned by GET_ID (up to 20 bytes)\n"
"      --vhost-dev PATH   vhost-blk device node (default /dev/vhost-blk)\n"
"      --connections N    exit after serving N front-ends (tests)\n"
"  -h, --help             this text\n"
"\n"
"The guest's memory must be shared with the daemon: with QEMU, e.g.\n"
"  -object memory-backend-memfd,id=mem,size=1G,share=on -numa node,memdev=mem\n"
"  -chardev socket,id=vb0,path=PATH -device vhost-user-blk-pci,chardev=vb0\n"
"See Documentation/qemu-vhost-blk.rst.\n"
"\n"
"exit status: 0 done, 1 failure, 2 usage\n";

static const char *sock_path;

static void on_signal(int sig)
{
	static const char msg[] = "vhost-blkd: signal, exiting\n";
	ssize_t n;

	(void)sig;
	if (sock_path)
		unlink(sock_path);
	n = write(STDERR_FILENO, msg, sizeof(msg) - 1);
	(void)n;
	/* closing /dev/vhost-blk at exit drains and releases the rings */
	_exit(0);
}

static int parse_uint(const char *s, unsigned int lo, unsigned int hi,
		      const char *what, unsigned int *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "vhost-blkd: %s must be %u to %u, not '%s'\n",
			what, lo, hi, s);
		return -1;
	}
	*out = v;
	return 0;
}

enum { OPT_VHOST_DEV = 256, OPT_CONNECTIONS, OPT_BUSYLOOP };

static int parse_args(int argc, char **argv, struct vud_opts *o)
{
	static const struct option lo[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "queues", required_argument, NULL, 'q' },
		{ "workers", required_argument, NULL, 'w' },
		{ "read-only", no_argument, NULL, 'r' },
		{ "serial", required_argument, NULL, 'S' },
		{ "vhost-dev", required_argument, NULL, OPT_VHOST_DEV },
		{ "connections", required_argument, NULL, OPT_CONNECTIONS },
		{ "busyloop", required_argument, NULL, OPT_BUSYLOOP },
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	int ch, rc = 0;

	while (!rc && (ch = getopt_long(argc, argv, "s:q:w:rS:h", lo,
					NULL)) != -1) {
		switch (ch) {
		case 's':
			o->socket = optarg;
			break;
		case 'q':
			rc = parse_uint(optarg, 1, VHOST_BLK_MAX_VQS,
					"--queues", &o->queues);
			break;
		case 'w':
			rc = parse_uint(optarg, 1, VHOST_BLK_MAX_WORKERS,
					"--workers", &o->workers);
			break;
		case 'r':
			o->readonly = true;
			break;
		case 'S':
			o->serial = optarg;
			if (strlen(optarg) > VHOST_BLK_SERIAL_LEN) {
				fprintf(stderr, "vhost-blkd: --serial: at most %d bytes\n",
					VHOST_BLK_SERIAL_LEN);
				rc = -1;
			}
			break;
		case OPT_VHOST_DEV:
			o->vhost_dev = optarg;
			break;
		case OPT_BUSYLOOP:
			rc = parse_uint(optarg, 0, 1000000, "--busyloop",
					&o->busyloop_us);
			break;
		case OPT_CONNECTIONS:
			rc = parse_uint(optarg, 1, UINT_MAX, "--connections",
					&o->max_conns);
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		default:
			rc = -1;
		}
	}
	if (!rc && optind == argc - 1)
		o->backend = argv[optind];
	if (rc || !o->socket || !o->backend) {
		if (!rc)
			fprintf(stderr, "vhost-blkd: %s\n", !o->socket ?
				"--socket PATH is required" :
				"one DEVICE or FILE is required");
		fputs("try vhost-blkd --help\n", stderr);
		return -1;
	}
	return 0;
}

/* Open a kernel device once at startup: a bad backend fails here. */
static int probe(const struct vud_opts *o)
{
	static struct vud_conn c;
	int rc;

	memset(&c, 0, sizeof(c));
	c.o = o;
	c.sock = -1;
	rc = vud_kdev_open(&c);
	if (rc)
		return rc;
	vud_log("serving %s: %llu sectors of %u bytes, %u queues%s%s%s",
		o->backend, (unsigned long long)c.kcfg.capacity,
		c.kcfg.logical_block_size, o->queues,
		c.kcfg.flags & VHOST_BLK_CONFIG_F_RO ? ", read-only" : "",
		c.kcfg.max_discard_sectors ? ", discard" : "",
		c.kcfg.max_write_zeroes_sectors ? ", write-zeroes" : "");
	vud_kdev_close(&c);
	return 0;
}

int main(int argc, char **argv)
{
	struct vud_opts o = { .queues = VHOST_BLK_MAX_VQS, .backend_fd = -1 };
	struct sigaction sa = { .sa_handler = on_signal };
	unsigned int served = 0;
	int lfd, fd;

	if (parse_args(argc, argv, &o))
		return 2;
	vud_log_init(o.socket);
	signal(SIGPIPE, SIG_IGN);
	if (vud_backend_open(&o) || probe(&o))
		return 1;
	lfd = vud_listen(o.socket);
	if (lfd < 0)
		return 1;
	sock_path = o.socket;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	vud_log("listening");
	while (!o.max_conns || served < o.max_conns) {
		fd = vud_accept(lfd);
		if (fd < 0) {
			if (fd == -EINTR)
				continue;
			vud_log("accept: %s", strerror(-fd));
			break;
		}
		vud_log("front-end connected");
		vud_serve(&o, fd);
		served++;
	}
	unlink(o.socket);
	close(lfd);
	return 0;
}
