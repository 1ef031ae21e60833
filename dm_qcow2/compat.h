/* SPDX-License-Identifier: GPL-2.0 */
/*
 * compat.h: the only place where dm-qcow2 cares about the kernel version.
 * Supported: Debian's 6.1 and 6.12 lines.
 */
#ifndef DM_QCOW2_COMPAT_H
#define DM_QCOW2_COMPAT_H

#include <linux/version.h>
#include <linux/device-mapper.h>
#include <linux/blkdev.h>
#include <linux/fs.h>
#include <linux/uio.h>
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 12, 0)
#include <linux/unaligned.h>
#else
#include <asm/unaligned.h>
#endif

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 5, 0)
/* dm_table_get_mode() returns blk_mode_t since 6.5 */
static inline bool qcow2_table_writable(struct dm_target *ti)
{
	return dm_table_get_mode(ti->table) & BLK_OPEN_WRITE;
}
#else
static inline bool qcow2_table_writable(struct dm_target *ti)
{
	return dm_table_get_mode(ti->table) & FMODE_WRITE;
}
#endif

/* Discard limits: 6.12 derives max_discard_sectors from the hw limit. */
static inline void qcow2_set_discard_limits(struct queue_limits *lim,
					    unsigned int sectors)
{
	lim->max_hw_discard_sectors = sectors;
	lim->max_discard_sectors = sectors;
	lim->max_write_zeroes_sectors = sectors;
}

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 7, 0)
/* vfs_iter_write() takes freeze protection itself since 6.7 */
static inline ssize_t qcow2_vfs_write(struct file *f, struct iov_iter *it,
				      loff_t *pos)
{
	return vfs_iter_write(f, it, pos, 0);
}
#else
static inline ssize_t qcow2_vfs_write(struct file *f, struct iov_iter *it,
				      loff_t *pos)
{
	ssize_t ret;

	file_start_write(f);
	ret = vfs_iter_write(f, it, pos, 0);
	file_end_write(f);
	return ret;
}
#endif

#endif /* DM_QCOW2_COMPAT_H */
