// SPDX-License-Identifier: GPL-2.0
/*
 * QEMU-compatible image locking (see QEMU's block/file-posix.c,
 * raw_apply_lock_bytes and raw_check_lock_bytes). Permission bits:
 * 0 consistent read, 1 write, 2 write unchanged, 3 resize, 4 graph mod.
 * A holder of permission P takes a shared OFD lock on byte 100+P; a holder
 * that refuses to share P takes one on byte 200+P. Before taking them,
 * QEMU tests 200+P for every P it wants (someone refuses to share it) and
 * 100+P for every P it refuses to share (someone holds it).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "lock.h"
#include "util.h"

#define PERM_CONSISTENT_READ	0
#define PERM_WRITE		1
#define PERM_WRITE_UNCHANGED	2
#define PERM_RESIZE		3
#define PERM_GRAPH_MOD		4
#define PERM_COUNT		5
#define LOCK_PERM_BASE		100
#define LOCK_SHARED_BASE	200

static const char *const perm_names[PERM_COUNT] = {
	"consistent read", "write", "write unchanged", "resize", "graph mod",
};

/* What QEMU itself holds for a writable and for a read-only image. */
static unsigned int held_perms(enum lock_mode mode)
{
	if (mode == LOCK_WRITER)
		return 1u << PERM_CONSISTENT_READ | 1u << PERM_WRITE |
		       1u << PERM_RESIZE;
	return 1u << PERM_CONSISTENT_READ;
}

/* The permissions we refuse to share: nobody else may write or resize. */
static unsigned int unshared_perms(void)
{
	return 1u << PERM_WRITE | 1u << PERM_RESIZE;
}

/* 1 when another open file description holds a lock on byte off. */
static int byte_taken(int fd, off_t off)
{
	struct flock fl = {
		.l_type = F_WRLCK, .l_whence = SEEK_SET,
		.l_start = off, .l_len = 1,
	};

	if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
		return -1;
	return fl.l_type != F_UNLCK;
}

static int lock_byte(int fd, off_t off)
{
	struct flock fl = {
		.l_type = F_RDLCK, .l_whence = SEEK_SET,
		.l_start = off, .l_len = 1,
	};

	return fcntl(fd, F_OFD_SETLK, &fl);
}

static int check_conflicts(int fd, const char *path, unsigned int held,
			   unsigned int unshared)
{
	int p, r;

	for (p = 0; p < PERM_COUNT; p++) {
		if (held & (1u << p)) {
			r = byte_taken(fd, LOCK_SHARED_BASE + p);
			if (r < 0)
				return err_errno("%s: testing lock", path);
			if (r) {
				fail_reason(EXIT_BUSY);
				return err("%s: image is in use: another process (QEMU?) "
					   "does not share the \"%s\" permission",
					   path, perm_names[p]);
			}
		}
		if (unshared & (1u << p)) {
			r = byte_taken(fd, LOCK_PERM_BASE + p);
			if (r < 0)
				return err_errno("%s: testing lock", path);
			if (r) {
				fail_reason(EXIT_BUSY);
				return err("%s: image is in use: another process (QEMU?) "
					   "holds the \"%s\" permission",
					   path, perm_names[p]);
			}
		}
	}
	return 0;
}

int image_lock(int fd, const char *path, enum lock_mode mode)
{
	unsigned int held = held_perms(mode), unshared = unshared_perms();
	int p;

	if (check_conflicts(fd, path, held, unshared))
		return -1;
	for (p = 0; p < PERM_COUNT; p++) {
		if ((held & (1u << p)) && lock_byte(fd, LOCK_PERM_BASE + p))
			goto fail;
		if ((unshared & (1u << p)) &&
		    lock_byte(fd, LOCK_SHARED_BASE + p))
			goto fail;
	}
	return 0;
fail:
	if (errno == EAGAIN || errno == EACCES) {
		fail_reason(EXIT_BUSY);
		return err("%s: image is in use by another process (lock conflict)",
			   path);
	}
	return err_errno("%s: taking the image lock", path);
}
