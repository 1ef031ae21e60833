#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Write zeroes as the block layer asks for it (review finding): with
# REQ_NOUNMAP (BLKZEROOUT, `blkdiscard -z`, fallocate --zero-range) the
# clusters stay allocated (zero flag on the kept cluster, QEMU's "zero,
# allocated"); without it (fallocate --punch-hole) they may be freed; a
# partial write zeroes over a range that reads zeros already allocates
# nothing. Every case reads zeros, rewrites in place, and checks clean,
# for 64 KiB clusters, extended L2 and a v2 image (no zero flag: zeros
# are written, the clusters stay).
. "$(dirname "$0")/lib.sh"

need qemu-img dmsetup blkdiscard fallocate python3
DEV=/dev/mapper/dmz
trap 'dmsetup remove dmz 2>/dev/null; rm -rf "$WORK"' EXIT
M=$((1 << 20))

ktap_header
ktap_plan 15

allocated() {
	qemu-img check --output=json "$1" 2>/dev/null |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["allocated-clusters"])'
}
zeros_at() { cmp -s -n "$2" <(dd if="$DEV" bs=4k iflag=direct,skip_bytes skip="$1" count=$(($2 / 4096)) status=none) /dev/zero; }

# one OPTS LABEL
one() {
	local o=$1 what=$2 img=$WORK/z.qcow2 a0 a1 a2 a3 why
	rm -f "$img"
	qemu-img create -q -f qcow2 -o "$o" "$img" 8M
	qemu-io -c "write -P 0x33 0 4M" "$img" >/dev/null
	a0=$(allocated "$img")
	attach dmz "$img" || { echo "Bail out! attach"; exit 1; }

	# NOUNMAP over 1 MiB of whole clusters: nothing freed
	why=
	blkdiscard -z -o 0 -l $M "$DEV" || why="blkdiscard -z failed;"
	zeros_at 0 $M || why="$why does not read zeros;"
	dmsetup remove dmz; a1=$(allocated "$img")
	[ "$a1" = "$a0" ] || why="$why allocated clusters $a0 -> $a1;"
	[ -z "$why" ] && ktap_ok "$what: write zeroes with NOUNMAP keeps the clusters" ||
		ktap_fail "$what: write zeroes with NOUNMAP keeps the clusters" "$why"

	# without NOUNMAP: clusters may go (v3), the range reads zeros
	attach dmz "$img" || { echo "Bail out! attach"; exit 1; }
	why=
	fallocate -p -o $M -l $M "$DEV" || why="fallocate --punch-hole failed;"
	zeros_at $M $M || why="$why does not read zeros;"
	dmsetup remove dmz; a2=$(allocated "$img")
	case $o in
	*compat=0.10*) [ "$a2" = "$a1" ] || why="$why v2: allocated $a1 -> $a2;" ;;
	*) [ "$a2" -lt "$a1" ] || why="$why allocated clusters did not drop ($a1 -> $a2);" ;;
	esac
	[ -z "$why" ] && ktap_ok "$what: write zeroes that may unmap frees the clusters" ||
		ktap_fail "$what: write zeroes that may unmap frees the clusters" "$why"

	# partial write zeroes where the disk reads zeros: no allocation
	attach dmz "$img" || { echo "Bail out! attach"; exit 1; }
	why=
	blkdiscard -z -o $((6 * M + 4096)) -l 8192 "$DEV" || why="unallocated range;"
	blkdiscard -z -o $((M + 8192)) -l 4096 "$DEV" || why="$why zeroed range;"
	zeros_at $((6 * M)) 65536 || why="$why does not read zeros;"
	dmsetup remove dmz; a3=$(allocated "$img")
	[ "$a3" = "$a2" ] || why="$why allocated clusters $a2 -> $a3;"
	[ -z "$why" ] && ktap_ok "$what: partial write zeroes over zeros allocates nothing" ||
		ktap_fail "$what: partial write zeroes over zeros allocates nothing" "$why"

	# the kept clusters take data again; the rest reads as before
	head -c $((192 * 1024)) /dev/urandom > "$WORK/w"
	qemu-img convert -O raw "$img" "$WORK/ref.raw"
	dd if="$WORK/w" of="$WORK/ref.raw" bs=4k seek=4 conv=notrunc status=none
	attach dmz "$img" || { echo "Bail out! attach"; exit 1; }
	dd if="$WORK/w" of="$DEV" bs=4k seek=4 oflag=direct status=none
	why=
	cmp -s "$DEV" "$WORK/ref.raw" || why="device differs from the expected content;"
	dmsetup remove dmz
	qemu-img compare -q -f qcow2 -F raw "$img" "$WORK/ref.raw" || why="$why image differs;"
	[ -z "$why" ] && ktap_ok "$what: zeroed clusters take data again" ||
		ktap_fail "$what: zeroed clusters take data again" "$why"
	if out=$(qemu-img check "$img" 2>&1); then
		ktap_ok "$what: qemu-img check clean"
	else
		ktap_fail "$what: qemu-img check clean" "$(tail -3 <<< "$out")"
	fi
}

one cluster_size=65536 "64 KiB clusters"
one extended_l2=on,cluster_size=131072 "extended L2"
one compat=0.10 "v2 image"
ktap_finish
