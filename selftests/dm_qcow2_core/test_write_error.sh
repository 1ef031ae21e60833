#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# A failed fsync is latched (review finding). The image sits on ext4 over
# a device with 4 KiB logical sectors, so the target writes through the
# page cache; dm-flakey under it starts failing writes. Pages whose
# write-back failed are clean again, so the second fsync of the image
# succeeded and the next flush could point L2 entries at data that never
# reached the disk. Now, after the first write-back error, flushes and
# writes fail (status write_error shows the errno) until the table is
# reloaded; the reloaded table reads the image as last flushed, takes
# writes and flushes again, and the image checks without corruption.
. "$(dirname "$0")/lib.sh"

need qemu-img dmsetup losetup mkfs.ext4 python3
modprobe dm-flakey 2>/dev/null
dmsetup targets | grep -q '^flakey ' || ktap_skip_all "dm-flakey not available"
DEV=/dev/mapper/dmwe
MNT=$WORK/mnt
loop=
cleanup() {
	dmsetup remove dmwe 2>/dev/null
	umount "$MNT" 2>/dev/null
	dmsetup remove dmwe-fl 2>/dev/null
	[ -n "$loop" ] && losetup -d "$loop"
	rm -rf "$WORK"
}
trap cleanup EXIT

ktap_header
ktap_plan 8

fsync_dev() {
	python3 -c 'import os,sys; fd = os.open(sys.argv[1], os.O_WRONLY); os.fsync(fd)' "$1" 2>/dev/null
}
wr() { dd if=/dev/urandom of="$DEV" bs=64k seek="$1" count="$2" oflag=direct status=none 2>/dev/null; }
field() { dmsetup status dmwe | sed -n "s/.* $1 \([0-9-]*\) .*/\1/p"; }
# flakey MODE: "up" passes everything, "error" fails every write
flakey() {
	local t="0 $secs flakey $loop 0 3600 0"
	[ "$1" = error ] && t="0 $secs flakey $loop 0 0 3600 1 error_writes"
	dmsetup suspend --nolockfs dmwe-fl && dmsetup load dmwe-fl --table "$t" &&
		dmsetup resume dmwe-fl
}

truncate -s 128M "$WORK/4k.img"
loop=$(losetup -f --show -b 4096 "$WORK/4k.img") || ktap_skip_all "no 4 KiB-sector loop device"
secs=$(blockdev --getsz "$loop")
dmsetup create dmwe-fl --table "0 $secs flakey $loop 0 3600 0" ||
	{ echo "Bail out! flakey create failed"; exit 1; }
# no journal: the file system itself carries on past the write errors
mkfs.ext4 -q -F -O ^has_journal /dev/mapper/dmwe-fl && mkdir -p "$MNT" &&
	mount -o errors=continue /dev/mapper/dmwe-fl "$MNT" ||
	{ echo "Bail out! ext4 on the flakey device"; exit 1; }
img=$MNT/we.qcow2
qemu-img create -q -f qcow2 "$img" 16M
qemu-io -c 'write -P 0x5a 0 2M' "$img" >/dev/null
sync
attach dmwe "$img" || { echo "Bail out! attach failed"; exit 1; }
table=$(dmsetup table dmwe)

wr 40 16 || echo "# write before the failure failed"
flakey error || { echo "Bail out! flakey error mode"; exit 1; }
if fsync_dev "$DEV"; then
	ktap_fail "the first flush after write-back failed reports the error"
else
	ktap_ok "the first flush after write-back failed reports the error"
fi
flakey up || { echo "Bail out! flakey up"; exit 1; }
if fsync_dev "$DEV"; then
	ktap_fail "the second flush fails too (the error is latched)" "it succeeded"
else
	ktap_ok "the second flush fails too (the error is latched)"
fi
if wr 80 4; then
	ktap_fail "writes fail after the write-back error"
else
	ktap_ok "writes fail after the write-back error"
fi
we=$(field write_error)
if [ -n "$we" ] && [ "$we" != 0 ]; then
	ktap_ok "status shows write_error $we"
else
	ktap_fail "status shows the latched error" "write_error '$we'"
fi
if cmp -s -n 2097152 "$DEV" <(head -c 2M /dev/zero | tr '\0' '\132'); then
	ktap_ok "reads still served: the data written before the failure window"
else
	ktap_fail "reads still served: the data written before the failure window"
fi
# a reload gives a table that reads the image as last flushed
dmsetup suspend dmwe && dmsetup reload dmwe --table "$table" && dmsetup resume dmwe ||
	echo "# reload failed"
head -c 1M /dev/urandom > "$WORK/after.bin"
if dd if="$WORK/after.bin" of="$DEV" bs=64k seek=96 oflag=direct status=none &&
   fsync_dev "$DEV" && [ "$(field write_error)" = 0 ]; then
	ktap_ok "a reloaded table takes writes and flushes"
else
	ktap_fail "a reloaded table takes writes and flushes"
fi
if cmp -s "$WORK/after.bin" <(dd if="$DEV" bs=64k skip=96 count=16 iflag=direct status=none); then
	ktap_ok "what the reloaded table wrote reads back"
else
	ktap_fail "what the reloaded table wrote reads back"
fi
dmsetup remove dmwe
echo 3 > /proc/sys/vm/drop_caches
qemu-img check "$img" > "$WORK/check.out" 2>&1
rc=$?
# 0 clean, 3 leaked clusters only (allocations lost with the failed
# write-back); 2 would be corruption
if [ $rc = 0 ] || [ $rc = 3 ]; then
	ktap_ok "qemu-img check: no corruption (exit $rc)"
else
	ktap_fail "qemu-img check: no corruption" "exit $rc: $(tail -5 "$WORK/check.out")"
fi
ktap_finish
