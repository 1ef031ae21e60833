#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Writes that must copy: over compressed clusters (deflate and zstd), over
# clusters shared with internal snapshots, over a backing file, and at
# subcluster granularity with extended L2. The device content, the image
# after detach (qemu-img compare with a raw reference that got the same
# writes), `qemu-img check` and the snapshots must all stay right.
. "$(dirname "$0")/lib.sh"

SIZE=$((16 << 20))
K=1024 M=$((1 << 20))

# The same dd to the device and the reference: ddw DEV REF OFF LEN BYTE
ddw() {
	local dev=$1 ref=$2 off=$3 len=$4 byte=$5
	python3 -c "import sys; sys.stdout.buffer.write(bytes([$byte]) * $len)" > "$WORK/chunk"
	dd if="$WORK/chunk" of="$dev" bs="$len" count=1 seek="$off" \
		oflag=direct,seek_bytes conv=notrunc status=none ||
		{ echo "write $off+$len to $dev failed"; return 1; }
	dd if="$WORK/chunk" of="$ref" bs="$len" count=1 seek="$off" \
		oflag=seek_bytes conv=notrunc status=none
}

# Writes that straddle clusters, sub-cluster, whole-cluster, at the end.
writes() {		# writes DEV REF CLUSTER
	local dev=$1 ref=$2 cs=$3
	ddw "$dev" "$ref" $((2 * cs + 512)) 1024 0xc1 &&
	ddw "$dev" "$ref" $((5 * cs - 2048)) 4096 0xc2 &&
	ddw "$dev" "$ref" $(((SIZE / cs > 8 ? 8 : SIZE / cs - 1) * cs)) "$cs" 0xc3 &&
	ddw "$dev" "$ref" $((1 * M + 3 * 512)) 512 0xc4 &&
	ddw "$dev" "$ref" $((SIZE - 1536)) 1536 0xc5 &&
	sync
}


compressed() {		# compressed TYPE CLUSTER
	local img=$WORK/c.qcow2 ref=$WORK/c.raw src=$WORK/src.raw name rc=0
	rm -f "$img" "$ref"
	qemu-img create -q -f raw "$src" $SIZE &&
	qemu-io -f raw -c "write -P 0x71 0 12M" -c "write -P 0x72 $((SIZE - 64 * K)) 64k" \
		"$src" >/dev/null &&
	qemu-img convert -c -O qcow2 -o "compression_type=$1,cluster_size=$2" "$src" "$img" &&
	mv "$src" "$ref" || return 1
	name=$(dq_name)
	dq_attach "$img" "$name" || return 1
	writes "$DEV" "$ref" "$2" || rc=1
	cmp "$DEV" "$ref" || { echo "device differs from reference"; rc=1; }
	dq_detach "$name" || return 1
	dq_check_clean "$img" || rc=1
	qemu-img compare -f qcow2 -F raw "$img" "$ref" || rc=1
	return $rc
}

snapshot() {
	local img=$WORK/s.qcow2 ref=$WORK/s.raw old=$WORK/s-old.raw snap=$WORK/s1.raw name rc=0
	rm -f "$img"
	qemu-img create -q -f qcow2 "$img" $SIZE &&
	qemu-io -c "write -P 0x61 0 12M" -c "write -z 12M 1M" "$img" >/dev/null &&
	qemu-img snapshot -c s1 "$img" &&
	qemu-img convert -O raw "$img" "$old" && cp "$old" "$ref" || return 1
	name=$(dq_name)
	dq_attach "$img" "$name" || return 1
	writes "$DEV" "$ref" 65536 || rc=1
	# a second write to a cluster already copied once
	ddw "$DEV" "$ref" $((2 * 65536 + 4096)) 512 0xc6 || rc=1
	cmp "$DEV" "$ref" || { echo "device differs from reference"; rc=1; }
	dq_detach "$name" || return 1
	dq_check_clean "$img" || rc=1
	qemu-img compare -f qcow2 -F raw "$img" "$ref" || rc=1
	qemu-img snapshot -l "$img" | grep -qw s1 || { echo "snapshot s1 gone"; rc=1; }
	qemu-img convert -l snapshot.name=s1 -O raw "$img" "$snap" &&
	cmp "$snap" "$old" || { echo "snapshot s1 no longer reads the old content"; rc=1; }
	return $rc
}

backing() {
	local base=$WORK/b.qcow2 img=$WORK/o.qcow2 ref=$WORK/o.raw name rc=0
	rm -f "$base" "$img"
	qemu-img create -q -f qcow2 "$base" $SIZE &&
	qemu-io -c "write -P 0x51 0 $SIZE" "$base" >/dev/null &&
	qemu-img create -q -f qcow2 -b "$base" -F qcow2 -o cluster_size=65536 "$img" &&
	qemu-img convert -O raw "$base" "$ref" &&
	cp "$base" "$base.orig" || return 1
	name=$(dq_name)
	dq_attach "$img" "$name" || return 1
	writes "$DEV" "$ref" 65536 || rc=1
	cmp "$DEV" "$ref" || { echo "device differs from reference"; rc=1; }
	dq_detach "$name" || return 1
	dq_check_clean "$img" || rc=1
	qemu-img compare -f qcow2 -F raw "$img" "$ref" || rc=1
	cmp "$base" "$base.orig" || { echo "backing file was modified"; rc=1; }
	return $rc
}

# Extended L2: 2k subclusters of a 64k cluster; writes of single
# subclusters, partial subclusters and zeroes; qemu-img map must show the
# untouched subclusters of a written cluster still unallocated.
extl2() {
	local img=$WORK/x.qcow2 ref=$WORK/x.raw name rc=0
	rm -f "$img"
	qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=65536 "$img" $SIZE &&
	qemu-img create -q -f raw "$ref" $SIZE || return 1
	qemu-io -c "write -P 0x41 $((4 * 65536)) 64k" "$img" >/dev/null &&
	qemu-io -f raw -c "write -P 0x41 $((4 * 65536)) 64k" "$ref" >/dev/null || return 1
	name=$(dq_name)
	dq_attach "$img" "$name" || return 1
	ddw "$DEV" "$ref" 2048 2048 0xd1 || rc=1		# subcluster 1 of cluster 0
	ddw "$DEV" "$ref" $((65536 + 3 * 2048 + 512)) 512 0xd2 || rc=1	# part of one
	ddw "$DEV" "$ref" $((2 * 65536 - 1024)) 2048 0xd3 || rc=1	# straddles clusters
	ddw "$DEV" "$ref" $((4 * 65536 + 2048)) 2048 0xd4 || rc=1	# in a full cluster
	blkdiscard -z -o $((4 * 65536 + 8192)) -l 4096 "$DEV" &&
	dd if=/dev/zero of="$ref" bs=4096 seek=$(((4 * 65536 + 8192) / 4096)) count=1 conv=notrunc status=none ||
		rc=1
	cmp "$DEV" "$ref" || { echo "device differs from reference"; rc=1; }
	dq_detach "$name" || return 1
	dq_check_clean "$img" || rc=1
	qemu-img compare -f qcow2 -F raw "$img" "$ref" || rc=1
	# cluster 0: only subcluster 1 allocated, so bytes 0..2047 are a hole
	if ! qemu-img map --output=json "$img" |
	     python3 -c '
import json, sys
m = json.load(sys.stdin)
first = [e for e in m if e["start"] == 0][0]
sys.exit(0 if not first["data"] and first["length"] == 2048 else 1)'; then
		echo "subclusters were not written at subcluster granularity:"
		qemu-img map --output=json "$img" | head -8
		rc=1
	fi
	return $rc
}

ktap_header
ktap_plan 7
ktap_run "writes over deflate-compressed clusters" compressed zlib 65536
ktap_run "writes over deflate-compressed 4k clusters" compressed zlib 4096
ktap_run "writes over zstd-compressed clusters" compressed zstd 65536
ktap_run "writes over zstd-compressed 2M clusters" compressed zstd $((2 * M))
ktap_run "writes over snapshot-shared clusters" snapshot
ktap_run "writes over a backing file" backing
ktap_run "extended L2 subcluster writes" extl2
ktap_finish
