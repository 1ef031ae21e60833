#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# A backend I/O error reaches the guest-side driver as VIRTIO_BLK_S_IOERR,
# and only the requests it hits: under /dev/vhost-blk a device-mapper
# table maps two small ranges to the "error" target (Debian's kernels have
# no dm-dust); while a verify runs on 4 queues of a second vhost-blk
# device over the same backend, elsewhere on it, reads and writes that
# touch a bad range get IOERR (vblk exit 5) and the verify finishes clean.
# Once the table maps everything again, the same blocks read back.
. "$(dirname "$0")/common.sh"

DUST=vbde$$	# the device with bad ranges
cleanup() {
	[ -n "${vpid:-}" ] && kill "$vpid" 2>/dev/null
	dmsetup remove "$DUST" 2>/dev/null
}
trap cleanup EXIT

ktap_header
ktap_plan 6

setup_brd || { echo "Bail out! brd"; exit 1; }
# 4 KiB blocks 100-101 and 2000 of /dev/ram0 (64 MiB) fail
bad_table() {
	printf '%s\n' "0 800 linear /dev/ram0 0" "800 16 error" \
		"816 15184 linear /dev/ram0 816" "16000 8 error" \
		"16008 115064 linear /dev/ram0 16008"
}
bad_table | dmsetup create "$DUST" ||
	{ echo "Bail out! a table with error ranges"; exit 1; }
DEV=/dev/mapper/$DUST

# the verify covers 16 MiB .. 48 MiB, away from the bad blocks
"$VBLK" verify "$DEV" --queues 4 --workers 2 --depth 8 --offset $((16 << 20)) \
	--size $((32 << 20)) --passes 3 > "$WORK/de-verify.log" 2>&1 &
vpid=$!

rc=0
"$VBLK" read "$DEV" $((100 * 4096)) 4096 > /dev/null 2>"$WORK/de-read.err" || rc=$?
if [ $rc = $EX_IOERR ]; then
	ktap_ok "a read of a bad block gets IOERR (vblk exit $rc)"
else
	ktap_fail "a read of a bad block gets IOERR" "vblk exit $rc: $(cat "$WORK/de-read.err")"
fi
rc=0
"$VBLK" read "$DEV" $((99 * 4096)) 12288 > /dev/null 2>>"$WORK/de-read.err" || rc=$?
if [ $rc = $EX_IOERR ]; then
	ktap_ok "a read spanning good and bad blocks gets IOERR"
else
	ktap_fail "a read spanning good and bad blocks gets IOERR" "vblk exit $rc"
fi
head -c 4096 /dev/urandom > "$WORK/de.blk"
rc=0
"$VBLK" write "$DEV" $((2000 * 4096)) < "$WORK/de.blk" 2>>"$WORK/de-read.err" || rc=$?
if [ $rc = $EX_IOERR ]; then
	ktap_ok "a write to a bad block gets IOERR"
else
	ktap_fail "a write to a bad block gets IOERR" "vblk exit $rc"
fi
if wait "$vpid"; then
	ktap_ok "a 4-queue verify beside them went on clean"
else
	ktap_fail "a 4-queue verify beside them went on clean" \
		"$(tail -3 "$WORK/de-verify.log")"
fi
vpid=
sed 's/^/# /' "$WORK/de-verify.log" | tail -3
if "$VBLK" verify "$DEV" --queues 2 --offset $((48 << 20)) --size $((1 << 20)) > /dev/null 2>&1; then
	ktap_ok "the device serves I/O after the errors"
else
	ktap_fail "the device serves I/O after the errors"
fi
dmsetup suspend "$DUST" &&
	dmsetup reload "$DUST" --table "0 131072 linear /dev/ram0 0" &&
	dmsetup resume "$DUST" || ktap_print "reload failed"
if "$VBLK" write "$DEV" $((2000 * 4096)) < "$WORK/de.blk" &&
   "$VBLK" read "$DEV" $((2000 * 4096)) 4096 | cmp -s - "$WORK/de.blk" &&
   "$VBLK" read "$DEV" $((100 * 4096)) 8192 > /dev/null; then
	ktap_ok "mapped again, the same blocks take writes and read back"
else
	ktap_fail "mapped again, the same blocks take writes and read back"
fi
ktap_finish
