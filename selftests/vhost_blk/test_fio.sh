#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# fio itself drives /dev/vhost-blk through the fio-vblk engine, with
# verify=crc32c at iodepth 128: onto brd, onto a file on ext4, and onto a
# dm-qcow2 device (checked with qemu-img check afterwards). A corrupted
# block must make fio's verify fail (the check is live).
. "$(dirname "$0")/common.sh"

ktap_header
ktap_plan 9
setup_brd && setup_ext4_file || ktap_print "setup failed"
have_vhost_blk || ktap_print "/dev/vhost-blk is missing: every case fails"
[ -f "$FIO_ENGINE" ] || ktap_print "fio engine $FIO_ENGINE not built"

# 4 jobs (threads) on 4 queues of one device, 2 workers, iodepth 128
fio4() {
	local target=$1 size=$2
	shift 2
	fio_vblk --name=v --filename="$target" --numjobs=4 --vblk_queues=4 \
		--vblk_workers=2 --iodepth=128 --rw=randwrite --bsrange=4k-64k \
		--size="$size" --offset_increment="$size" "$@"
}

ktap_run "fio verify crc32c, iodepth 128, 4 queues onto brd" fio4 /dev/ram0 12M
ktap_run "fio verify crc32c, iodepth 128, 4 queues onto an ext4 file" \
	fio4 "$EXT4_FILE" 6M
# no vblk_queues: the engine gives the device one queue per job (fio
# clones carry different numjobs values, so it must count the jobs)
ktap_run "fio verify, 6 jobs, default queue count, onto brd" \
	fio_vblk --name=d --filename=/dev/ram0 --numjobs=6 --iodepth=32 \
	--rw=randwrite --bs=4k --size=2M --offset_increment=2M
ktap_run "fio verify, 1 queue, sequential 128k onto brd" \
	fio_vblk --name=s --filename=/dev/ram0 --iodepth=128 --rw=write \
	--bs=128k --size=32M

live_verify() {
	fio_vblk --name=c --filename=/dev/ram1 --iodepth=16 --rw=write --bs=4k \
		--size=4M --do_verify=0 >/dev/null || return 1
	fio_vblk --name=c --filename=/dev/ram1 --iodepth=16 --rw=write --bs=4k \
		--size=4M --verify_only=1 >/dev/null || { echo "clean verify failed"; return 1; }
	dd if=/dev/zero of=/dev/ram1 bs=4k seek=100 count=1 oflag=direct status=none
	if fio_vblk --name=c --filename=/dev/ram1 --iodepth=16 --rw=write \
		--bs=4k --size=4M --verify_only=1 >/dev/null 2>&1; then
		echo "fio verify passed over a zeroed block"; return 1
	fi
}
teardown_ext4
ktap_run "fio verify through vhost-blk detects a corrupted block" live_verify

# dm-qcow2: through tools/bin/qcow2-dm when present, else dmsetup; the
# image lives on ext4 (on brd), as images do on a host
setup_ext4_file || ktap_print "ext4 setup failed"
rm -f "$EXT4_FILE"	# the image needs the room: 4 x 12 MiB of data
QIMG=$EXT4_MNT/fio.qcow2
qcow2_attach() {
	local sectors
	rm -f "$QIMG"
	qemu-img create -q -f qcow2 "$QIMG" 64M || return 1
	if [ -x "$TOP/tools/bin/qcow2-dm" ]; then
		QDEV=$("$TOP/tools/bin/qcow2-dm" attach "$QIMG" vblk_qcow2 2>&1) || {
			echo "$QDEV"; return 1; }
		QDEV=$(echo "$QDEV" | tail -1)
	else
		sectors=$((64 << 11))
		dmsetup create vblk_qcow2 --table "0 $sectors qcow2 $QIMG" || return 1
		QDEV=/dev/mapper/vblk_qcow2
	fi
	[ -b "$QDEV" ]
}
qcow2_detach() {
	if [ -x "$TOP/tools/bin/qcow2-dm" ]; then
		"$TOP/tools/bin/qcow2-dm" detach vblk_qcow2
	else
		dmsetup remove vblk_qcow2
	fi
}
if ! dmsetup targets 2>/dev/null | grep -q '^qcow2 '; then
	ktap_skip "fio verify onto dm-qcow2" "no qcow2 target loaded"
	ktap_skip "qcow2 image clean after fio" "no qcow2 target loaded"
	ktap_skip "fio verify again, in place, onto dm-qcow2" "no qcow2 target loaded"
	ktap_skip "vhost-blk requests went inline" "no qcow2 target loaded"
elif ! qcow2_attach >"$WORK/attach.log" 2>&1; then
	why=$(tr '\n' ' ' <"$WORK/attach.log" | head -c 200)
	ktap_skip "fio verify onto dm-qcow2" "dm-qcow2 does not attach yet: $why"
	ktap_skip "qcow2 image clean after fio" "dm-qcow2 does not attach yet"
	ktap_skip "fio verify again, in place, onto dm-qcow2" "dm-qcow2 does not attach yet"
	ktap_skip "vhost-blk requests went inline" "dm-qcow2 does not attach yet"
else
	ktap_run "fio verify crc32c, iodepth 128, 4 queues onto dm-qcow2" \
		fio4 "$QDEV" 12M
	# the vhost-blk worker plugs each batch: fio's verify reads (and
	# the second pass's in-place writes) go inline in dm-qcow2
	ktap_run "fio verify again, in place, onto dm-qcow2" fio4 "$QDEV" 6M
	inl=$(dmsetup status vblk_qcow2 | sed -n 's/.* inline_ios \([0-9]*\) .*/\1/p')
	if [ "${inl:-0}" -gt 1000 ]; then
		ktap_ok "vhost-blk requests went inline (inline_ios $inl)"
	else
		ktap_fail "vhost-blk requests went inline" "inline_ios '$inl', want > 1000"
	fi
	qcow2_detach
	ktap_run "qcow2 image clean after fio" qemu-img check -q "$QIMG"
fi
teardown_ext4
ktap_finish
