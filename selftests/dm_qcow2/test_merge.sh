#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# qcow2-dm merge NAME: the top image is committed into its backing file
# while a writer keeps writing through the device; afterwards the device
# runs on the backing file alone, holds every write (before, during and
# after the merge), the image checks clean and reads back the same after
# detach. Refusals: no backing file, extended L2 top image.
. "$(dirname "$0")/lib.sh"

[ "$DQ_STANDIN" = nbd ] && ktap_skip_all "tests qcow2-dm itself"
ktap_header
ktap_plan 10

SIZE=$((64 << 20))
BLK=65536
NBLK=256			# the writer covers 8 MiB .. 24 MiB
FIRST=128			# its first block
base=$WORK/base.qcow2
top=$WORK/top.qcow2
pat=$WORK/pattern
ref=$WORK/ref.raw
dname=$(dq_name)

python3 - "$pat" $NBLK $BLK <<'EOF'
import sys
path, n, bs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "wb") as f:
    for i in range(n):
        f.write((b"mrg %08d " % i).ljust(bs, bytes([i % 249 + 3])))
EOF
qemu-img create -q -f qcow2 "$base" $SIZE
qemu-io -c "write -P 0x22 0 4M" -c "write -P 0x11 32M 8M" "$base" >/dev/null
qemu-img create -q -f qcow2 -b "$base" -F qcow2 "$top"
# what the device must hold at the end
truncate -s $SIZE "$ref"
qemu-io -f raw -c "write -P 0x22 0 4M" -c "write -P 0x11 32M 8M" \
	-c "write -P 0x33 2M 4M" -c "write -P 0x44 50M 1M" "$ref" >/dev/null
dd if="$pat" of="$ref" bs=$BLK seek=$FIRST conv=notrunc status=none

writer() {
	local i
	echo -1 > "$WORK/writer.pos"
	for i in $(seq 0 $((NBLK - 1))); do
		dd if="$pat" of="$DEV" bs=$BLK skip=$i seek=$((FIRST + i)) \
			count=1 oflag=direct conv=notrunc status=none || return 1
		echo "$i" > "$WORK/writer.pos"
		sleep 0.02
	done
}

dq_attach "$top" "$dname" || ktap_print "attach failed"
dd if="$ref" of="$DEV" bs=1M skip=2 seek=2 count=4 oflag=direct \
	conv=notrunc status=none	# 0x33 into the top image
writer > "$WORK/writer.log" 2>&1 &
wpid=$!
sleep 1
dq_step "merge while a writer runs" dq_live qcow2-dm merge "$dname"
wait $wpid
dq_step "the writer saw no error" test ! -s "$WORK/writer.log"
dd if="$ref" of="$DEV" bs=1M skip=50 seek=50 count=1 oflag=direct \
	conv=notrunc status=none	# a write after the merge
on_base() {
	qcow2-dm info "$dname" | grep -qx "image: $base" &&
	! qcow2-dm info "$dname" | grep -q '^backing:'
}
dq_step "the device runs on the backing file alone" on_base
dq_step "the device holds every write" cmp "$DEV" "$ref"
dq_step "no temporary overlay left behind" \
	sh -c "! ls -a '$WORK' | grep -q merge"
dq_detach "$dname" || ktap_print "detach failed"
dq_step "the merged image checks clean" dq_check_clean "$base"
base_content() {
	qemu-img convert -O raw "$base" "$WORK/base.raw" &&
	cmp "$WORK/base.raw" "$ref" &&
	dq_attach "$base" "$dname" && cmp "$DEV" "$ref" && dq_detach "$dname"
}
dq_step "the merged image alone reads back every write, attached again" \
	base_content

fails_with() {		# fails_with PATTERN CMD...
	local p=$1 out
	shift
	out=$("$@" 2>&1) && { echo "unexpected success"; return 1; }
	echo "$out" | grep -Eq "$p" || { echo "$out"; return 1; }
}
no_backing() {
	qemu-img create -q -f qcow2 "$WORK/solo.qcow2" 16M &&
	dq_attach "$WORK/solo.qcow2" "$dname" &&
	fails_with "no backing file" qcow2-dm merge "$dname"
	local rc=$?
	dq_detach "$dname"
	return $rc
}
dq_step "refused: a device without a backing file" no_backing
extl2() {
	qemu-img create -q -f qcow2 -o extended_l2=on -b "$base" -F qcow2 \
		"$WORK/ext.qcow2" &&
	dq_attach "$WORK/ext.qcow2" "$dname" &&
	fails_with "extended L2" qcow2-dm merge "$dname"
	local rc=$?
	dq_detach "$dname"
	[ $rc -eq 0 ] && dq_check_clean "$WORK/ext.qcow2"
}
dq_step "refused: an extended L2 top image, left as it was" extl2
dq_step "merge --help" sh -c "qcow2-dm merge --help | grep -q 'usage: qcow2-dm merge'"
ktap_finish
