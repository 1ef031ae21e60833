// SPDX-License-Identifier: GPL-2.0
/*
 * dm-qcow2: device-mapper target exposing a QCOW2 image file.
 *
 * Skeleton: registers the "qcow2" target; every table is refused until the
 * format code lands.
 */
#include <linux/module.h>
#include <linux/device-mapper.h>

#define DM_MSG_PREFIX "qcow2"

static int qcow2_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	ti->error = "qcow2 target not implemented yet";
	return -EOPNOTSUPP;
}

static void qcow2_dtr(struct dm_target *ti)
{
}

static int qcow2_map(struct dm_target *ti, struct bio *bio)
{
	return DM_MAPIO_KILL;
}

static struct target_type qcow2_target = {
	.name = "qcow2",
	.version = {0, 1, 0},
	.module = THIS_MODULE,
	.ctr = qcow2_ctr,
	.dtr = qcow2_dtr,
	.map = qcow2_map,
};

static int __init dm_qcow2_init(void)
{
	return dm_register_target(&qcow2_target);
}

static void __exit dm_qcow2_exit(void)
{
	dm_unregister_target(&qcow2_target);
}

module_init(dm_qcow2_init);
module_exit(dm_qcow2_exit);

MODULE_DESCRIPTION(DM_NAME " target for QCOW2 image files");
MODULE_LICENSE("GPL");
