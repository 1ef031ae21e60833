/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Image locking compatible with QEMU's file-posix driver: open file
 * description (OFD) read locks on byte 100+perm for each permission held
 * and on byte 200+perm for each permission not shared with others.
 */
#ifndef QCOW2_DM_LOCK_H
#define QCOW2_DM_LOCK_H

enum lock_mode {
	LOCK_WRITER,	/* the attached image, read-write */
	LOCK_READER,	/* read-only attach, and every backing file */
};

/*
 * Check that no other open file description conflicts, then take the
 * locks on fd. On conflict or error prints a message naming path and
 * returns -1. The locks last as long as the open file description.
 */
int image_lock(int fd, const char *path, enum lock_mode mode);

#endif
