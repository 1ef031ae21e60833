#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The stock path, the daemon killed: as test_vhost_user_blk.sh, but instead
# of the migration vhost-blkd is killed (SIGKILL) while the guest writes
# and reads in a loop, and started again on the same socket; QEMU
# (reconnect=1) reconnects and restarts the rings, and the guest must see
# no error and every chunk it wrote on the disk.
exec "$(dirname "$0")/../../tools/qemu/e2e" --vhost-user --restart --inner-timeout 1800
