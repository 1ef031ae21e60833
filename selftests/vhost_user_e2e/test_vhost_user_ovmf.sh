#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The stock path through firmware: as test_vhost_user_blk.sh, but the inner
# guest boots through OVMF (Debian's ovmf) from the disk under test, a GPT
# disk whose FAT ESP holds the kernel (EFI stub), the initramfs and a
# startup.nsh for the UEFI shell; no -kernel. What it proves: OVMF's own
# virtio-blk driver reads the kernel and initramfs through vhost-blkd and
# /dev/vhost-blk, with buffers from the UEFI pool that are not aligned to
# the backend's block size (virtio-blk cannot ask for that): the module
# must serve such requests by bouncing them, and a kprobe on its bounce
# function must count at least one before the guest's init runs. Then the
# normal checks run on the same disk.
exec "$(dirname "$0")/../../tools/qemu/e2e" --vhost-user --ovmf --inner-timeout 3000
