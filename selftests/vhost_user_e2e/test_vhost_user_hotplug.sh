#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The stock path, hot-plug: as test_vhost_user_blk.sh, and then, while the
# inner guest runs, a second disk is plugged over QMP (chardev-add,
# device_add vhost-user-blk-pci) on a second vhost-blkd over a second
# dm-qcow2 image. The guest must see it (capacity and serial in sysfs),
# write a pattern and read it back O_DIRECT; it is unplugged (device_del,
# the DEVICE_DELETED event, chardev-remove), the guest must lose it and
# keep its first disk; the second daemon must log the disconnect and hold
# no /dev/vhost-blk any more, its dm device no opener once it exited (so
# the kernel dropped its backend file too), and the second image must pass
# qemu-img check and hold exactly the pattern.
exec "$(dirname "$0")/../../tools/qemu/e2e" --vhost-user --hotplug --inner-timeout 1800
