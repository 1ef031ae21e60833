#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The project's modules load, register what they promise, and unload
# cleanly; then load again for the suites that follow in the same boot.
. "$(dirname "$0")/../lib/ktap.sh"

mods_dir=$TOP/build/$KREL/modules

loaded() { grep -q "^$1 " /proc/modules; }

ktap_header
ktap_plan 6

if loaded dm_qcow2 && loaded vhost_blk; then
	ktap_ok "modules loaded by the VM"
else
	ktap_fail "modules loaded by the VM" "$(lsmod)"
fi

if dmsetup targets | grep -q '^qcow2 '; then
	ktap_ok "dmsetup targets lists qcow2"
else
	ktap_fail "dmsetup targets lists qcow2" "$(dmsetup targets)"
fi

if [ -c /dev/vhost-blk ] && grep -q ' vhost-blk$' /proc/misc; then
	ktap_ok "/dev/vhost-blk is a misc character device"
else
	ktap_fail "/dev/vhost-blk is a misc character device" "$(ls -l /dev/vhost-blk 2>&1)"
fi

if rmmod dm_qcow2 && rmmod vhost_blk && ! loaded dm_qcow2 && ! loaded vhost_blk; then
	ktap_ok "modules unload"
else
	ktap_fail "modules unload" "$(lsmod | head)"
fi

if ! dmsetup targets | grep -q '^qcow2 ' && [ ! -e /dev/vhost-blk ]; then
	ktap_ok "unload removes target and device"
else
	ktap_fail "unload removes target and device"
fi

if insmod "$mods_dir/dm-qcow2.ko" && insmod "$mods_dir/vhost_blk.ko" &&
   dmsetup targets | grep -q '^qcow2 ' && [ -c /dev/vhost-blk ]; then
	ktap_ok "modules load again"
else
	ktap_fail "modules load again"
fi
ktap_finish
