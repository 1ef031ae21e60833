#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The stock path through libvirt: Debian's libvirtd, started in the test VM
# with a private configuration (tools/qemu/private-libvirtd: QEMU as root,
# no cgroups, namespaces or security driver), defines and starts the domain
# XML of Documentation/qemu-vhost-blk.rst, whose disk is
# <disk type='vhostuser'> on vhost-blkd over a dm-qcow2 image. The inner
# guest runs the checks of test_vhost_user_blk.sh (without the migration);
# a second vhostuser disk on a second vhost-blkd and image is attached with
# virsh attach-device, written and read by the guest, and detached with
# virsh detach-device; virsh shutdown powers the guest off through its
# ACPI power button. Both images must pass qemu-img check and hold exactly
# what was written.
exec "$(dirname "$0")/../../tools/qemu/e2e" --libvirt --inner-timeout 1800
