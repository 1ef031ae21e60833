// SPDX-License-Identifier: GPL-2.0
/*
 * backends: VHOST_BLK_SET_BACKEND with files a device must not serve, and
 * with ones it must.
 *
 *   backends refuse PATH rw|ro|append ERRNO
 *	open PATH (read-write, read-only, or read-write with O_APPEND); the
 *	device must refuse it with ERRNO (EINVAL, EOPNOTSUPP, ...). Should
 *	it take the file, zero-length and normal requests are sent to show
 *	what it does with them, and the case fails.
 *   backends serve PATH
 *	a usable file: zero-length reads and writes complete OK, 8 KiB
 *	written at sector 8 read back equal and are in the file at 4096.
 *
 * Exit 0 when the device did what it must, 1 otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "../../tools/libvblk/vblk.h"

#define TIMEOUT_MS	10000

static struct vblk_dev *dev;

static const struct {
	const char *name;
	int err;
} errnos[] = {
	{ "EINVAL", EINVAL }, { "EOPNOTSUPP", EOPNOTSUPP },
	{ "EBADF", EBADF }, { "EPERM", EPERM }, { "EACCES", EACCES },
};

static int errno_of(const char *name)
{
	unsigned int i;

	for (i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++)
		if (!strcmp(errnos[i].name, name))
			return errnos[i].err;
	return -1;
}

/* One request; prints its outcome; returns the status or -1. */
static int req(uint32_t type, uint64_t sector, void *buf, size_t len)
{
	struct iovec iov = { buf, len };
	struct vblk_req r = { .type = type, .sector = sector, .iov = &iov,
			      .iovcnt = len ? 1 : 0 };
	int rc = vblk_do(dev, 0, &r, TIMEOUT_MS);

	if (rc) {
		printf("%s of %zu bytes at sector %llu: %s\n",
		       vblk_type_name(type), len, (unsigned long long)sector,
		       vblk_errmsg(dev));
		return -1;
	}
	printf("%s of %zu bytes at sector %llu: %s\n", vblk_type_name(type),
	       len, (unsigned long long)sector, vblk_status_name(r.status));
	return r.status;
}

static int open_dev(void)
{
	struct vblk_opts o = { .transport = VBLK_TR_KERNEL, .no_backend = true,
			       .data_mem = 1 << 20 };
	char err[256];

	if (vblk_open(&dev, "/dev/null", &o, err, sizeof(err))) {
		printf("open /dev/vhost-blk: %s\n", err);
		return -1;
	}
	return 0;
}

static int refuse(const char *path, const char *mode, const char *want_name)
{
	int flags = O_RDWR, want = errno_of(want_name), fd, rc;
	uint8_t *buf;
	struct stat st;
	off_t size0;

	if (want < 0) {
		printf("unknown errno name %s\n", want_name);
		return 1;
	}
	if (!strcmp(mode, "ro"))
		flags = O_RDONLY;
	else if (!strcmp(mode, "append"))
		flags |= O_APPEND;
	fd = open(path, flags | O_CLOEXEC);
	if (fd < 0) {
		printf("%s: %s\n", path, strerror(errno));
		return 1;
	}
	size0 = fstat(fd, &st) ? -1 : st.st_size;
	if (open_dev())
		return 1;
	rc = vblk_set_backend(dev, fd);
	if (rc == -want) {
		printf("%s (%s): refused with %s, as it must be\n", path, mode,
		       want_name);
		vblk_close(dev);
		close(fd);
		return 0;
	}
	printf("%s (%s): SET_BACKEND returned %d (%s), expected -%s\n", path,
	       mode, rc, rc ? strerror(-rc) : "taken", want_name);
	if (rc)
		return 1;
	/* Taken: show what becomes of requests on it. */
	buf = vblk_mem_alloc(dev, 8192);
	printf("capacity %llu sectors, block size %u\n",
	       (unsigned long long)vblk_info(dev)->capacity,
	       vblk_info(dev)->blk_size);
	req(VIRTIO_BLK_T_IN, 0, buf, 0);
	req(VIRTIO_BLK_T_IN, 0, buf, 4096);
	if (flags != O_RDONLY) {
		memset(buf, 0x5a, 4096);
		req(VIRTIO_BLK_T_OUT, 0, buf, 0);
		req(VIRTIO_BLK_T_OUT, 0, buf, 4096);
		if (!fstat(fd, &st) && st.st_size != size0)
			printf("the file grew from %lld to %lld bytes: the write went elsewhere\n",
			       (long long)size0, (long long)st.st_size);
	}
	vblk_close(dev);
	close(fd);
	return 1;
}

static int serve(const char *path)
{
	uint8_t *buf, *back, file[8192];
	int fd, rc = 0, i;

	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		printf("%s: %s\n", path, strerror(errno));
		return 1;
	}
	if (open_dev())
		return 1;
	if (vblk_set_backend(dev, fd)) {
		printf("%s: SET_BACKEND: %s\n", path, vblk_errmsg(dev));
		return 1;
	}
	buf = vblk_mem_alloc(dev, 8192);
	back = vblk_mem_alloc(dev, 8192);
	for (i = 0; i < 8192; i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	rc |= req(VIRTIO_BLK_T_IN, 0, back, 0) != VIRTIO_BLK_S_OK;
	rc |= req(VIRTIO_BLK_T_OUT, 0, buf, 0) != VIRTIO_BLK_S_OK;
	rc |= req(VIRTIO_BLK_T_IN, vblk_info(dev)->capacity, back, 0) !=
	      VIRTIO_BLK_S_OK;
	rc |= req(VIRTIO_BLK_T_OUT, 8, buf, 8192) != VIRTIO_BLK_S_OK;
	memset(back, 0, 8192);
	rc |= req(VIRTIO_BLK_T_IN, 8, back, 8192) != VIRTIO_BLK_S_OK;
	if (memcmp(buf, back, 8192)) {
		printf("read back differs from what was written\n");
		rc = 1;
	}
	if (pread(fd, file, sizeof(file), 4096) != sizeof(file) ||
	    memcmp(file, buf, sizeof(file))) {
		printf("the file does not hold the data at byte 4096\n");
		rc = 1;
	}
	vblk_close(dev);
	close(fd);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "refuse"))
		return refuse(argv[2], argv[3], argv[4]);
	if (argc == 3 && !strcmp(argv[1], "serve"))
		return serve(argv[2]);
	printf("usage: backends refuse PATH rw|ro|append ERRNO\n"
	       "       backends serve PATH\n"
	       "SET_BACKEND with files vhost-blk must refuse or serve.\n");
	return argc == 2 && !strcmp(argv[1], "--help") ? 0 : 2;
}
