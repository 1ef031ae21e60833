#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Out of space is not an I/O error (review finding). The image lives on a
# small ext4 that fills up. By default a request that meets the full file
# system fails at once with BLK_STS_NOSPC (the writer sees ENOSPC, not
# EIO), the target counts it in status (no_space) and raises a dm event.
# With queue_if_no_space SECS it waits instead: the file system is grown
# online meanwhile and the writer finishes as if nothing happened; if
# nobody makes room, it fails with ENOSPC after SECS. The image checks
# clean and holds what was written.
. "$(dirname "$0")/lib.sh"

need qemu-img dmsetup losetup mkfs.ext4 resize2fs fallocate
DEV=/dev/mapper/dmns
MNT=$WORK/mnt
loop=
cleanup() {
	dmsetup remove dmns 2>/dev/null
	umount "$MNT" 2>/dev/null
	[ -n "$loop" ] && losetup -d "$loop"
	rm -rf "$WORK"
}
trap cleanup EXIT

ktap_header
ktap_plan 9

field() { dmsetup status dmns | sed -n "s/.* $1 \([0-9]*\) .*/\1/p"; }
events() { dmsetup info dmns | sed -n 's/^Event number: *//p'; }
# fill: leave about 256 KiB free on the file system
fill() {
	local avail
	rm -f "$MNT/filler"
	sync
	avail=$(df -B1 --output=avail "$MNT" | tail -1)
	fallocate -l $((avail - 262144)) "$MNT/filler"
	sync
}

truncate -s 64M "$WORK/fs.img"
loop=$(losetup -f --show "$WORK/fs.img") || ktap_skip_all "no loop device"
mkfs.ext4 -q -F -m 0 "$loop" && mkdir -p "$MNT" && mount "$loop" "$MNT" ||
	{ echo "Bail out! ext4 on a loop device"; exit 1; }
img=$MNT/ns.qcow2
qemu-img create -q -f qcow2 "$img" 256M
head -c 8M /dev/urandom > "$WORK/data"

# fail at once (the default)
attach dmns "$img" || { echo "Bail out! attach"; exit 1; }
fill
ev0=$(events)
dd if="$WORK/data" of="$DEV" bs=1M oflag=direct status=none 2> "$WORK/err"
rc=$?
if [ $rc != 0 ] && grep -q "No space left on device" "$WORK/err"; then
	ktap_ok "a write to a full file system fails with ENOSPC, not EIO"
else
	ktap_fail "a write to a full file system fails with ENOSPC, not EIO" \
		"dd exit $rc: $(cat "$WORK/err")"
fi
ns=$(field no_space)
[ -n "$ns" ] && [ "$ns" -gt 0 ] && ktap_ok "status counts it (no_space $ns)" ||
	ktap_fail "status counts it" "no_space '$ns'"
sleep 1.5	# the event is raised by the worker, at most a second later
[ "$(events)" -gt "$ev0" ] && ktap_ok "a dm event is raised" ||
	ktap_fail "a dm event is raised" "event number $ev0 -> $(events)"
rm -f "$MNT/filler"
if dd if="$WORK/data" of="$DEV" bs=1M oflag=direct conv=fsync status=none &&
   cmp -s -n 8388608 "$DEV" "$WORK/data"; then
	ktap_ok "with room again the same write succeeds and reads back"
else
	ktap_fail "with room again the same write succeeds and reads back"
fi
dmsetup remove dmns

# queue, then grow the file system online
attach dmns "$img" queue_if_no_space 120 || { echo "Bail out! attach queue"; exit 1; }
fill
dd if="$WORK/data" of="$DEV" bs=1M seek=16 oflag=direct conv=fsync status=none 2> "$WORK/err" &
writer=$!
queued=0
for _ in $(seq 60); do
	queued=$(field no_space_queued)
	[ "${queued:-0}" -gt 0 ] && break
	sleep 0.5
done
[ "${queued:-0}" -gt 0 ] && ktap_ok "queue_if_no_space: requests wait (no_space_queued $queued)" ||
	ktap_fail "queue_if_no_space: requests wait" "no_space_queued '$queued'"
truncate -s 128M "$WORK/fs.img" && losetup -c "$loop" && resize2fs -f "$loop" >/dev/null 2>&1 ||
	echo "# growing the file system failed"
if wait $writer && cmp -s -n 8388608 <(dd if="$DEV" bs=1M skip=16 count=8 iflag=direct status=none) "$WORK/data"; then
	ktap_ok "queue_if_no_space: the writer finishes once the file system grew"
else
	ktap_fail "queue_if_no_space: the writer finishes once the file system grew" "$(cat "$WORK/err")"
fi
dmsetup remove dmns

# queue for 2 s with nobody making room: ENOSPC after the wait
attach dmns "$img" queue_if_no_space 2 || { echo "Bail out! attach queue 2"; exit 1; }
fill
dd if="$WORK/data" of="$DEV" bs=1M seek=64 oflag=direct status=none 2> "$WORK/err"
rc=$?
if [ $rc != 0 ] && grep -q "No space left on device" "$WORK/err" &&
   [ "$(field no_space_queued)" = 0 ]; then
	ktap_ok "queue_if_no_space 2: ENOSPC once the time is up"
else
	ktap_fail "queue_if_no_space 2: ENOSPC once the time is up" "dd exit $rc: $(cat "$WORK/err")"
fi
rm -f "$MNT/filler"
dmsetup remove dmns
if out=$(qemu-img check "$img" 2>&1); then
	ktap_ok "qemu-img check clean"
else
	ktap_fail "qemu-img check clean" "$(tail -5 <<< "$out")"
fi
qemu-img convert -O raw "$img" "$WORK/all.raw"
if cmp -s -n 8388608 "$WORK/all.raw" "$WORK/data" &&
   cmp -s -n 8388608 <(dd if="$WORK/all.raw" bs=1M skip=16 count=8 status=none) "$WORK/data"; then
	ktap_ok "the image holds what was written"
else
	ktap_fail "the image holds what was written"
fi
ktap_finish
