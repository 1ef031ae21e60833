#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Data segments that are not aligned to the backend's logical block size
# (address or length) are served, data compared (align.c), on 512-byte and
# 4 KiB logical-block backends: brd, a loop device with 4 KiB sectors, a
# raw file on tmpfs, and raw files on ext4 (direct I/O) on brd and on the
# 4 KiB loop device.
. "$(dirname "$0")/common.sh"

LOOP_FILE=$WORK/loop4k.img
LOOP_MNT=$WORK/ext4-4k

ktap_header
ktap_plan 5
setup_brd && setup_tmpfs_file && setup_ext4_file || ktap_print "setup failed"
have_vhost_blk || ktap_print "/dev/vhost-blk is missing: every case fails"

loopdev=
setup_loop4k() {
	modprobe loop 2>/dev/null
	truncate -s 96M "$LOOP_FILE" &&
	loopdev=$(losetup --sector-size 4096 --show -f "$LOOP_FILE") || return 1
	[ "$(blockdev --getss "$loopdev")" = 4096 ] || return 1
	mkdir -p "$LOOP_MNT"
}
setup_loop4k || ktap_print "4 KiB loop device setup failed"

ktap_run "brd (512 B blocks)" "$HERE/align" /dev/ram0
ktap_run "loop device with 4 KiB sectors" "$HERE/align" "${loopdev:-/dev/loop-missing}"
ktap_run "raw file on tmpfs" "$HERE/align" "$TMPFS_FILE"
ktap_run "raw file on ext4 on brd (direct I/O, 512 B)" "$HERE/align" "$EXT4_FILE"

ext4_4k() {
	mkfs.ext4 -q -F "$loopdev" >/dev/null 2>&1 &&
	mount "$loopdev" "$LOOP_MNT" || return 1
	fallocate -l $FILE_SIZE "$LOOP_MNT/disk.raw" &&
	"$HERE/align" "$LOOP_MNT/disk.raw"
	local rc=$?
	umount "$LOOP_MNT"
	return $rc
}
ktap_run "raw file on ext4 on the 4 KiB loop device (direct I/O, 4 KiB)" ext4_4k

[ -n "$loopdev" ] && losetup -d "$loopdev"
rm -f "$LOOP_FILE"
teardown_ext4
ktap_finish
