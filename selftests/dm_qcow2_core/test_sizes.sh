#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Sizes that do not line up: a virtual size that ends inside a cluster
# (512 B, 64 KiB and 2 MiB clusters, extended L2), an overlay larger than
# its qcow2 or raw backing file (the backing ends inside a cluster, the
# raw one inside a sector), and images grown and shrunk by qemu-img
# resize. What qemu-io wrote reads back; writes at the very end, across
# the last cluster boundary and across the end of the backing file (a
# copy-on-write that reads past it) leave an image that qemu-img checks
# clean and compares equal to a raw reference written alike.
. "$(dirname "$0")/lib.sh"
need qemu-img qemu-io dmsetup cmp

IMG=$WORK/img.qcow2
EXP=$WORK/exp.raw

ktap_header
ktap_plan 9

# case_run NAME ATTACH_OPTS...: the device reads what qemu-img reads,
# then takes writes mirrored on EXP (WRITES: "offset:length" in bytes);
# after detach the image is clean and equal to EXP
WRITES=
case_run() {
	local name=$1 why= w
	shift
	qemu-img convert -O raw "$IMG" "$EXP" || why="convert failed"
	if [ -z "$why" ] && ! attach dqs "$IMG" "$@" 2>"$WORK/err"; then
		ktap_fail "$name" "attach refused: $(cat "$WORK/err")"
		return
	fi
	if [ -z "$why" ]; then
		cmp /dev/mapper/dqs "$EXP" >"$WORK/cmp" 2>&1 ||
			why="reads differ: $(head -1 "$WORK/cmp");"
		for w in $WRITES; do
			mirror_write /dev/mapper/dqs "$EXP" "${w%:*}" "${w#*:}" ||
				why="$why write $w failed;"
		done
		cmp /dev/mapper/dqs "$EXP" >"$WORK/cmp" 2>&1 ||
			why="$why reads after writes differ: $(head -1 "$WORK/cmp");"
		detach dqs || why="$why detach failed;"
	fi
	qemu-img check -q "$IMG" >"$WORK/chk" 2>&1 ||
		why="$why check: $(head -3 "$WORK/chk");"
	qemu-img compare -q "$IMG" "$EXP" || why="$why image differs from the reference;"
	if [ -z "$why" ]; then ktap_ok "$name"; else ktap_fail "$name" "$why"; fi
}

# odd_size NAME OPTS SIZE CLUSTER: qemu-io data up to the last byte; writes
# of the last sector, across the last cluster boundary, the whole tail
odd_size() {
	local name=$1 opts=$2 size=$3 cl=$4 last tail
	rm -f "$IMG"
	qemu-img create -q -f qcow2 -o "$opts" "$IMG" "$size"
	last=$(( (size - 1) / cl * cl ))
	qemu-io -c "write -P 0x41 0 4k" -c "write -P 0x42 $last $((size - last))" \
		"$IMG" >/dev/null
	tail=$((size - last + 1024))
	[ "$tail" -le 3072 ] || tail=3072
	WRITES="$((size - 512)):512 $((last - 1024)):$tail $((last - cl / 2)):$((size - last + cl / 2))"
	case_run "$name"
}

odd_size "virtual size inside a 64k cluster" cluster_size=65536 1000448 65536
odd_size "virtual size inside a 4k cluster (v2)" compat=0.10,cluster_size=4096 1000448 4096
odd_size "virtual size inside a 2M cluster, extended L2" \
	cluster_size=2097152,extended_l2=on $((3 * 1048576 + 512)) 2097152

# a qcow2 backing file that ends inside a cluster of a larger overlay:
# the copy-on-write of that cluster reads backing data, then zeros
rm -f "$WORK/base.qcow2" "$IMG"
qemu-img create -q -f qcow2 "$WORK/base.qcow2" $((2 * 1048576 + 1536))
qemu-io -c "write -P 0x77 0 $((2 * 1048576 + 1536))" "$WORK/base.qcow2" >/dev/null
qemu-img create -q -f qcow2 -b "$WORK/base.qcow2" -F qcow2 "$IMG" 4M
WRITES="$((2 * 1048576 + 32768)):4096 $((2 * 1048576 - 4096)):8192"
case_run "overlay larger than its qcow2 backing" backing qcow2 "$WORK/base.qcow2"

# a raw backing file whose size is not a multiple of 512
rm -f "$IMG"
head -c 1000001 /dev/zero | tr '\0' '\125' > "$WORK/base.raw"
qemu-img create -q -f qcow2 -b "$WORK/base.raw" -F raw "$IMG" 2M
WRITES="$((983040 + 4096)):4096 $((1000001 / 512 * 512)):512 $((983040 - 512)):1024"
case_run "overlay larger than a raw backing ending inside a sector" backing raw "$WORK/base.raw"

# the same overlays with extended L2: the copy-on-write is per subcluster
rm -f "$IMG"
qemu-img create -q -f qcow2 -o extended_l2=on -b "$WORK/base.qcow2" -F qcow2 "$IMG" 4M
WRITES="$((2 * 1048576 + 32768)):4096 $((2 * 1048576)):512"
case_run "overlay larger than its backing, extended L2" backing qcow2 "$WORK/base.qcow2"

# grown by qemu-img resize (the L1 table grows from one cluster to five
# and moves), written at the new end and across the old one
rm -f "$IMG"
qemu-img create -q -f qcow2 -o cluster_size=512 "$IMG" 1M
qemu-io -c "write -P 0x61 0 1M" "$IMG" >/dev/null
qemu-img resize -q "$IMG" $((8 * 1048576 + 512))
WRITES="$((8 * 1048576 - 3584)):4096 $((1048576 - 512)):1024"
case_run "grown by qemu-img resize, written past the old end"

# grown, then shrunk below the data qemu-io wrote
rm -f "$IMG"
qemu-img create -q -f qcow2 "$IMG" 4M
qemu-io -c "write -P 0x62 0 4M" "$IMG" >/dev/null
qemu-img resize -q --shrink "$IMG" $((1048576 + 512))
WRITES="1048576:512 $((1048576 - 65536)):65536"
case_run "shrunk by qemu-img resize"

# the device is as long as the image: I/O past the end is refused
rm -f "$IMG"
qemu-img create -q -f qcow2 "$IMG" 1000448
attach dqs "$IMG"
if [ "$(blockdev --getsize64 /dev/mapper/dqs)" = 1000448 ] &&
   ! dd if=/dev/zero of=/dev/mapper/dqs bs=512 seek=1954 count=1 \
	oflag=direct status=none 2>/dev/null &&
   [ "$(dd if=/dev/mapper/dqs bs=512 skip=1954 count=1 iflag=direct status=none | wc -c)" = 0 ]; then
	ktap_ok "device ends at the virtual size"
else
	ktap_fail "device ends at the virtual size"
fi
detach dqs

ktap_finish
