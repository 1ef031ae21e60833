#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Discard and write-zeroes through the device: blkdiscard, blkdiscard -z,
# fallocate --punch-hole and --zero-range read back zeros; discarded whole
# clusters are unmapped (qemu-img map) and their space goes back to the
# file system (the file's allocated blocks shrink); the image stays clean;
# discarding clusters shared with a snapshot keeps the snapshot intact.
. "$(dirname "$0")/lib.sh"

SIZE=$((16 << 20))
K=1024 M=$((1 << 20))

zero_ref() {		# zero_ref REF OFF LEN
	dd if=/dev/zero of="$1" bs="$3" count=1 seek="$2" oflag=seek_bytes \
		conv=notrunc status=none
}

# Does qemu-img map say [off, off+len) holds no data? map_nodata IMG OFF LEN
map_nodata() {
	qemu-img map --output=json "$1" | python3 -c '
import json, sys
off, ln = int(sys.argv[1]), int(sys.argv[2])
bad = [e for e in json.load(sys.stdin)
       if e["start"] < off + ln and e["start"] + e["length"] > off and e["data"]]
for e in bad:
    print("still mapped:", e)
sys.exit(1 if bad else 0)' "$2" "$3"
}

alloc_bytes() { echo $(($(stat -c %b "$1") * $(stat -c %B "$1"))); }

ops() {
	local img=$WORK/d.qcow2 ref=$WORK/d.raw name rc=0 before after sysdev max
	rm -f "$img"
	qemu-img create -q -f qcow2 -o cluster_size=65536 "$img" $SIZE &&
	qemu-io -c "write -P 0x21 0 12M" "$img" >/dev/null &&
	qemu-img convert -O raw "$img" "$ref" || return 1
	before=$(alloc_bytes "$img")
	name=$(dq_name)
	dq_attach "$img" "$name" || return 1
	sysdev=/sys/dev/block/$((0x$(stat -L -c %t "$DEV"))):$((0x$(stat -L -c %T "$DEV")))
	max=$(cat "$sysdev/queue/discard_max_bytes") || rc=1
	if [ "${max:-0}" = 0 ]; then
		echo "device does not advertise discard"
		rc=1
	fi
	blkdiscard -o $((1 * M)) -l $((2 * M)) "$DEV" || { echo "blkdiscard failed"; rc=1; }
	zero_ref "$ref" $((1 * M)) $((2 * M))
	blkdiscard -z -o $((4 * M)) -l $((1 * M)) "$DEV" || { echo "blkdiscard -z failed"; rc=1; }
	zero_ref "$ref" $((4 * M)) $((1 * M))
	fallocate -p -o $((6 * M)) -l $((512 * K)) "$DEV" || { echo "punch-hole failed"; rc=1; }
	zero_ref "$ref" $((6 * M)) $((512 * K))
	fallocate -z -o $((7 * M + 4 * K)) -l $((68 * K)) "$DEV" || { echo "zero-range failed"; rc=1; }
	zero_ref "$ref" $((7 * M + 4 * K)) $((68 * K))
	blkdiscard -z -o $((8 * M + 512)) -l 1024 "$DEV" || { echo "small write-zeroes failed"; rc=1; }
	zero_ref "$ref" $((8 * M + 512)) 1024
	cmp "$DEV" "$ref" || { echo "device does not read zeros where it should"; rc=1; }
	dq_detach "$name" || return 1
	dq_check_clean "$img" || rc=1
	qemu-img compare -f qcow2 -F raw "$img" "$ref" || rc=1
	map_nodata "$img" $((1 * M)) $((2 * M)) || { echo "discarded clusters still mapped"; rc=1; }
	after=$(alloc_bytes "$img")
	echo "image allocation: $before -> $after bytes"
	if [ "$after" -gt $((before - 3 * M / 2)) ]; then
		echo "file did not give back the discarded 2 MiB"
		rc=1
	fi
	return $rc
}

snapshot() {
	local img=$WORK/ds.qcow2 old=$WORK/ds-old.raw snap=$WORK/ds-s1.raw name rc=0
	rm -f "$img"
	qemu-img create -q -f qcow2 "$img" $SIZE &&
	qemu-io -c "write -P 0x22 0 8M" "$img" >/dev/null &&
	qemu-img snapshot -c s1 "$img" &&
	qemu-img convert -O raw "$img" "$old" || return 1
	name=$(dq_name)
	dq_attach "$img" "$name" || return 1
	blkdiscard -o 0 -l $((4 * M)) "$DEV" || { echo "blkdiscard failed"; rc=1; }
	if ! cmp -n $((4 * M)) "$DEV" /dev/zero; then
		echo "discarded range does not read zeros"; rc=1
	fi
	dq_detach "$name" || return 1
	dq_check_clean "$img" || rc=1
	qemu-img convert -l snapshot.name=s1 -O raw "$img" "$snap" &&
	cmp "$snap" "$old" || { echo "snapshot s1 changed"; rc=1; }
	return $rc
}

ktap_header
ktap_plan 2
ktap_run "discard, write-zeroes, punch, zero-range" ops
ktap_run "discard of snapshot-shared clusters" snapshot
ktap_finish
