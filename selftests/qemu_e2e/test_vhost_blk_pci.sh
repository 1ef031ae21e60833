#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# A real guest on vhost-blk-pci: the patched QEMU, run in the test VM,
# boots Debian's kernel with a busybox initramfs whose disk is a qcow2
# image served through dm-qcow2 and /dev/vhost-blk; the guest writes on
# two queues, reads back, flushes, discards, resets the device, is
# live-migrated to a second QEMU while it does I/O and powers off; the
# image must then pass qemu-img check and hold exactly what was written.
# Skips (exit 4) when tools/qemu/build has not been run on the host.
exec "$(dirname "$0")/../../tools/qemu/e2e" --migrate --inner-timeout 1800
