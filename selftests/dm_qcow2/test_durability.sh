#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Flush, suspend and a full host file system:
# - after a flush (fsync of the device) the data and its metadata are in
#   the image file: another reader (qemu-img convert -U) sees them;
# - `dmsetup suspend` makes everything written durable: qemu-img check -U
#   finds no errors and the file holds the data;
# - when the file system under the image is full, writes fail with an I/O
#   error, data written before still reads back, and after detach the image
#   has no errors (leaked clusters are allowed).
. "$(dirname "$0")/lib.sh"

[ "$DQ_STANDIN" = nbd ] && ktap_skip_all "tests the dm-qcow2 target itself"
SIZE=$((32 << 20))
M=$((1 << 20))

pattern() {		# pattern BYTE LEN > file
	python3 -c "import sys; sys.stdout.buffer.write(bytes([$1]) * $2)"
}

flush_visible() {
	local img=$WORK/f.qcow2 name rc=0
	qemu-img create -q -f qcow2 "$img" $SIZE || return 1
	name=$(dq_name)
	dq_attach "$img" "$name" || return 1
	pattern 0x31 $((3 * M)) > "$WORK/p1"
	dd if="$WORK/p1" of="$DEV" bs=1M seek=5 oflag=direct conv=fsync status=none || rc=1
	qemu-img convert -U -O raw "$img" "$WORK/f.raw" || rc=1
	cmp -i $((5 * M)):0 -n $((3 * M)) "$WORK/f.raw" "$WORK/p1" ||
		{ echo "flushed data not in the image file"; rc=1; }
	dq_detach "$name" || rc=1
	dq_check_clean "$img" || rc=1
	return $rc
}

suspend_durable() {
	local img=$WORK/s.qcow2 name rc=0 out
	qemu-img create -q -f qcow2 -o cluster_size=4096 "$img" $SIZE || return 1
	name=$(dq_name)
	dq_attach "$img" "$name" || return 1
	pattern 0x32 $((2 * M)) > "$WORK/p2"
	dd if="$WORK/p2" of="$DEV" bs=64k seek=100 oflag=direct status=none || rc=1
	dmsetup suspend "$name" || rc=1
	out=$(qemu-img check -U "$img" 2>&1)
	echo "$out" | grep -q "No errors were found" || { echo "$out"; rc=1; }
	qemu-img convert -U -O raw "$img" "$WORK/s.raw" || rc=1
	cmp -i $((100 * 65536)):0 -n $((2 * M)) "$WORK/s.raw" "$WORK/p2" ||
		{ echo "data not durable after suspend"; rc=1; }
	dmsetup resume "$name" || rc=1
	dq_detach "$name" || rc=1
	dq_check_clean "$img" || rc=1
	return $rc
}

enospc() {
	local dir=$WORK/small img name rc=0 out crc
	mkdir -p "$dir" && mount -t tmpfs -o size=12m tmpfs "$dir" || return 1
	img=$dir/e.qcow2
	qemu-img create -q -f qcow2 "$img" $SIZE &&
	qemu-io -c "write -P 0x33 0 4M" "$img" >/dev/null || { umount "$dir"; return 1; }
	name=$(dq_name)
	dq_attach "$img" "$name" || { umount "$dir"; return 1; }
	out=$(dd if=/dev/urandom of="$DEV" bs=1M seek=8 count=16 oflag=direct conv=fsync 2>&1)
	crc=$?
	echo "$out" | tail -2
	if [ $crc = 0 ]; then
		echo "16 MiB of writes succeeded on a file system with less room"; rc=1
	elif ! echo "$out" | grep -Eq "Input/output error|No space left"; then
		echo "writes failed with an unexpected error"; rc=1
	fi
	cmp -n $((4 * M)) "$DEV" <(pattern 0x33 $((4 * M))) ||
		{ echo "old data no longer reads back"; rc=1; }
	qcow2-dm info "$name" | grep -Eq '^errors: [1-9]' || { echo "errors not counted"; rc=1; }
	dq_detach "$name" || rc=1
	out=$(qemu-img check "$img" 2>&1)
	case $? in
	0|3) ;;
	*) echo "$out"; echo "image has errors after ENOSPC"; rc=1 ;;
	esac
	umount "$dir"
	return $rc
}

ktap_header
ktap_plan 3
ktap_run "flushed writes are in the image file" flush_visible
ktap_run "suspend makes everything durable" suspend_durable
ktap_run "ENOSPC fails writes, keeps reads and the image" enospc
ktap_finish
