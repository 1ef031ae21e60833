#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Injected faults under dm-qcow2:
#  - the device under the image's ext4 fails (dm-error swapped in for
#    dm-linear) while writes run: they and reads of data fail with EIO, the
#    target's error counter grows; swapped back, new writes succeed; after
#    detach qemu-img check finds no errors (leaks allowed);
#  - the device under the image's ext4 turns slow (dm-delay: reads 5 ms,
#    writes 20 ms) while fio verify writes with fsyncs beside writes and
#    discards of other clusters: every byte verifies, no flush holds the
#    per-image lock (dmsetup status), qemu-img check finds no errors;
#  - fail_make_request on the device under the image's ext4 (needs
#    CONFIG_FAIL_MAKE_REQUEST: skipped on Debian's kernels, run on the
#    debug kernel): random bio failures while writes run; failures reach
#    the writer as EIO, after the faults end new writes verify, qemu-img
#    check finds no errors (leaks allowed);
#  - failslab (needs CONFIG_FAILSLAB: skipped on Debian's kernels);
#  - the host filesystem runs out of space mid-write: writes fail with ENOSPC
#    (BLK_STS_NOSPC, not EIO),
#    written data still reads back, qemu-img check finds no errors.
. "$(dirname "$0")/../lib/ktap.sh"

WORK=$(mktemp -d /tmp/faults.XXXXXX)
LOW=flt$$
Q=fq$$
MNT=$WORK/mnt
PID=
cleanup() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	dmsetup remove "$Q" 2>/dev/null
	mountpoint -q "$MNT" && umount "$MNT"
	dmsetup remove "$LOW" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

ktap_header
ktap_plan 5
# two 128 MiB RAM disks (another test may have loaded brd with fewer)
if [ ! -b /dev/ram1 ]; then
	rmmod brd 2>/dev/null
	modprobe brd rd_nr=2 rd_size=131072 || ktap_print "no brd"
fi
RAM_SECT=$(blockdev --getsz /dev/ram0)
mkdir -p "$MNT"

qerrors() { dmsetup status "$Q" | sed -n 's/.* errors \([0-9-]*\) .*/\1/p'; }
lower() {	# lower linear|error|delay: swap the table under the file system
	local t="0 $LOW_SECT linear $LOW_DEV 0"
	[ "$1" = error ] && t="0 $LOW_SECT error"
	[ "$1" = delay ] && t="0 $LOW_SECT delay $LOW_DEV 0 5 $LOW_DEV 0 20"
	dmsetup suspend --noflush "$LOW" && dmsetup load "$LOW" --table "$t" &&
	dmsetup resume "$LOW"
}
# mkfs on the lower device, mount, make the image: sets IMG
fs_image() {	# fs_image DEV SECTORS IMAGE_SIZE
	LOW_DEV=$1 LOW_SECT=$2
	dmsetup create "$LOW" --table "0 $LOW_SECT linear $LOW_DEV 0" || return 1
	# no journal: a failed journal write would abort the file system for
	# good, and the point is what dm-qcow2 does with the errors
	mkfs.ext4 -q -F -O ^has_journal "/dev/mapper/$LOW" >/dev/null &&
	mount -o errors=continue "/dev/mapper/$LOW" "$MNT" || return 1
	IMG=$MNT/fault.qcow2
	qemu-img create -q -f qcow2 "$IMG" "$3" &&
	dmsetup create "$Q" --table "0 $(($3 / 512)) qcow2 $IMG" || return 1
}
teardown() {
	dmsetup remove "$Q" || { echo "remove failed"; return 1; }
	local out rc
	out=$(qemu-img check "$IMG" 2>&1); rc=$?
	echo "$out" | grep -v "^Leaked cluster" | sed 's/^/check: /'
	umount "$MNT"; dmsetup remove "$LOW"
	if [ $rc != 0 ] && [ $rc != 3 ]; then
		echo "qemu-img check exit $rc"; return 1
	fi
	# 0: clean, 3: leaks only; no ERROR line (corruption) either way
	! echo "$out" | grep -q "^ERROR"
}

writer() {	# background 64 KiB direct writes over the first 32 MiB
	local i=0 fails=0
	while [ ! -e "$WORK/stop" ]; do
		dd if=/dev/urandom of="/dev/mapper/$Q" bs=64k count=1 seek=$((i % 512)) \
			oflag=direct conv=notrunc 2>>"$WORK/writer.err" || fails=$((fails + 1))
		i=$((i + 7))
	done
	echo "$fails" > "$WORK/writer.fails"
}

lower_fails() {
	local dev=/dev/mapper/$Q e0 e1 out
	fs_image /dev/ram0 $RAM_SECT $((64 << 20)) || return 1
	head -c $((1 << 20)) /dev/urandom > "$WORK/pat"
	dd if="$WORK/pat" of="$dev" bs=1M oflag=direct conv=notrunc 2>/dev/null || return 1
	e0=$(qerrors)
	writer & PID=$!
	sleep 2
	lower error || return 1
	echo "fault injected: lower device fails"
	sleep 3
	out=$(dd if="$dev" of=/dev/null bs=64k count=16 iflag=direct 2>&1) &&
		{ echo "read of written data succeeded on a failing disk"; return 1; }
	echo "$out" | grep -q "Input/output error" || { echo "read: $out"; return 1; }
	out=$(dd if=/dev/zero of="$dev" bs=64k count=1 seek=600 oflag=direct conv=notrunc 2>&1) &&
		{ echo "write succeeded on a failing disk"; return 1; }
	echo "$out" | grep -q "Input/output error" || { echo "write: $out"; return 1; }
	lower linear || return 1
	touch "$WORK/stop"; wait "$PID"; PID=
	e1=$(qerrors)
	echo "errors counter $e0 -> $e1; writer failures $(cat "$WORK/writer.fails")"
	sort "$WORK/writer.err" | uniq -c | sort -rn | head -3
	[ "$e1" -gt "$e0" ] || { echo "error counter did not grow"; return 1; }
	[ "$(cat "$WORK/writer.fails")" -gt 0 ] || { echo "no write of the writer failed"; return 1; }
	# recovered: new data in a fresh cluster and an old one read back
	dd if="$WORK/pat" of="$dev" bs=1M seek=40 oflag=direct conv=notrunc 2>&1 ||
		{ echo "write after recovery failed"; return 1; }
	cmp <(dd if="$dev" bs=1M skip=40 count=1 iflag=direct 2>/dev/null) "$WORK/pat" ||
		{ echo "read after recovery differs"; return 1; }
	teardown
}
ktap_run "lower device fails under ext4: EIO, counter, recovery, check" lower_fails

slow_lower() {
	local dev=/dev/mapper/$Q out rc=0 fl lfl verify
	modprobe dm-delay 2>/dev/null
	fs_image /dev/ram0 $RAM_SECT $((64 << 20)) || return 1
	lower delay || return 1
	echo "fault injected: lower device delays reads 5 ms, writes 20 ms"
	# [0, 32M) verified; [32M, 48M) rewritten with fsyncs and discarded,
	# so that flushes free clusters while other writes are in flight
	verify=(--name=verify --ioengine=libaio --iodepth=8 --rw=randwrite
		--bsrange=4k-64k --size=32M --io_size=6M --fsync=16 --verify=crc32c
		--verify_fatal=1 --verify_state_save=0)
	fio --filename="$dev" --direct=1 "${verify[@]}" \
		--name=churn --ioengine=libaio --iodepth=4 --rw=randwrite \
		--bs=64k --offset=32M --size=16M --fsync=4 --time_based \
		--runtime=8 --randrepeat=0 \
		--name=trim --ioengine=psync --rw=randtrim --bs=64k \
		--offset=32M --size=16M --time_based --runtime=8 \
		--randrepeat=0 >"$WORK/fio.out" 2>&1 ||
		{ tail -n 20 "$WORK/fio.out"; echo "fio verify failed"; rc=1; }
	grep -E '^ +(write|trim|read):' "$WORK/fio.out" | sed 's/^ */  /'
	read -r fl lfl <<< "$(dmsetup status "$Q" |
		sed -n 's/.* flushes \([0-9]*\) locked_flushes \([0-9]*\) .*/\1 \2/p')"
	echo "flushes ${fl:-?}, holding the per-image lock ${lfl:-?}"
	[ "${fl:-0}" -gt 0 ] && [ "${lfl:-1}" = 0 ] ||
		{ echo "a flush held the per-image lock across slow I/O"; rc=1; }
	lower linear || return 1
	teardown || rc=1
	return $rc
}
ktap_run "lower device slow under ext4: verify, flushes without the lock, check" slow_lower

fail_bios() {
	mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug 2>/dev/null
	local d=/sys/kernel/debug/fail_make_request dev=/dev/mapper/$Q rc=0 sys
	if [ ! -d $d ]; then
		echo "no $d: this kernel lacks CONFIG_FAIL_MAKE_REQUEST"
		return 4
	fi
	fs_image /dev/ram0 $RAM_SECT $((64 << 20)) || return 1
	# no udev here: /dev/mapper nodes are not links to dm-N
	sys=/sys/block/$(dmsetup info -c --noheadings -o blkdevname "$LOW")/make-it-fail
	[ -e "$sys" ] || { echo "no $sys"; return 1; }
	head -c $((1 << 20)) /dev/urandom > "$WORK/pat"
	# the next 16 bios of the lower device fail, whoever sends them
	echo 0 > $d/verbose; echo 16 > $d/times; echo 100 > $d/probability
	echo 1 > $d/interval; echo N > $d/task-filter 2>/dev/null
	rm -f "$WORK/stop" "$WORK/writer.err"
	writer & PID=$!
	sleep 1
	echo 1 > "$sys"
	sleep 4
	echo 0 > "$sys"; echo 0 > $d/probability
	touch "$WORK/stop"; wait "$PID"; PID=
	echo "faults injected: $((16 - $(cat $d/times))) bios of the lower device failed"
	echo "writer failures $(cat "$WORK/writer.fails")"
	[ "$(cat $d/times)" -lt 16 ] || { echo "no bio failed"; rc=1; }
	[ "$(cat "$WORK/writer.fails")" -gt 0 ] ||
		{ echo "no write of the writer failed"; rc=1; }
	dd if="$WORK/pat" of="$dev" bs=1M seek=40 oflag=direct conv=notrunc 2>&1 ||
		{ echo "write after the faults failed"; rc=1; }
	cmp <(dd if="$dev" bs=1M skip=40 count=1 iflag=direct 2>/dev/null) "$WORK/pat" ||
		{ echo "read after the faults differs"; rc=1; }
	teardown || rc=1
	return $rc
}
ktap_run "fail_make_request under ext4: EIO, recovery, check" fail_bios

failslab() {
	mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug 2>/dev/null
	if [ ! -d /sys/kernel/debug/failslab ]; then
		echo "no /sys/kernel/debug/failslab: this kernel lacks CONFIG_FAILSLAB"
		return 4
	fi
	local d=/sys/kernel/debug/failslab dev=/dev/mapper/$Q rc=0 kw p
	fs_image /dev/ram0 $RAM_SECT $((64 << 20)) || return 1
	# only the writers and the kernel workers (dm-qcow2 runs requests in
	# a workqueue) see failures: a failed fork in the VM's init would end
	# the VM
	echo Y > $d/task-filter; echo N > $d/ignore-gfp-wait 2>/dev/null
	echo 0 > $d/verbose; echo 200 > $d/times; echo 10 > $d/probability
	echo 1 > $d/interval
	kw=$(pgrep '^kworker')
	for p in $kw; do echo 1 > "/proc/$p/make-it-fail"; done 2>/dev/null
	(
		echo 1 > "/proc/$BASHPID/make-it-fail"
		for i in $(seq 0 31); do
			dd if=/dev/urandom of="$dev" bs=64k count=4 seek=$((i * 8)) \
				oflag=direct conv=notrunc 2>/dev/null
			dd if="$dev" of=/dev/null bs=64k count=4 skip=$((i * 8)) \
				iflag=direct 2>/dev/null
		done
	) 2>/dev/null
	echo 0 > $d/probability
	for p in $kw; do echo 0 > "/proc/$p/make-it-fail"; done 2>/dev/null
	echo N > $d/task-filter
	echo "faults injected: $((200 - $(cat $d/times))) slab allocation failures"
	[ "$(cat $d/times)" -lt 200 ] || { echo "no allocation failed"; rc=1; }
	dd if=/dev/zero of="$dev" bs=1M count=1 seek=50 oflag=direct 2>&1 || rc=1
	teardown || rc=1
	return $rc
}
ktap_run "failslab during writes" failslab

enospc() {
	local dev=/dev/mapper/$Q out
	# 24 MiB of ext4 for a 64 MiB image
	fs_image /dev/ram1 $((24 << 11)) $((64 << 20)) || return 1
	head -c $((4 << 20)) /dev/urandom > "$WORK/pat"
	dd if="$WORK/pat" of="$dev" bs=1M oflag=direct conv=notrunc 2>/dev/null || return 1
	echo "fault injected: ENOSPC"
	out=$(dd if=/dev/zero of="$dev" bs=1M seek=4 count=60 oflag=direct conv=notrunc 2>&1) &&
		{ echo "60 MiB fit in 24 MiB of ext4"; return 1; }
	# out of space is not an I/O error (review finding, queue_if_no_space off)
	echo "$out" | grep -q "No space left on device" || { echo "fill: $out"; return 1; }
	echo "$out" | tail -1
	df -k "$MNT" | tail -1
	cmp <(dd if="$dev" bs=1M count=4 iflag=direct 2>/dev/null) "$WORK/pat" ||
		{ echo "data written before ENOSPC reads back wrong"; return 1; }
	teardown
}
ktap_run "ENOSPC of the host file system mid-write" enospc
ktap_finish
