#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Images with an external data file (qemu-img -o data_file=..., with and
# without data_file_raw): what qemu-img and qemu-io wrote reads back byte
# for byte, including the data file's first cluster (L2 offset 0); writes,
# partial-cluster writes over a backing file, discard and write zeroes
# leave an image that qemu-img checks clean and reads as expected, and
# give the dropped clusters' space in the data file back; a raw
# data file stays a raw image of the disk; what cannot work is refused
# with a reason (data file missing from the table, given for an image
# without one, internal snapshots).
. "$(dirname "$0")/lib.sh"
need qemu-img qemu-io dmsetup cmp blkdiscard

IMG=$WORK/d.qcow2
DATA=$WORK/d.data
EXP=$WORK/exp.raw

ktap_header
ktap_plan 20

# mkimg OPTS SIZE: fresh IMG on DATA with qemu-img's own writes, among
# them guest cluster 0 (host offset 0 of the data file)
mkimg() {
	rm -f "$IMG" "$DATA"
	qemu-img create -q -f qcow2 -o "data_file=$DATA,$1" "$IMG" "$2" &&
	qemu-io -c 'write -P 0x5a 0 4k' -c 'write -P 0xa5 1M 72k' \
		-c 'write -P 0x33 3M 512' -c 'write -z 2M 128k' "$IMG" >/dev/null
}

# matches NAME: the device reads what qemu-img reads from the image
matches() {
	qemu-img convert -U -O raw "$IMG" "$WORK/q.raw" &&
	cmp -s /dev/mapper/"$1" "$WORK/q.raw"
}

# check_all: image clean and equal to EXP
check_all() {
	[ "${FAILED:-0}" = 0 ] && qemu-img check -q "$IMG" &&
		qemu-img compare -q "$IMG" "$EXP"
}

# verdict NAME: ok when check_all passes
verdict() {
	if check_all; then ktap_ok "$1"; else ktap_fail "$1"; fi
}

# apply DEV SEEK_K COUNT_K: the same random data to DEV and EXP; a
# failed write fails the test that made it (FAILED)
apply() {
	mirror_write "$1" "$EXP" $(($2 * 1024)) $(($3 * 1024)) || FAILED=1
}

for opts in "cluster_size=65536" "cluster_size=4096" \
	    "cluster_size=65536,extended_l2=on" \
	    "cluster_size=65536,data_file_raw=on"; do
	name="reads back: $opts"
	if ! mkimg "$opts" 4M; then
		ktap_skip "$name" "qemu-img cannot create it"
		continue
	fi
	if attach dqd "$IMG" ro data_file "$DATA" 2>"$WORK/err" &&
	   matches dqd; then
		ktap_ok "$name"
	else
		ktap_fail "$name" "$(cat "$WORK/err")"
	fi
	dmsetup remove dqd 2>/dev/null
done

# writes: partial clusters, a cluster at offset 0, across clusters; then
# discard and write zeroes, which drop whole clusters and zero the rest
writes() {
	local opts=$1

	mkimg "$opts" 4M
	qemu-img convert -O raw "$IMG" "$EXP"
	attach dqd "$IMG" data_file "$DATA"
	FAILED=0
	apply /dev/mapper/dqd 0 8 && apply /dev/mapper/dqd 60 72 &&
		apply /dev/mapper/dqd 2050 4 && apply /dev/mapper/dqd 3900 196
	detach dqd
	verdict "writes ($opts): image clean, content as written"

	# qemu-io wrote 72 KiB at 1 MiB: discarding its (whole) clusters
	# must give that space of the data file back
	local before after
	before=$(stat -c %b "$DATA")
	attach dqd "$IMG" data_file "$DATA"
	blkdiscard -o 1048576 -l 131072 /dev/mapper/dqd || FAILED=1
	after=$(stat -c %b "$DATA")
	blkdiscard -z -o 3145728 -l 69632 /dev/mapper/dqd || FAILED=1
	dd if=/dev/zero of="$EXP" bs=1k seek=1024 count=128 conv=notrunc \
		status=none
	dd if=/dev/zero of="$EXP" bs=1k seek=3072 count=68 conv=notrunc \
		status=none
	detach dqd
	if check_all && [ $((before - after)) -ge $((72 * 1024 / 512)) ]; then
		ktap_ok "discard, write zeroes ($opts): clean, zeros read, space given back"
	else
		ktap_fail "discard, write zeroes ($opts): clean, zeros read, space given back" \
			"data file blocks $before -> $after"
	fi

	# the punched clusters take new data again
	attach dqd "$IMG" data_file "$DATA"
	FAILED=0
	apply /dev/mapper/dqd 1030 8 && apply /dev/mapper/dqd 3072 64
	detach dqd
	verdict "writes into punched clusters ($opts): clean, content as written"
}

for opts in "cluster_size=65536" "cluster_size=4096" \
	    "cluster_size=65536,extended_l2=on"; do
	writes "$opts"
done

mkimg "cluster_size=65536" 4M
attach dqd "$IMG" data_file "$DATA"
tb=$(dmsetup table dqd)
[ "$tb" = "0 8192 qcow2 $IMG 2 data_file $DATA" ] &&
	ktap_ok "table echoes data_file" || ktap_fail "table echoes data_file" "$tb"
detach dqd

# raw data file: the data file is the disk, after writes and zeroes too;
# a discard leaves the data there (as it must, the file being the disk)
mkimg "cluster_size=65536,data_file_raw=on" 4M
qemu-img convert -O raw "$IMG" "$EXP"
attach dqd "$IMG" data_file "$DATA"
FAILED=0
apply /dev/mapper/dqd 4 8 && apply /dev/mapper/dqd 2000 100
blkdiscard -z -o 1048576 -l 65536 /dev/mapper/dqd || FAILED=1
dd if=/dev/zero of="$EXP" bs=1k seek=1024 count=64 conv=notrunc status=none
blkdiscard -o 3145728 -l 65536 /dev/mapper/dqd || FAILED=1
detach dqd
if check_all && cmp -s "$DATA" "$EXP" &&
   qemu-img info "$IMG" | grep -q 'data file raw: true'; then
	ktap_ok "raw data file: the file is the disk, raw flag kept"
else
	ktap_fail "raw data file: the file is the disk, raw flag kept"
fi

# a write into part of a cluster copies the rest from the backing file
rm -f "$WORK/base.qcow2"
qemu-img create -q -f qcow2 "$WORK/base.qcow2" 4M
qemu-io -c 'write -P 0x77 0 4M' "$WORK/base.qcow2" >/dev/null
rm -f "$IMG" "$DATA"
qemu-img create -q -f qcow2 -b "$WORK/base.qcow2" -F qcow2 \
	-o "data_file=$DATA" "$IMG" 4M
qemu-img convert -O raw "$IMG" "$EXP"
attach dqd "$IMG" data_file "$DATA" backing qcow2 "$WORK/base.qcow2"
FAILED=0
apply /dev/mapper/dqd 68 4 && apply /dev/mapper/dqd 0 1
detach dqd
verdict "copy-on-write from a backing file into the data file"

# refusals, each with its reason in the kernel log
mkimg "cluster_size=65536" 4M
klog_mark
if attach dqd "$IMG" 2>/dev/null; then
	detach dqd
	ktap_fail "no data_file in the table: refused"
else
	klog_new | grep -q "give it with 'data_file <path>'" &&
		ktap_ok "no data_file in the table: refused" ||
		ktap_fail "no data_file in the table: refused" "$(klog_new)"
fi
qemu-img create -q -f qcow2 "$WORK/plain.qcow2" 4M
klog_mark
if attach dqd "$WORK/plain.qcow2" data_file "$DATA" 2>/dev/null; then
	detach dqd
	ktap_fail "data_file for an image without one: refused"
else
	klog_new | grep -q "has no external data file" &&
		ktap_ok "data_file for an image without one: refused" ||
		ktap_fail "data_file for an image without one: refused"
fi
attach dqd "$IMG" data_file "$DATA"
if dmsetup message dqd 0 snapshot create s1 2>/dev/null; then
	ktap_fail "internal snapshot refused"
else
	ktap_ok "internal snapshot refused"
fi
detach dqd
if qemu-img check -q "$IMG" && ! qemu-img snapshot -l "$IMG" | grep -q s1; then
	ktap_ok "image clean and without snapshots after the refusals"
else
	ktap_fail "image clean and without snapshots after the refusals"
fi

ktap_finish
