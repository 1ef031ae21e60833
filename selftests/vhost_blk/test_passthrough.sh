#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# What the guest asks for reaches the backend: a FLUSH through
# /dev/vhost-blk is a flush on the backend device (dm-log-writes below
# records one after the write it must cover), a DISCARD is a discard
# there (recorded, and the range reads zeros afterwards, through
# vhost-blk and straight from the file under the loop device), and the
# written data is in the log as a write of the right place and size.
. "$(dirname "$0")/common.sh"

LWLOG=$TOP/tools/lwlog/lwlog
LW=vbpt$$
data=$WORK/pt-data.raw
logf=$WORK/pt-log.raw
cleanup() {
	dmsetup remove "$LW" 2>/dev/null
	[ -n "${dloop:-}" ] && losetup -d "$dloop"
	[ -n "${lloop:-}" ] && losetup -d "$lloop"
	rm -f "$data" "$logf"
}
trap cleanup EXIT

ktap_header
ktap_plan 6

modprobe dm-log-writes 2>/dev/null
truncate -s 16M "$data" "$logf"
dloop=$(losetup -f --show "$data") && lloop=$(losetup -f --show "$logf") &&
	dmsetup create "$LW" --table "0 32768 log-writes $dloop $lloop" ||
	{ echo "Bail out! dm-log-writes over two loop devices"; exit 1; }
DEV=/dev/mapper/$LW

head -c 1M /dev/urandom > "$WORK/pt.bin"
ok=1
"$VBLK" write "$DEV" 1048576 < "$WORK/pt.bin" || ok=0
"$VBLK" flush "$DEV" || ok=0
"$VBLK" discard "$DEV" 1048576 262144 || ok=0
dmsetup message "$LW" 0 mark done || ok=0
"$VBLK" read "$DEV" 1048576 1048576 > "$WORK/pt.back" || ok=0
# removing the target writes the rest of its log
dmsetup remove "$LW" || ok=0
if [ $ok = 1 ]; then
	ktap_ok "write, flush, discard and read through vhost-blk succeed"
else
	ktap_fail "write, flush, discard and read through vhost-blk succeed"
fi

list=$("$LWLOG" list "$lloop")
echo "$list" | sed 's/^/# log: /' | tail -20
# entries: NUMBER FLAGS SECTOR NR_SECTORS [MARK]
wrote=$(echo "$list" | awk '$2 !~ /[DFM]/ && $3 >= 2048 && $3 < 4096 { n += $4 } END { print n + 0 }')
if [ "$wrote" = 2048 ]; then
	ktap_ok "the log holds the 1 MiB write at 1 MiB"
else
	ktap_fail "the log holds the 1 MiB write at 1 MiB" "$wrote sectors logged there"
fi
lastw=$(echo "$list" | awk '$2 !~ /[DFM]/ && $3 >= 2048 && $3 < 4096 { n = $1 } END { print n + 0 }')
if echo "$list" | awk -v w="$lastw" '$1 > w && $2 ~ /F/ { f = 1 } END { exit !f }'; then
	ktap_ok "a flush reached the backend after the write"
else
	ktap_fail "a flush reached the backend after the write"
fi
if echo "$list" | awk '$2 ~ /D/ && $3 == 2048 && $4 == 512 { d = 1 } END { exit !d }'; then
	ktap_ok "the discard reached the backend (sector 2048, 512 sectors)"
else
	ktap_fail "the discard reached the backend (sector 2048, 512 sectors)"
fi
if cmp -s -n 262144 "$WORK/pt.back" /dev/zero &&
   cmp -s -i 262144 "$WORK/pt.back" "$WORK/pt.bin"; then
	ktap_ok "through vhost-blk the discarded range reads zeros, the rest the data"
else
	ktap_fail "through vhost-blk the discarded range reads zeros, the rest the data"
fi
if dd if="$data" bs=256k skip=4 count=1 status=none | cmp -s -n 262144 - /dev/zero; then
	ktap_ok "the file under the loop device had the range punched"
else
	ktap_fail "the file under the loop device had the range punched"
fi
ktap_finish
