#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# qcow2-dm snapshot NAME --external NEW: the live device switches onto a
# new overlay while a writer runs. No write is lost or reordered: the
# device ends up holding every block the writer wrote; the old image holds
# a prefix of the writer's sequence (the writes completed before the
# switch) and nothing after; both images check clean; the chain reads back
# what the device showed, also after detach and a new attach.
. "$(dirname "$0")/lib.sh"

[ "$DQ_STANDIN" = nbd ] && ktap_skip_all "tests qcow2-dm itself"
ktap_header
ktap_plan 11

SIZE=$((64 << 20))
BLK=65536
NBLK=256			# the writer covers the first 16 MiB
base=$WORK/base.qcow2
over=$WORK/over.qcow2
over2=$WORK/over2.qcow2
pat=$WORK/pattern
dname=$(dq_name)

dq_make_pattern
qemu-img create -q -f qcow2 "$base" $SIZE
qemu-io -c "write -P 0x11 32M 8M" "$base" >/dev/null

dq_attach "$base" "$dname" || ktap_print "attach failed"
dq_writer > "$WORK/writer.log" 2>&1 &
wpid=$!
sleep 1
dq_step "snapshot --external while a writer runs" \
	dq_live qcow2-dm snapshot "$dname" --external "$over"
wait $wpid
dq_step "the writer saw no error" test ! -s "$WORK/writer.log"
dq_step "info shows the old image as backing file" \
	sh -c "qcow2-dm info '$dname' | grep -q '^backing: qcow2 $base\$'"
dd if="$DEV" of="$WORK/dev.raw" bs=1M iflag=direct status=none
# the old image is frozen: qemu-img may copy it while the device is live
dq_step "qemu-img copies the old image while the device is attached" \
	qemu-img convert -O raw "$base" "$WORK/base_live.raw"
dq_step "the device holds every block written" \
	cmp -n $((NBLK * BLK)) "$WORK/dev.raw" "$pat"
dq_step "what was there before is still there" \
	sh -c "qemu-io -f raw -c 'read -P 0x11 32M 8M' '$WORK/dev.raw' | grep -q 'read 8388608'"

fails_with() {		# fails_with PATTERN CMD...
	local p=$1 out
	shift
	out=$("$@" 2>&1) && { echo "unexpected success"; return 1; }
	echo "$out" | grep -Eq "$p" || { echo "$out"; return 1; }
}
refusals() {
	fails_with "already exists" qcow2-dm snapshot "$dname" --external "$over" &&
	fails_with "no such device" qcow2-dm snapshot nosuchdev --external "$WORK/x.qcow2" &&
	fails_with "operation" qcow2-dm snapshot "$dname" &&
	test ! -e "$WORK/x.qcow2"
}
dq_step "refused: existing file, unknown device, no overlay named" refusals
dq_step "a second snapshot on top: a chain of three" \
	qcow2-dm snapshot "$dname" --external "$over2"
dq_detach "$dname" || ktap_print "detach failed"

images_clean() {
	dq_check_clean "$base" && dq_check_clean "$over" && dq_check_clean "$over2"
}
dq_step "all three images check clean after detach" images_clean
base_prefix() {
	qemu-img convert -O raw "$base" "$WORK/base.raw" &&
	dq_prefix_of_pattern "$WORK/base.raw" "old image" &&
	cmp "$WORK/base.raw" "$WORK/base_live.raw"
}
dq_step "the old image holds a prefix of the writes, nothing later" base_prefix
reattach() {
	qemu-img convert -O raw "$over2" "$WORK/chain.raw" &&
	cmp "$WORK/chain.raw" "$WORK/dev.raw" &&
	dq_attach "$over2" "$dname" && cmp "$DEV" "$WORK/dev.raw" &&
	dq_detach "$dname"
}
dq_step "the chain reads back what the device showed, also attached again" \
	reattach
ktap_finish
