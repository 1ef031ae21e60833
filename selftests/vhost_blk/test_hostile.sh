#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Malformed guest requests (see hostile.c for every case and the answer it
# must get), on a block device and on a file backend; then a flood of
# refused requests must not flood the kernel log (rate-limited); then one
# head offered over and over must not put more than a ring in flight.
. "$(dirname "$0")/common.sh"

ktap_header
ktap_plan 4
setup_brd && setup_ext4_file || ktap_print "setup failed"
have_vhost_blk || ktap_print "/dev/vhost-blk is missing: every case fails"

ktap_run "hostile requests, brd backend" "$HERE/hostile" /dev/ram0
ktap_run "hostile requests, file backend" "$HERE/hostile" "$EXT4_FILE"

flood() {
	local before after n
	before=$(dmesg | wc -l)
	"$HERE/hostile" /dev/ram0 --flood 2000 || return 1
	after=$(dmesg | wc -l)
	n=$((after - before))
	echo "kernel log grew by $n lines for 2000 refused requests"
	[ $n -lt 200 ]
}
ktap_run "refusals are rate-limited in the kernel log" flood

# One head offered ring after ring while its reads stay in flight on a
# slow device (dm-delay, 100 ms): at most the ring size is taken.
head_reuse() {
	local rc
	modprobe dm_delay || return 1
	dmsetup create vbslow --table "0 $((RD_KB * 2)) delay /dev/ram0 0 100" || return 1
	"$HERE/hostile" /dev/mapper/vbslow --head-reuse 20; rc=$?
	dmsetup remove vbslow || rc=1
	return $rc
}
ktap_run "one head offered over and over: in flight bounded by the ring" head_reuse
teardown_ext4
ktap_finish
