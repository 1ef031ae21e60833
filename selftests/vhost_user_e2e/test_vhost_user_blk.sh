#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The stock path: Debian's unmodified qemu-system-x86_64, run in the test
# VM, boots Debian's kernel with a busybox initramfs whose disk is
# vhost-user-blk-pci on vhost-blkd, over a qcow2 image attached with
# dm-qcow2; the kernel's /dev/vhost-blk serves the rings. The guest
# writes on two queues, reads back, flushes, discards, zeroes, resets the
# device, is live-migrated to a second QEMU (on a second vhost-blkd, the
# kernel dirty-logging into QEMU's shared log) while it does I/O, and
# powers off; the daemon must survive with no user CPU spent on the I/O,
# and the image must pass qemu-img check and hold exactly what was written.
exec "$(dirname "$0")/../../tools/qemu/e2e" --vhost-user --migrate --inner-timeout 1800
