// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk: in-kernel virtio-blk backend.
 *
 * Skeleton: registers /dev/vhost-blk; the device is not usable yet.
 */
#include <linux/module.h>
#include <linux/miscdevice.h>
#include <linux/fs.h>
#include "vhost.h"

static int vhost_blk_open(struct inode *inode, struct file *f)
{
	return -EOPNOTSUPP;
}

static const struct file_operations vhost_blk_fops = {
	.owner = THIS_MODULE,
	.open = vhost_blk_open,
	.llseek = noop_llseek,
};

static struct miscdevice vhost_blk_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "vhost-blk",
	.fops = &vhost_blk_fops,
};

module_misc_device(vhost_blk_misc);

MODULE_DESCRIPTION("Host kernel accelerator for virtio-blk");
MODULE_LICENSE("GPL");
