#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# vhost_blk module check: vhost_blk_core on a brd device and on a raw file,
# with one and with several workers; activation errors; busy polling;
# worker changes under IOTLB traffic; the dirty log while LOG_ALL is
# switched with reads in flight on every queue (dm-delay below). Each run
# prints its own KTAP as comments; this script reports one result per run.
dir=$(cd "$(dirname "$0")" && pwd)
. "$dir/../lib/ktap.sh"

ktap_header
[ -e /dev/vhost-blk ] || ktap_skip_all "no /dev/vhost-blk"
modprobe brd rd_nr=1 rd_size=65536 || ktap_skip_all "no brd"
img=$(mktemp /tmp/vblk-core.XXXXXX)
truncate -s 64M "$img"
ktap_plan 9

run() {
	local name=$1; shift
	local out rc
	out=$("$dir/vhost_blk_core" "$@" 2>&1); rc=$?
	echo "$out" | sed 's/^/# /'
	if [ $rc = 0 ]; then ktap_ok "$name"; else ktap_fail "$name" "exit $rc"; fi
}
run "brd, 1 worker" /dev/ram0
run "brd, 3 workers" --workers 3 /dev/ram0
run "raw file, 1 worker" "$img"
run "raw file, 2 workers" --workers 2 "$img"
run "activation errors reach the caller" --activation /dev/ram0
run "busy polling (VHOST_SET_VRING_BUSYLOOP_TIMEOUT), brd" --busyloop /dev/ram0
# a blk-mq device: plugged requests must reach it while the worker polls
modprobe loop 2>/dev/null
loopdev=$(losetup --show -f "$img") || loopdev=/dev/loop-setup-failed
run "busy polling, loop device (blk-mq)" --busyloop "$loopdev"
losetup -d "$loopdev" 2>/dev/null
run "worker changes under IOTLB traffic" --iotlb-workers /dev/ram0
# 20 ms per read: every request is in flight when LOG_ALL switches
modprobe dm-delay 2>/dev/null
if dmsetup create vblk-core-delay --table \
	"0 $(blockdev --getsz /dev/ram0) delay /dev/ram0 0 20"; then
	run "dirty log under load (LOG_ALL switched, 3 queues in flight)" \
		--dirty-load /dev/mapper/vblk-core-delay
	dmsetup remove vblk-core-delay
else
	ktap_fail "dirty log under load" "cannot create a dm-delay device"
fi
rm -f "$img"
rmmod brd 2>/dev/null
ktap_finish
