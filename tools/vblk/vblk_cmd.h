/* SPDX-License-Identifier: GPL-2.0 */
/* vblk: shared declarations of the command's files. */
#ifndef VBLK_CMD_H
#define VBLK_CMD_H

#include <stdio.h>

#include "../libvblk/vblk.h"

/* Exit statuses (documented in Documentation/vblk.rst). */
enum {
	EX_OK = 0,
	EX_FAIL = 1,		/* open, transport, system error */
	EX_USAGE = 2,
	EX_IOERR = 5,		/* device answered VIRTIO_BLK_S_IOERR */
	EX_UNSUPP = 6,		/* device answered VIRTIO_BLK_S_UNSUPP */
	EX_BADSTATUS = 7,	/* no status, or an undefined one */
	EX_MISMATCH = 8,	/* verify: data read back differs */
	EX_BROKEN = 9,		/* the virtqueue was marked broken */
};

enum verify_mode { VERIFY_BOTH, VERIFY_WRITE, VERIFY_CHECK };

struct cli {
	const char *cmd;
	const char *backend;
	char **args;
	int nargs;
	struct vblk_opts opts;
	bool unmap;
	bool quiet;
	unsigned int depth;
	size_t bs;
	uint64_t size;
	uint64_t offset;
	unsigned int seed;
	unsigned int passes;
	int timeout_ms;
	enum verify_mode mode;
};

int cli_open(const struct cli *c, struct vblk_dev **devp);
int status_exit(const char *what, uint64_t sector, uint8_t status);
int parse_u64(const char *s, uint64_t *v);
int errno_exit(const char *what, struct vblk_dev *dev, int rc);

/* io.c: synchronous transfers split to what the device accepts */
size_t io_chunk_max(const struct vblk_dev *dev);
int io_xfer(struct vblk_dev *dev, unsigned int q, uint32_t type,
	    uint64_t offset, void *buf, size_t len, int timeout_ms,
	    uint8_t *status);
int io_build_iov(const struct vblk_dev *dev, void *buf, size_t len,
		 struct iovec *iov, unsigned int max);

int cmd_id(struct cli *c);
int cmd_read(struct cli *c);
int cmd_write(struct cli *c);
int cmd_flush(struct cli *c);
int cmd_range(struct cli *c);
int cmd_verify(struct cli *c);
int cmd_info(struct cli *c);

void usage_cmd(const char *cmd, FILE *f);

#endif /* VBLK_CMD_H */
