// SPDX-License-Identifier: GPL-2.0
/* vblk: id, read, write, flush, discard and write-zeroes. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "vblk_cmd.h"

static int want_args(const struct cli *c, int lo, int hi)
{
	if (c->nargs >= lo && c->nargs <= hi)
		return 0;
	fprintf(stderr, "vblk %s: wrong number of arguments\n", c->cmd);
	usage_cmd(c->cmd, stderr);
	return EX_USAGE;
}

static int byte_arg(const struct cli *c, int i, const char *name,
		    uint64_t *v)
{
	if (parse_u64(c->args[i], v) || *v % 512) {
		fprintf(stderr, "vblk %s: %s '%s' is not a multiple of 512\n",
			c->cmd, name, c->args[i]);
		return EX_USAGE;
	}
	return 0;
}

int cmd_id(struct cli *c)
{
	struct vblk_dev *dev;
	uint8_t status;
	char *buf;
	int rc;

	if ((rc = want_args(c, 0, 0)) || (rc = cli_open(c, &dev)))
		return rc;
	buf = vblk_mem_alloc(dev, VIRTIO_BLK_ID_BYTES);
	rc = io_xfer(dev, 0, VIRTIO_BLK_T_GET_ID, 0, buf, VIRTIO_BLK_ID_BYTES,
		     c->timeout_ms, &status);
	if (rc)
		rc = errno_exit("id", dev, rc);
	else if (!(rc = status_exit("GET_ID", 0, status)))
		printf("%.*s\n", VIRTIO_BLK_ID_BYTES, buf);
	vblk_close(dev);
	return rc;
}

static int write_all(int fd, const char *p, size_t len)
{
	ssize_t n;

	while (len) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

static ssize_t read_full(int fd, char *p, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = read(fd, p + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		got += n;
	}
	return got;
}

int cmd_read(struct cli *c)
{
	uint64_t off, len, n;
	struct vblk_dev *dev;
	size_t chunk;
	uint8_t status;
	char *buf;
	int rc;

	if ((rc = want_args(c, 2, 2)) || (rc = byte_arg(c, 0, "OFFSET", &off)) ||
	    (rc = byte_arg(c, 1, "LENGTH", &len)) || (rc = cli_open(c, &dev)))
		return rc;
	chunk = io_chunk_max(dev);
	buf = vblk_mem_alloc(dev, chunk);
	for (; !rc && len; off += n, len -= n) {
		n = len < chunk ? len : chunk;
		rc = io_xfer(dev, 0, VIRTIO_BLK_T_IN, off, buf, n,
			     c->timeout_ms, &status);
		if (rc)
			rc = errno_exit("read", dev, rc);
		else if (!(rc = status_exit("read", off / 512, status)) &&
			 write_all(STDOUT_FILENO, buf, n)) {
			perror("vblk read: stdout");
			rc = EX_FAIL;
		}
	}
	vblk_close(dev);
	return rc;
}

int cmd_write(struct cli *c)
{
	struct vblk_dev *dev;
	uint64_t off;
	uint8_t status;
	size_t chunk;
	ssize_t n;
	char *buf;
	int rc;

	if ((rc = want_args(c, 1, 1)) || (rc = byte_arg(c, 0, "OFFSET", &off)) ||
	    (rc = cli_open(c, &dev)))
		return rc;
	chunk = io_chunk_max(dev);
	buf = vblk_mem_alloc(dev, chunk);
	while (!rc) {
		n = read_full(STDIN_FILENO, buf, chunk);
		if (n <= 0) {
			if (n < 0) {
				perror("vblk write: stdin");
				rc = EX_FAIL;
			}
			break;
		}
		if (n % 512) {
			fprintf(stderr, "vblk write: input length is not a multiple of 512\n");
			rc = EX_USAGE;
			break;
		}
		rc = io_xfer(dev, 0, VIRTIO_BLK_T_OUT, off, buf, n,
			     c->timeout_ms, &status);
		rc = rc ? errno_exit("write", dev, rc) :
			  status_exit("write", off / 512, status);
		off += n;
	}
	vblk_close(dev);
	return rc;
}

int cmd_flush(struct cli *c)
{
	struct vblk_req req = { .type = VIRTIO_BLK_T_FLUSH };
	struct vblk_dev *dev;
	int rc;

	if ((rc = want_args(c, 0, 0)) || (rc = cli_open(c, &dev)))
		return rc;
	rc = vblk_do(dev, 0, &req, c->timeout_ms);
	rc = rc ? errno_exit("flush", dev, rc) :
		  status_exit("flush", 0, req.status);
	vblk_close(dev);
	return rc;
}

/* DISCARD or WRITE_ZEROES over a byte range, in the device's units. */
int cmd_range(struct cli *c)
{
	bool wz = !strcmp(c->cmd, "write-zeroes");
	struct vblk_req req = {
		.type = wz ? VIRTIO_BLK_T_WRITE_ZEROES : VIRTIO_BLK_T_DISCARD,
		.flags = wz && c->unmap ? VBLK_REQ_UNMAP : 0,
	};
	uint64_t off = 0, len = 0, max, n;
	struct vblk_dev *dev;
	int rc;

	if ((rc = want_args(c, 0, 2)) || c->nargs == 1) {
		if (!rc)
			rc = want_args(c, 2, 2);
		return rc;
	}
	if (c->nargs == 2 && ((rc = byte_arg(c, 0, "OFFSET", &off)) ||
			      (rc = byte_arg(c, 1, "LENGTH", &len))))
		return rc;
	if ((rc = cli_open(c, &dev)))
		return rc;
	if (c->nargs == 0)
		len = vblk_info(dev)->capacity * 512;
	max = wz ? vblk_info(dev)->max_write_zeroes_sectors :
		   vblk_info(dev)->max_discard_sectors;
	/* no limit advertised: send it whole and let the device judge */
	if (!max || max > (UINT32_MAX & ~7U))
		max = UINT32_MAX & ~7U;
	for (; !rc && len; off += n * 512, len -= n * 512) {
		n = len / 512 < max ? len / 512 : max;
		req.sector = off / 512;
		req.nsectors = n;
		rc = vblk_do(dev, 0, &req, c->timeout_ms);
		rc = rc ? errno_exit(c->cmd, dev, rc) :
			  status_exit(vblk_type_name(req.type), req.sector,
				      req.status);
	}
	vblk_close(dev);
	return rc;
}
