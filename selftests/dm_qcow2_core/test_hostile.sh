#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Hostile images: header damage is refused at attach with a clear message
# in the kernel log; damage found later (L2 entries pointing past the end
# of file, into metadata, misaligned, compressed descriptors past EOF)
# fails that read with EIO and counts an error, while the rest of the
# device keeps reading. Damaged metadata also marks the image corrupt, as
# QEMU does: writes fail from then on and the header gets the corrupt bit
# (data that cannot be decompressed is not metadata damage). Never a
# kernel warning (the VM run checks that).
. "$(dirname "$0")/lib.sh"
need qemu-img qemu-io dmsetup python3

P="python3 $(dirname "$0")/qcow2patch.py"
IMG=$WORK/h.qcow2

fresh() {
	rm -f "$IMG"
	qemu-img create -q -f qcow2 "$IMG" 8M "$@"
	qemu-io -c 'write -P 0x11 0 1M' -c 'write -P 0x22 4M 64k' "$IMG" >/dev/null
}

# refused NAME EXPECTED_LOG_FRAGMENT [SECTORS]: attach must fail so
refused() {
	local name=$1 want=$2 sectors=${3:-16384}
	klog_mark
	if dmsetup create dmh --table "0 $sectors qcow2 $IMG" 2>/dev/null; then
		dmsetup remove dmh
		ktap_fail "$name refused" "attach succeeded"
	elif klog_new | grep -qi -- "$want"; then
		ktap_ok "$name refused"
	else
		ktap_fail "$name refused" "no '$want' in log: $(klog_new | tail -2)"
	fi
}

# is_corrupt IMAGE: the header has the corrupt bit
is_corrupt() {
	qemu-img info --output=json "$1" |
		python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["format-specific"]["data"].get("corrupt") else 1)'
}

# read_fails NAME GUEST_OFFSET corrupt|data: attach works, that cluster
# reads EIO, another cluster still reads, the errors counter moved; for
# metadata damage (corrupt) a write elsewhere fails and the image is
# marked corrupt, for bad data a write elsewhere works
read_fails() {
	local name=$1 off=$2 kind=$3 why= wrote=0
	if ! dmsetup create dmh --table "0 16384 qcow2 $IMG"; then
		ktap_fail "$name" "attach refused"
		return
	fi
	dd if=/dev/mapper/dmh of=/dev/null bs=4k skip=$((off / 4096)) count=1 \
		iflag=direct 2>/dev/null && why="read succeeded;"
	[ "$(dd if=/dev/mapper/dmh bs=4k skip=1024 count=1 iflag=direct 2>/dev/null |
	     od -An -tx1 | head -1 | awk '{print $1}')" = 22 ] ||
		why="$why other cluster unreadable;"
	dmsetup status dmh | grep -q ' errors 0 ' && why="$why errors not counted;"
	dd if=/dev/zero of=/dev/mapper/dmh bs=4k seek=1600 count=1 oflag=direct \
		status=none 2>/dev/null && wrote=1
	dmsetup remove dmh || why="$why detach failed"
	if [ "$kind" = corrupt ]; then
		[ $wrote = 0 ] || why="$why a write succeeded after the damage was found;"
		is_corrupt "$IMG" || why="$why corrupt bit not set;"
	else
		[ $wrote = 1 ] || why="$why a write failed after bad data;"
		is_corrupt "$IMG" && why="$why marked corrupt for bad data;"
	fi
	if [ -z "$why" ]; then ktap_ok "$name"; else ktap_fail "$name" "$why"; fi
}

# discard_refused NAME: discarding guest cluster 0, whose L2 entry is
# damaged, fails (nothing is freed or punched on the entry's word) and
# marks the image corrupt: a write elsewhere fails, the data reads back
# with qemu-io and qemu-img check finds no error beyond the one planted.
check_errors() {
	qemu-img check "$1" 2>&1 | sed -n 's/^\([0-9]*\) errors were found.*/\1/p' | grep . || echo 0
}
discard_refused() {
	local name=$1 why= before after
	before=$(check_errors "$IMG")
	if ! dmsetup create dmh --table "0 16384 qcow2 $IMG"; then
		ktap_fail "$name" "attach refused"
		return
	fi
	blkdiscard -f -o 0 -l 65536 /dev/mapper/dmh 2>/dev/null && why="discard succeeded;"
	head -c 65536 /dev/zero | tr '\0' '\063' |
		dd of=/dev/mapper/dmh bs=64k seek=64 oflag=direct conv=fsync \
		status=none 2>/dev/null && why="$why a write succeeded on a corrupt image;"
	dmsetup remove dmh || why="$why detach failed;"
	is_corrupt "$IMG" || why="$why corrupt bit not set;"
	qemu-io -r -f qcow2 -c 'read -P 0x22 4M 64k' -c 'read -P 0x11 64k 64k' "$IMG" 2>&1 |
		grep -q 'Pattern verification failed\|Could not\|error' && why="$why data unreadable afterwards;"
	after=$(check_errors "$IMG")
	[ "$after" = "$before" ] ||
		why="$why qemu-img check: $before errors planted, $after afterwards"
	if [ -z "$why" ]; then ktap_ok "$name"; else ktap_fail "$name" "$why"; fi
}

# alloc_refused NAME: the image claims a metadata cluster is free; the
# first allocating write must not take it (QEMU's overlap check refuses
# such a write): the write fails, the image is marked corrupt and the data
# the damaged cluster maps still reads back.
alloc_refused() {
	local name=$1 why=
	if ! dmsetup create dmh --table "0 16384 qcow2 $IMG"; then
		ktap_fail "$name" "attach refused"
		return
	fi
	head -c 65536 /dev/zero | tr '\0' '\063' |
		dd of=/dev/mapper/dmh bs=64k seek=32 oflag=direct conv=fsync \
		status=none 2>/dev/null && why="allocating write succeeded;"
	dmsetup remove dmh || why="$why detach failed;"
	is_corrupt "$IMG" || why="$why corrupt bit not set;"
	qemu-io -r -f qcow2 -c 'read -P 0x11 0 1M' -c 'read -P 0x22 4M 64k' "$IMG" 2>&1 |
		grep -q 'Pattern verification failed\|Could not\|error' && why="$why data lost;"
	if [ -z "$why" ]; then ktap_ok "$name"; else ktap_fail "$name" "$why"; fi
}

# l2_into KIND_OFFSET: point guest cluster 0 at a host cluster
l2_into() {
	$P "$IMG" l2 0 "$(( 0x8000000000000000 | $1 ))"
}

ktap_header
ktap_plan 34

fresh; $P "$IMG" set 0 4 0x12345678;		refused "bad magic" "bad magic"
fresh; $P "$IMG" set 4 4 4;			refused "version 4" "unsupported version"
fresh; $P "$IMG" set 72 8 0x100;		refused "unknown incompatible bit" "unknown incompatible"
fresh; $P "$IMG" set 72 8 2;			refused "corrupt bit" "corrupt"
fresh; $P "$IMG" set 72 8 1;			refused "dirty image" "qemu-img check -r all"
fresh; $P "$IMG" set 32 4 1;			refused "encryption" "encrypt"
fresh; $P "$IMG" set 72 8 4;			refused "external data file" "external data"
fresh; $P "$IMG" set 20 4 8;			refused "cluster_bits 8" "cluster_bits"
fresh; $P "$IMG" set 20 4 22;			refused "cluster_bits 22" "cluster_bits"
fresh; $P "$IMG" set 36 4 0x10000000;		refused "huge l1_size" "l1_size"
fresh; $P "$IMG" set 36 4 0;			refused "l1_size too small" "l1_size"
fresh; $P "$IMG" set 40 8 0x100000000;		refused "L1 table beyond EOF" "L1 table"
fresh; $P "$IMG" set 40 8 0;			refused "L1 table over the header" "L1 table"
fresh; $P "$IMG" set 48 8 0x100000000;		refused "refcount table beyond EOF" "refcount table"
fresh; $P "$IMG" set 56 4 0;			refused "refcount table of 0 clusters" "refcount table"
fresh; $P "$IMG" set 40 8 "$($P "$IMG" get refcount_table_offset)"
						refused "L1 and refcount table overlap" "overlap"
fresh; $P "$IMG" set 96 4 7;			refused "refcount_order 7" "refcount_order"
fresh; $P "$IMG" rt 0 0;			refused "missing refcount block" "refcount blocks missing"
fresh; truncate -s 200000 "$IMG";		refused "truncated file" "end of file"
fresh;						refused "table length differs" "virtual size" 16392
fresh; qemu-img rebase -q -u -b /nonexistent -F raw "$IMG"
						refused "backing file without backing args" "backing"
fresh; $P "$IMG" set "$(( $($P "$IMG" get l1_table_offset) ))" 8 0x8000000100000000
						refused "L1 entry beyond EOF" "L1 entry"

fresh; $P "$IMG" l2 0 0x8000001000000000;	read_fails "L2 entry beyond EOF: EIO, marked corrupt" 0 corrupt
fresh; $P "$IMG" l2 0 "$(( 0x8000000000000000 | $($P "$IMG" get refcount_table_offset) ))"
						read_fails "L2 entry into metadata: EIO, marked corrupt" 0 corrupt
fresh; $P "$IMG" l2 0 0x8000000000050200;	read_fails "misaligned L2 entry: EIO, marked corrupt" 0 corrupt
fresh; qemu-img snapshot -c s "$IMG"
snoff=$(python3 -c 'import struct,sys; f=open(sys.argv[1],"rb"); f.seek(64); print(struct.unpack(">Q",f.read(8))[0])' "$IMG")
$P "$IMG" l2 0 $(( 0x8000000000000000 | (snoff & ~65535) ))
						read_fails "L2 entry into the snapshot table: EIO, marked corrupt" 0 corrupt
# metadata found only through the tables (refcount blocks, L2 tables,
# snapshot L1 tables): the index of metadata clusters
fresh; l2_into "$($P "$IMG" rtentry 0)"
						read_fails "L2 entry into a refcount block: EIO, marked corrupt" 0 corrupt
fresh; l2_into "$($P "$IMG" l2table 0)"
						read_fails "L2 entry into an L2 table: EIO, marked corrupt" 0 corrupt
fresh; qemu-img snapshot -c s "$IMG"
snoff=$(python3 -c 'import struct,sys; f=open(sys.argv[1],"rb"); f.seek(64); print(struct.unpack(">Q",f.read(8))[0])' "$IMG")
snl1=$(python3 -c 'import struct,sys; f=open(sys.argv[1],"rb"); f.seek(int(sys.argv[2])); print(struct.unpack(">Q",f.read(8))[0])' "$IMG" "$snoff")
l2_into "$snl1";				read_fails "L2 entry into a snapshot L1 table: EIO, marked corrupt" 0 corrupt
fresh; l2t=$($P "$IMG" l2table 0)
$P "$IMG" set $(( $($P "$IMG" rtentry 0) + 2 * (l2t >> 16) )) 2 0
						alloc_refused "L2 table with refcount 0: not allocated, marked corrupt"
fresh; $P "$IMG" l2 0 $(( (1 << 62) | 0x10000000 ))
						read_fails "compressed descriptor past EOF: EIO" 0 data
fresh; $P "$IMG" l2 65536 $(( (1 << 62) | 0x80000 ))
						read_fails "garbage compressed data: EIO" 65536 data
fresh; $P "$IMG" l2 0 0x8000000000000200;	discard_refused "discard of a misaligned L2 entry (header): refused"
fresh; $P "$IMG" l2 0 "$(( 0x8000000000000000 | $($P "$IMG" get refcount_table_offset) ))"
						discard_refused "discard of an L2 entry into metadata: refused"
ktap_finish
