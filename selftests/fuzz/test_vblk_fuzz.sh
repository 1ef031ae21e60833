#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Mutated descriptor chains against /dev/vhost-blk (see vblk_fuzz.c), on a
# RAM disk and on a dm-qcow2 device. Every request must get a virtio status
# or break the queue; the device must serve valid I/O after each batch.
#   FUZZ_VBLK_ITERS=N requests per backend (default 500), FUZZ_SEED=S
#   (default: a fresh seed each run, printed)
. "$(dirname "$0")/../lib/ktap.sh"

HERE=$(cd "$(dirname "$0")" && pwd)
ITERS=${FUZZ_VBLK_ITERS:-500}
SEED=${FUZZ_SEED:-$(( $(od -An -N2 -tu2 /dev/urandom) % 60000 + 1 ))}
WORK=$(mktemp -d /tmp/vfuzz.XXXXXX)
DM=vfuzz$$
cleanup() {
	dmsetup remove "$DM" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

ktap_header
ktap_plan 3
ktap_print "seed $SEED (rerun: FUZZ_SEED=$SEED FUZZ_VBLK_ITERS=$ITERS)"
[ -c /dev/vhost-blk ] || ktap_print "/dev/vhost-blk is missing: every case fails"

brd() {
	[ -b /dev/ram0 ] || modprobe brd rd_nr=2 rd_size=131072 || return 1
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

# the fuzzer itself: data written where no descriptor may point is caught
planted() {
	local out
	out=$("$HERE/vblk_fuzz" /dev/ram0 --iters 8 --plant-canary) &&
		{ echo "$out"; echo "planted canary write not caught"; return 1; }
	echo "$out" | grep -q "canary in guest memory changed" || { echo "$out"; return 1; }
}
ktap_run "fuzzer catches a planted write outside the allowed buffers" planted
ktap_finish
