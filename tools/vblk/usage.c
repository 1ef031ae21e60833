// SPDX-License-Identifier: GPL-2.0
/* vblk: --help texts, per command and overall. */
#include <string.h>

#include "vblk_cmd.h"

static const char common[] =
"\nBACKEND is a block device or raw file served through /dev/vhost-blk, or\n"
"a unix socket of a vhost-user-blk server (qemu-storage-daemon), or\n"
"scsi:WWPN[:TPGT], a LIO vhost target served through /dev/vhost-scsi\n"
"(LUN 0). With --vhost-user or --vhost-scsi the BACKEND argument is left\n"
"out.\n"
"\ncommon options:\n"
"  --vhost-user SOCK   talk vhost-user to SOCK\n"
"  --vhost-scsi WWPN[:TPGT]  talk virtio-scsi to that LIO vhost target\n"
"  --kernel            force the /dev/vhost-blk transport\n"
"  --vhost-dev PATH    vhost device node (default /dev/vhost-blk,\n"
"                      /dev/vhost-scsi)\n"
"  --queues N          virtqueues to set up (default 1)\n"
"  --queue-size N      descriptors per queue (default 256)\n"
"  --workers N         vhost-blk worker threads (kernel transport)\n"
"  --serial STR        serial for GET_ID (kernel transport)\n"
"  --readonly          open the backend read-only\n"
"  --no-indirect       do not negotiate INDIRECT_DESC\n"
"  --no-event-idx      do not negotiate EVENT_IDX\n"
"  --timeout SEC       give up waiting for a completion (default 30)\n"
"  -h, --help          this text\n"
"\nexit status: 0 ok, 1 failure, 2 usage, 5 IOERR, 6 UNSUPP,\n"
"7 no or undefined status, 8 verify mismatch, 9 virtqueue broken\n";

static const struct {
	const char *cmd;
	const char *text;
} cmds[] = {
	{ "id", "vblk id BACKEND\n"
	  "  Print the device serial (VIRTIO_BLK_T_GET_ID).\n" },
	{ "info", "vblk info BACKEND\n"
	  "  Print capacity, limits, features and queues of the device.\n" },
	{ "read", "vblk read BACKEND OFFSET LENGTH > data\n"
	  "  Read LENGTH bytes at byte OFFSET (block aligned) to stdout.\n" },
	{ "write", "vblk write BACKEND OFFSET < data\n"
	  "  Write stdin at byte OFFSET; the length must be block aligned.\n" },
	{ "flush", "vblk flush BACKEND\n"
	  "  Send VIRTIO_BLK_T_FLUSH.\n" },
	{ "discard", "vblk discard BACKEND [OFFSET LENGTH]\n"
	  "  Discard a byte range (default: the whole device).\n" },
	{ "write-zeroes", "vblk write-zeroes BACKEND [OFFSET LENGTH] [--unmap]\n"
	  "  Zero a byte range (default: the whole device); --unmap sets\n"
	  "  VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP.\n" },
	{ "verify", "vblk verify BACKEND [--queues N] [--workers N] [--depth N]\n"
	  "       [--bs BYTES] [--size BYTES] [--offset BYTES] [--seed N]\n"
	  "       [--passes N] [--write-only | --check-only]\n"
	  "  Write a seeded pattern over the range from one thread per queue,\n"
	  "  flush, read it back and compare; print a summary. --passes 0\n"
	  "  repeats until killed. Every sector carries its own number and\n"
	  "  the seed, so misplaced or stale data is told apart.\n" },
};

void usage_cmd(const char *cmd, FILE *f)
{
	size_t i;

	for (i = 0; cmd && i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (!strcmp(cmd, cmds[i].cmd)) {
			fprintf(f, "usage: %s%s", cmds[i].text, common);
			return;
		}
	}
	fprintf(f, "usage: vblk COMMAND [OPTIONS] BACKEND [ARGS]\n\n"
		"A userspace virtio-blk driver for /dev/vhost-blk and "
		"vhost-user-blk.\n\ncommands:\n");
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  %s", cmds[i].text);
	fprintf(f, "%s\n'vblk COMMAND --help' shows one command.\n", common);
}
