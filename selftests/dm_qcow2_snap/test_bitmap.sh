#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Persistent dirty bitmaps and incremental backups.
#
# The target tracks QEMU's enabled bitmaps: in use on disk while attached,
# stored at suspend and detach so that QEMU (qemu-nbd's dirty-bitmap
# context) reads exactly the ranges written, discarded and zeroed; loaded
# again by the next attach; disabled bitmaps untouched; a bitmap left in
# use (a crash) is reported inconsistent and refused for an incremental.
# qcow2-dm bitmap add/clear/remove on a live device. Incremental backups
# (qcow2-dm backup --bitmap --incremental, qcow2-backup): every point's
# chain reads as the device did at that instant, an incremental holds no
# more than what changed, writes made during a backup reach the next one,
# a failed backup loses no bits, restore and verify; everything checks
# clean. A table whose image qemu-img changed while it was suspended
# refuses to resume rather than write a stale bitmap directory; one that
# never ran leaves the bitmaps as it found them.
. "$(dirname "$0")/snap_lib.sh"

[ "$DQ_STANDIN" = nbd ] && ktap_skip_all "tests the dm-qcow2 target itself"
command -v nbdinfo >/dev/null || ktap_skip_all "nbdinfo (libnbd-bin) missing"
ktap_header
ktap_plan 19

SIZE=$((64 * M))
G=65536
img=$WORK/disk.qcow2
dname=$(dq_name)

# bm_list NAME BITMAP: the line of `qcow2-dm bitmap NAME list` for BITMAP
bm_list() { qcow2-dm bitmap "$1" list | awk -v b="$2" '$1 == b'; }

# dirty NAME BITMAP: the dirty bytes the target reports
dirty() { bm_list "$1" "$2" | sed -n 's/.* dirty \([0-9]*\)$/\1/p'; }

# in_use IMAGE BITMAP: the bitmap's in-use flag as qemu-img sees it
in_use() {
	qemu-img info -U --output=json "$1" | python3 -c '
import json, sys
d = json.load(sys.stdin)
for b in d.get("format-specific", {}).get("data", {}).get("bitmaps", []):
    if b["name"] == sys.argv[1]:
        print("yes" if "in-use" in b["flags"] else "no")
        sys.exit(0)
print("missing")' "$2"
}

# qemu_map IMAGE BITMAP: dirty extents "OFF LEN" as QEMU reads the bitmap
qemu_map() {
	local sock=$WORK/nbd.sock pid out
	rm -f "$sock"
	qemu-nbd -r -f qcow2 -B "$2" -k "$sock" "$1" &
	pid=$!
	for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
	out=$(nbdinfo --map="qemu:dirty-bitmap:$2" "nbd+unix:///?socket=$sock")
	kill $pid 2>/dev/null
	wait $pid 2>/dev/null
	echo "$out" | awk '$3 == 1 { print $1, $2 }'
}

expect_eq() {	# WHAT GOT WANT
	[ "$2" = "$3" ] && return 0
	echo "$1: got '$2', want '$3'"
	return 1
}

# --- the target's tracking ------------------------------------------------
qemu-img create -q -f qcow2 "$img" $SIZE
qemu-io -c "write -P 0x11 32M 8M" "$img" >/dev/null
qemu-img bitmap --add "$img" b0
qemu-img bitmap --add --disable "$img" off
dq_attach "$img" "$dname" || ktap_print "attach failed"

listed_ok() {
	expect_eq "b0" "$(bm_list "$dname" b0)" "b0 tracked granularity $G dirty 0" &&
	expect_eq "off" "$(bm_list "$dname" off)" "off disabled granularity $G" &&
	expect_eq "b0 on disk" "$(in_use "$img" b0)" yes &&
	expect_eq "off on disk" "$(in_use "$img" off)" no &&
	expect_eq "info" "$(qcow2-dm info "$dname" | grep '^bitmap: ' | sort | tr '\n' '|')" \
		"bitmap: b0 tracked granularity $G dirty 0|bitmap: off disabled granularity $G|"
}
dq_step "attached: b0 tracked and in use on disk (list, info), a disabled one untouched" listed_ok

rnd "$WORK/r4k" 4096
rnd "$WORK/r128k" $((128 * K))
marks() {
	put "$DEV" "$WORK/r4k" $((M + 4 * K)) &&
	put "$DEV" "$WORK/r128k" $((8 * M)) &&
	blkdiscard -o $((33 * M)) -l $G "$DEV" &&
	blkdiscard -z -o $((20 * M)) -l $G "$DEV" &&
	expect_eq "dirty" "$(dirty "$dname" b0)" $((5 * G))
}
dq_step "write, write across granules, discard, zeroes: the bits counted" marks

stored_ok() {
	dq_detach "$dname" || return 1
	check_clean "$img" &&
	expect_eq "b0 after detach" "$(in_use "$img" b0)" no &&
	expect_eq "QEMU's view of b0" "$(qemu_map "$img" b0 | tr '\n' ' ')" \
		"$M $G $((8 * M)) $((2 * G)) $((20 * M)) $G $((33 * M)) $G " &&
	expect_eq "QEMU's view of off" "$(qemu_map "$img" off)" ""
}
dq_step "detach stores b0: QEMU reads exactly those ranges, check clean" stored_ok

reload_ok() {
	dq_attach "$img" "$dname" || return 1
	expect_eq "dirty after attach" "$(dirty "$dname" b0)" $((5 * G)) &&
	put "$DEV" "$WORK/r4k" $((60 * M)) &&
	expect_eq "dirty" "$(dirty "$dname" b0)" $((6 * G))
}
dq_step "a new attach loads the stored bits and goes on" reload_ok

suspend_ok() {
	dmsetup suspend "$dname" &&
	expect_eq "suspended" "$(in_use "$img" b0)" no &&
	dmsetup resume "$dname" &&
	expect_eq "resumed" "$(in_use "$img" b0)" yes
}
dq_step "suspend stores (not in use), resume marks in use again" suspend_ok

# A table loaded but never resumed (a reload given up) marked the bitmaps
# in use when it was built; at unload it gives them back, or the next
# attach would find them inconsistent.
unresumed_ok() {
	local t
	t=$(dmsetup table "$dname") && dmsetup suspend "$dname" || return 1
	if expect_eq "suspended" "$(in_use "$img" b0)" no &&
	   dmsetup load "$dname" --table "$t" &&
	   expect_eq "reload built" "$(in_use "$img" b0)" yes &&
	   dmsetup clear "$dname" &&
	   expect_eq "reload cleared" "$(in_use "$img" b0)" no; then
		dmsetup resume "$dname" &&
		expect_eq "resumed" "$(in_use "$img" b0)" yes &&
		expect_eq "dirty" "$(dirty "$dname" b0)" $((6 * G))
	else
		dmsetup clear "$dname"
		dmsetup resume "$dname"
		return 1
	fi
}
dq_step "a reload cleared before it ran gives the bitmaps back" unresumed_ok

# a copy of the file taken while attached is what a crash leaves
crash_ok() {
	local c=$WORK/crashed.qcow2 n=${dname}c
	cp --sparse=always "$img" "$c" &&
	expect_eq "copy" "$(in_use "$c" b0)" yes || return 1
	dq_attach "$c" "$n" || return 1
	expect_eq "crashed b0" "$(bm_list "$n" b0)" \
		"b0 inconsistent granularity $G" || { dq_detach "$n"; return 1; }
	qcow2-dm backup "$n" "$WORK/never.qcow2" --bitmap b0 \
		--incremental "$img" 2>"$WORK/crash.err" &&
		{ echo "incremental accepted"; dq_detach "$n"; return 1; }
	grep -q "no consistent bitmap" "$WORK/crash.err" || { cat "$WORK/crash.err"; return 1; }
	dq_detach "$n" && [ ! -e "$WORK/never.qcow2" ]
}
dq_step "a bitmap left in use is inconsistent, an incremental refused" crash_ok

tool_ok() {
	qcow2-dm bitmap "$dname" add b2 --granularity $((128 * K)) &&
	expect_eq "added" "$(bm_list "$dname" b2)" \
		"b2 tracked granularity $((128 * K)) dirty 0" &&
	put "$DEV" "$WORK/r4k" 0 &&
	expect_eq "b2" "$(dirty "$dname" b2)" $((128 * K)) &&
	qcow2-dm bitmap "$dname" clear b2 &&
	expect_eq "cleared" "$(dirty "$dname" b2)" 0 &&
	expect_eq "b0 kept" "$(dirty "$dname" b0)" $((7 * G)) &&
	qcow2-dm bitmap "$dname" remove b2 &&
	expect_eq "removed" "$(bm_list "$dname" b2)" "" &&
	! qcow2-dm bitmap "$dname" remove b2 2>/dev/null &&
	range_eq "$DEV" "$WORK/r4k" 0 4096 &&
	expect_eq "device still in use" "$(in_use "$img" b0)" yes
}
dq_step "qcow2-dm bitmap add, clear, remove on the live device" tool_ok

# qemu-img behind the tool's back (the lock holder killed): it rewrites the
# directory elsewhere; the old table must never write it again
stale_ok() {
	local pidf=${QCOW2_DM_RUNDIR:-/run/qcow2-dm}/$dname.pid
	dmsetup suspend "$dname" && kill "$(cat "$pidf")" && sleep 0.5 &&
	qemu-img bitmap --add "$img" b9 || return 1
	dmsetup resume "$dname" 2>/dev/null && { echo "resumed"; return 1; }
	dmesg | tail -n 5 | grep -q "bitmap directory changed under the device" ||
		{ dmesg | tail -n 5; return 1; }
	dmsetup remove "$dname" && rm -f "$pidf" &&
	check_clean "$img" &&
	expect_eq "b0" "$(in_use "$img" b0)" no &&
	expect_eq "b9" "$(in_use "$img" b9)" no &&
	dq_attach "$img" "$dname" &&
	expect_eq "b9 now" "$(bm_list "$dname" b9)" "b9 tracked granularity $G dirty 0"
}
dq_step "the image changed under a suspended device: resume refused" stale_ok
dq_detach "$dname"
dq_step "the image checks clean" check_clean "$img"

# --- incremental backups --------------------------------------------------
disk=$WORK/inc.qcow2
set_dir=$WORK/set
NBLK=256
BLK=$G
qemu-img create -q -f qcow2 "$disk" $SIZE
qemu-io -c "write -P 0x22 32M 8M" "$disk" >/dev/null
dname=$(dq_name)
dq_attach "$disk" "$dname" || ktap_print "attach failed"

# same_as_device FILE: the backup chain FILE reads as the device does now
same_as_device() { qemu-img compare -q -f qcow2 -F raw "$1" "$DEV"; }

full_ok() {
	local f
	f=$(qcow2-backup run "$dname" "$set_dir") &&
	expect_eq "file" "$f" "$set_dir/0001.qcow2" &&
	same_as_device "$f" &&
	expect_eq "bitmap" "$(bm_list "$dname" qcow2-backup)" \
		"qcow2-backup tracked granularity $G dirty 0"
}
dq_step "full backup: the device's content, the bitmap starts empty" full_ok

rnd "$WORK/w1" $((192 * K))
inc_ok() {
	local f used
	put "$DEV" "$WORK/w1" $((24 * M)) &&
	put "$DEV" "$WORK/r4k" $((50 * M)) &&
	blkdiscard -o $((36 * M)) -l $M "$DEV" &&
	f=$(qcow2-backup run "$dname" "$set_dir") &&
	expect_eq "file" "$f" "$set_dir/0002.qcow2" &&
	same_as_device "$f" || return 1
	# what the overlay itself maps: no more than the dirty ranges
	used=$(qemu-img map --output=json "$f" | python3 -c '
import json, sys
print(sum(e["length"] for e in json.load(sys.stdin) if e["depth"] == 0))')
	[ "$used" -le $((3 * G + G + M)) ] || { echo "maps $used bytes"; return 1; }
	expect_eq "bitmap" "$(dirty "$dname" qcow2-backup)" 0
}
dq_step "incremental: only the changes, its chain equals the device" inc_ok

pat=$WORK/pat
dq_make_pattern
# the chain FILE: a prefix of the writer's blocks then the old zeros in
# the first 16 MiB, the rest as the device holds it now
prefix_ok() {
	qemu-img convert -O raw "$1" "$1.raw" &&
	dq_prefix_of_pattern "$1.raw" backup || return 1
	cmp -s -i $((16 * M)) "$1.raw" "$DEV" ||
		{ echo "beyond the writer's range $1 differs from the device"; return 1; }
	rm -f "$1.raw"
}
during_ok() {
	local f wpid out
	dq_writer > "$WORK/writer.log" 2>&1 &
	wpid=$!
	sleep 1
	out=$(dq_live qcow2-backup run "$dname" "$set_dir") ||
		{ echo "$out"; wait $wpid; return 1; }
	echo "$out" | tail -n +2
	f=$(echo "$out" | head -1)
	wait $wpid || { cat "$WORK/writer.log"; return 1; }
	prefix_ok "$f" || return 1
	# the writes made during that backup are in the next one
	f=$(qcow2-backup run "$dname" "$set_dir") &&
	expect_eq "file" "$f" "$set_dir/0004.qcow2" &&
	same_as_device "$f"
}
dq_step "writes during a backup: a prefix in it, all of them in the next" during_ok

failed_ok() {
	local before
	put "$DEV" "$WORK/w1" $((44 * M)) &&
	before=$(dirty "$dname" qcow2-backup) &&
	expect_eq "dirty" "$before" $((3 * G)) || return 1
	qcow2-dm backup "$dname" "$WORK/x.qcow2" --bitmap qcow2-backup \
		--incremental "$WORK/nonexistent.qcow2" 2>/dev/null &&
		{ echo "backup over a missing PREV succeeded"; return 1; }
	[ ! -e "$WORK/x.qcow2" ] &&
	expect_eq "dirty after the failure" "$(dirty "$dname" qcow2-backup)" \
		"$before" &&
	f=$(qcow2-backup run "$dname" "$set_dir") &&
	same_as_device "$f"
}
dq_step "a failed incremental keeps every bit; the next one has them" failed_ok

restore_ok() {
	local r=$WORK/restored.qcow2
	qcow2-backup restore "$set_dir" 2 "$r" >/dev/null &&
	check_clean "$r" &&
	qcow2-backup verify "$set_dir" 2 "$r" 2>/dev/null &&
	! qcow2-backup verify "$set_dir" 2 "$DEV" 2>/dev/null &&
	qcow2-backup verify "$set_dir" last "$DEV" 2>/dev/null &&
	expect_eq "points" "$(qcow2-backup list "$set_dir" | awk '{ print $1 $3 }' | tr '\n' ' ')" \
		"1full 2incremental 3incremental 4incremental 5incremental "
}
dq_step "restore a point, verify it, list the set" restore_ok

every_clean() {
	local f
	for f in "$set_dir"/*.qcow2; do
		check_clean "$f" || return 1
	done
}
dq_step "every backup checks clean" every_clean
dq_detach "$dname"
dq_step "the device's image checks clean" check_clean "$disk"
dq_step "bitmap --help" sh -c "qcow2-dm bitmap --help | grep -q 'usage: qcow2-dm bitmap'"
dq_step "qcow2-backup --help" sh -c "qcow2-backup --help | grep -q 'usage: qcow2-backup run'"
ktap_finish
