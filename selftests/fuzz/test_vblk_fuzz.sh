#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Mutated descriptor chains against /dev/vhost-blk (see vblk_fuzz.c), on a
# RAM disk and on a dm-qcow2 device. Every request must get a virtio status
# or break the queue; the device must serve valid I/O after each batch.
#   FUZZ_VBLK_ITERS=N requests per backend (default 1000), FUZZ_SEED=S
. "$(dirname "$0")/../lib/ktap.sh"

HERE=$(cd "$(dirname "$0")" && pwd)
ITERS=${FUZZ_VBLK_ITERS:-1000}
SEED=${FUZZ_SEED:-1}
WORK=$(mktemp -d /tmp/vfuzz.XXXXXX)
DM=vfuzz$$
cleanup() {
	dmsetup remove "$DM" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

ktap_header
ktap_plan 2
[ -c /dev/vhost-blk ] || ktap_print "/dev/vhost-blk is missing: every case fails"

brd() {
	[ -b /dev/ram0 ] || modprobe brd rd_nr=1 rd_size=65536 || return 1
	"$HERE/vblk_fuzz" /dev/ram0 --iters "$ITERS" --seed "$SEED"
}
ktap_run "vhost-blk request fuzz, brd backend" brd

qcow2() {
	local img=$WORK/fuzz.qcow2
	qemu-img create -q -f qcow2 "$img" 64M || return 1
	dmsetup create "$DM" --table "0 $((64 << 11)) qcow2 $img" || return 1
	"$HERE/vblk_fuzz" "/dev/mapper/$DM" --iters "$ITERS" --seed $((SEED + 1)) || return 1
	dmsetup remove "$DM" || return 1
	qemu-img check "$img"
}
ktap_run "vhost-blk request fuzz, dm-qcow2 backend" qcow2
ktap_finish
