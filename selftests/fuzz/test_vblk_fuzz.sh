#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Mutated descriptor chains against /dev/vhost-blk (see vblk_fuzz.c), on a
# RAM disk and on a dm-qcow2 device. Every request must get a virtio status
# or break the queue; the device must serve valid I/O after each batch.
# The corpus of cases that once failed (corpus/vblk.cases) is replayed
# first.
#   FUZZ_VBLK_ITERS=N requests per backend (default 500), FUZZ_SEED=S
#   (default: a fresh seed each run, printed)
. "$(dirname "$0")/../lib/ktap.sh"
. "$(dirname "$0")/lib.sh"

ITERS=${FUZZ_VBLK_ITERS:-500}
SEED=${FUZZ_SEED:-$(( $(od -An -N2 -tu2 /dev/urandom) % 60000 + 1 ))}

ktap_header
ktap_plan 4
ktap_print "seed $SEED (rerun: FUZZ_SEED=$SEED FUZZ_VBLK_ITERS=$ITERS)"
[ -c /dev/vhost-blk ] || ktap_print "/dev/vhost-blk is missing: every case fails"

ktap_run "vhost-blk corpus replay" vblk_replay

fuzz() {
	local out=/tmp/vblk-fuzz.$$ rc
	vblk_on "$1" --iters "$ITERS" --seed "$2" > "$out" 2>&1
	rc=$?
	cat "$out"
	[ "$rc" = 0 ] || vblk_save "$1" "$out" "make check $(date -u +%F)"
	rm -f "$out"
	return $rc
}
ktap_run "vhost-blk request fuzz, brd backend" fuzz brd "$SEED"
ktap_run "vhost-blk request fuzz, dm-qcow2 backend" fuzz qcow2 $((SEED + 1))

# the fuzzer itself: data written where no descriptor may point is caught
planted() {
	local out
	out=$("$FUZZ_DIR/vblk_fuzz" /dev/ram0 --iters 8 --plant-canary) &&
		{ echo "$out"; echo "planted canary write not caught"; return 1; }
	echo "$out" | grep -q "canary in guest memory changed" || { echo "$out"; return 1; }
}
ktap_run "fuzzer catches a planted write outside the allowed buffers" planted
ktap_finish
