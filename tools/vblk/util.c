// SPDX-License-Identifier: GPL-2.0
/* vblk: opening the device, and turning results into exit statuses. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vblk_cmd.h"

int cli_open(const struct cli *c, struct vblk_dev **devp)
{
	char err[256];
	int rc;

	rc = vblk_open(devp, c->backend, &c->opts, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "vblk: %s: %s\n", c->backend, err);
		return EX_FAIL;
	}
	return EX_OK;
}

int status_exit(const char *what, uint64_t sector, uint8_t status)
{
	if (status == VIRTIO_BLK_S_OK)
		return EX_OK;
	fprintf(stderr, "vblk: %s at sector %llu: %s (status %u)\n", what,
		(unsigned long long)sector, vblk_status_name(status), status);
	switch (status) {
	case VIRTIO_BLK_S_IOERR:
		return EX_IOERR;
	case VIRTIO_BLK_S_UNSUPP:
		return EX_UNSUPP;
	default:
		return EX_BADSTATUS;
	}
}

int errno_exit(const char *what, struct vblk_dev *dev, int rc)
{
	fprintf(stderr, "vblk: %s: %s\n", what,
		dev && vblk_errmsg(dev)[0] ? vblk_errmsg(dev) : strerror(-rc));
	return rc == -EIO ? EX_BROKEN : EX_FAIL;
}

/* Decimal or 0x hex, with an optional K, M, G or T suffix (binary). */
int parse_u64(const char *s, uint64_t *v)
{
	unsigned long long n;
	unsigned int shift = 0;
	char *end;

	if (!s || !*s || *s == '-')
		return -1;
	errno = 0;
	n = strtoull(s, &end, 0);
	if (errno)
		return -1;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	}
	if (*end || (shift && n > (~0ULL >> shift)))
		return -1;
	*v = n << shift;
	return 0;
}
