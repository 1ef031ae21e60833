#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Deferred frees stay bounded (review finding: discarding 1 GiB of an
# image with 4 KiB clusters held one 64-byte record per cluster, 16 MiB of
# slab, until the next flush, which then took 34 s punching cluster by
# cluster). A discard of a whole image with 4 KiB clusters, whose host
# clusters are in order (sequential writes) and scattered (random
# writes): the kernel memory it pins (objects of the records' slab cache,
# qcow2_deferred, or of kmalloc-64 for modules without it) and the frees
# the target holds (status deferred_frees) stay under the bound, the
# flush after it applies them all, the image file gives the space back,
# the device reads zeros and the image checks clean.
# DISCARD_MB sets the image size (default 64; `make bench` runs 1024).
. "$(dirname "$0")/lib.sh"

need qemu-img fio dmsetup blkdiscard python3
MB=${DISCARD_MB:-64}
DEV=/dev/mapper/dmdb
MAX_HELD=1024		# QCOW2_DEFERRED_MAX plus what workers add meanwhile
trap 'dmsetup remove dmdb 2>/dev/null; rm -rf "$WORK"' EXIT

ktap_header
ktap_plan 10

# objects of the deferred-free records' cache (merged or not, its sysfs
# name counts them), or kmalloc-64 where a module kmallocs them. The
# shrink first: KASAN keeps freed objects in its quarantine, counted
# until the cache is shrunk.
RECS=/sys/kernel/slab/qcow2_deferred
slab64() {
	if [ -r $RECS/objects ]; then
		echo 1 > $RECS/shrink 2>/dev/null
		cut -d' ' -f1 $RECS/objects
	else
		awk '$1 == "kmalloc-64" { print $2 }' /proc/slabinfo
	fi
}
field() { dmsetup status dmdb | sed -n "s/.* $1 \([0-9]*\) .*/\1/p"; }
fsync_dev() {
	python3 -c 'import os,sys; fd = os.open(sys.argv[1], os.O_WRONLY); os.fsync(fd)' "$1"
}
kib_used() { du -k "$1" | cut -f1; }

# bound LAYOUT FIO-RW
bound() {
	local what=$1 img=$WORK/db.qcow2 s0 s1 held fl0 fl1 t0 t1 used0 used1 out
	rm -f "$img"
	qemu-img create -q -f qcow2 -o cluster_size=4096 "$img" "${MB}M"
	attach dmdb "$img" || { echo "Bail out! dmsetup create failed"; exit 1; }
	out=$(fio --name=fill --filename=$DEV --rw="$2" --bs=4k --direct=1 \
		--ioengine=libaio --iodepth=16 --size=100% --random_generator=lfsr \
		--randrepeat=1 --end_fsync=1 --output-format=terse 2>&1) ||
		{ ktap_fail "$what: fill" "$(tail -3 <<< "$out")"; detach dmdb; return; }
	used0=$(kib_used "$img")
	fl0=$(field flushes)
	s0=$(slab64)
	blkdiscard "$DEV" || ktap_fail "$what: blkdiscard" "exit status $?"
	held=$(field deferred_frees)
	s1=$(slab64)
	fl1=$(field flushes)
	echo "# $what: $((MB * 256)) clusters discarded: deferred_frees $held," \
		"record objects +$((s1 - s0)), flushes forced $((fl1 - fl0))"
	if [ -n "$held" ] && [ "$held" -le $MAX_HELD ] &&
	   [ $((s1 - s0)) -lt 4096 ]; then
		ktap_ok "$what: memory held by a whole-image discard is bounded"
	else
		ktap_fail "$what: memory held by a whole-image discard is bounded" \
			"deferred_frees '$held', record objects grew by $((s1 - s0))"
	fi
	t0=$(date +%s%N)
	fsync_dev "$DEV"
	t1=$(date +%s%N)
	used1=$(kib_used "$img")
	echo "# $what: flush after the discard took $(( (t1 - t0) / 1000000 )) ms;" \
		"image file ${used0} KiB -> ${used1} KiB"
	held=$(field deferred_frees)
	if [ "$held" = 0 ] && [ "$used1" -lt $((used0 / 4)) ]; then
		ktap_ok "$what: the flush applies every free and punches the space"
	else
		ktap_fail "$what: the flush applies every free and punches the space" \
			"deferred_frees '$held', image ${used0} -> ${used1} KiB"
	fi
	if cmp -s -n $((MB << 20)) "$DEV" /dev/zero; then
		ktap_ok "$what: the device reads zeros"
	else
		ktap_fail "$what: the device reads zeros"
	fi
	# the freed clusters take data again
	out=$(fio --name=refill --filename=$DEV --rw=randwrite --bs=64k --direct=1 \
		--ioengine=libaio --iodepth=8 --size=25% --verify=crc32c --verify_state_save=0 \
		--verify_fatal=1 --randrepeat=1 --output-format=terse 2>&1) &&
		ktap_ok "$what: freed clusters take verified data again" ||
		ktap_fail "$what: freed clusters take verified data again" "$(tail -3 <<< "$out")"
	detach dmdb
	if out=$(qemu-img check "$img" 2>&1); then
		ktap_ok "$what: qemu-img check clean"
	else
		ktap_fail "$what: qemu-img check clean" "$(tail -5 <<< "$out")"
	fi
}

bound "host clusters in order" write
bound "host clusters scattered" randwrite
ktap_finish
