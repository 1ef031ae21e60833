#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Backend files the device must refuse (backends.c): regular files without
# read_iter/write_iter (/proc/PID/mem, a debugfs attribute), files opened
# with O_APPEND, a zoned block device; and regular files it must serve,
# zero-length requests included.
. "$(dirname "$0")/common.sh"

ktap_header
ktap_plan 9
setup_brd && setup_tmpfs_file && setup_ext4_file || ktap_print "setup failed"
have_vhost_blk || ktap_print "/dev/vhost-blk is missing: every case fails"

# A device that oopses on a backend leaves its owner stuck in the kernel:
# give each case 60 s and go on without it.
bounded() {
	local pid i
	"$@" &
	pid=$!
	for i in $(seq 600); do
		kill -0 $pid 2>/dev/null || { wait $pid; return; }
		sleep 0.1
	done
	echo "still running after 60 s (stuck in the kernel?)"
	return 1
}

B=$HERE/backends
ktap_run "regular file, tmpfs: served, zero-length requests OK" bounded "$B" serve "$TMPFS_FILE"
ktap_run "regular file, ext4: served, zero-length requests OK" bounded "$B" serve "$EXT4_FILE"
ktap_run "O_APPEND file on tmpfs: EINVAL" bounded "$B" refuse "$TMPFS_FILE" append EINVAL
ktap_run "O_APPEND file on ext4: EINVAL" bounded "$B" refuse "$EXT4_FILE" append EINVAL

zoned() {
	local dev
	modprobe null_blk nr_devices=1 zoned=1 gb=1 zone_size=64 || return 1
	dev=/dev/nullb0
	[ "$(cat /sys/block/nullb0/queue/zoned)" = host-managed ] ||
		{ echo "nullb0 is not zoned"; rmmod null_blk; return 1; }
	bounded "$B" refuse $dev rw EOPNOTSUPP
	local rc=$?
	rmmod null_blk || rc=1
	return $rc
}
ktap_run "zoned block device (null_blk zoned=1): EOPNOTSUPP" zoned

debugfs_file=/sys/kernel/debug/fault_around_bytes
mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
ktap_run "debugfs attribute without read_iter, read-only: EINVAL" \
	bounded "$B" refuse $debugfs_file ro EINVAL
# Last: on a module that takes them, these reach a NULL read_iter.
ktap_run "/proc/self/mem read-only (no read_iter): EINVAL" \
	bounded "$B" refuse /proc/self/mem ro EINVAL
ktap_run "/proc/self/mem read-write (no read_iter/write_iter): EINVAL" \
	bounded "$B" refuse /proc/self/mem rw EINVAL
ktap_run "regular file, tmpfs: still served afterwards" bounded "$B" serve "$TMPFS_FILE"
teardown_ext4
ktap_finish
