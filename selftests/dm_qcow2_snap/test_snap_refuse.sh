#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# What the snapshot messages and `qcow2-dm snapshot` refuse, with which
# error and reason: duplicate tags, bad tags, unknown snapshots, a
# read-only device, usage errors; revert only on a detached image or a
# suspended device (and that it then reads as the snapshot). The image
# stays clean throughout.
. "$(dirname "$0")/snap_lib.sh"

[ "$DQ_STANDIN" = nbd ] && ktap_skip_all "snapshots are dm-qcow2 messages"

SIZE=$((8 * M))
img=$WORK/r.qcow2
qemu-img create -q -f qcow2 "$img" $SIZE
qemu-io -c "write -P 0x21 0 1M" "$img" >/dev/null

# refused WHY ERRNO-TEXT LOG-PATTERN NAME ARGS...: the message must fail
# with that errno text from dmsetup and that reason in the kernel log.
refused() {
	local why=$1 etext=$2 pat=$3 name=$4 out
	shift 4
	dq_kmark
	if out=$(snap_msg "$name" "$@" 2>&1); then
		echo "$why: accepted"; return 1
	fi
	echo "$out" | grep -q "$etext" ||
		{ echo "$why: dmsetup said '$out', not '$etext'"; return 1; }
	dq_knew | grep -iq "qcow2: .*$pat" ||
		{ echo "$why: no '$pat' in the log"; dq_knew; return 1; }
	! dq_kbad
}

messages() {
	local name rc=0 long
	long=$(printf 'x%.0s' $(seq 129))
	name=$(dq_name)
	dq_attach "$img" "$name" || return 1
	snap_msg "$name" create keep || { echo "create keep failed"; rc=1; }
	refused "duplicate tag" "File exists" "tag or id 'keep' exists" "$name" create keep || rc=1
	refused "numeric tag" "Invalid argument" "bad tag" "$name" create 42 || rc=1
	refused "control character in tag" "Invalid argument" "bad tag" "$name" create $'a\x01b' || rc=1
	refused "129-character tag" "Invalid argument" "bad tag" "$name" create "$long" || rc=1
	refused "unknown snapshot" "No such file" "no snapshot with tag or id 'nope'" "$name" delete nope || rc=1
	refused "unknown operation" "Invalid argument" "usage: snapshot" "$name" frob x || rc=1
	refused "missing tag" "Invalid argument" "usage: snapshot" "$name" create || rc=1
	[ "$(snap_msg "$name" list | wc -l)" = 1 ] || { echo "list is not one line"; rc=1; }
	# deleting by id works too
	snap_msg "$name" create byid || rc=1
	id=$(snap_msg "$name" list | awk '$2 == "byid" { print $1 }')
	snap_msg "$name" delete "$id" || { echo "delete by id $id failed"; rc=1; }
	snap_msg "$name" list | grep -qw byid && { echo "byid still listed"; rc=1; }
	dq_detach "$name" || rc=1
	check_clean "$img" || rc=1
	return $rc
}

readonly_dev() {
	local name rc=0
	name=$(dq_name)
	dq_attach "$img" "$name" --ro || return 1
	refused "read-only create" "Read-only" "device is read-only" "$name" create ro1 || rc=1
	refused "read-only delete" "Read-only" "device is read-only" "$name" delete keep || rc=1
	snap_msg "$name" list | grep -qw keep || { echo "ro list lacks keep"; rc=1; }
	dq_detach "$name" || rc=1
	return $rc
}

tool() {
	local name rc=0 out
	name=$(dq_name)
	dq_attach "$img" "$name" || return 1
	qcow2-dm snapshot --help | grep -q "snapshot NAME create TAG" ||
		{ echo "no usage text"; rc=1; }
	qcow2-dm snapshot "$name" create tool1 || { echo "tool create failed"; rc=1; }
	qcow2-dm snapshot "$name" list | grep -q "^[0-9]* tool1 $SIZE " ||
		{ echo "tool list lacks tool1"; rc=1; }
	out=$(qcow2-dm snapshot "$name" create tool1 2>&1); [ $? = 1 ] ||
		{ echo "duplicate via the tool: not status 1"; rc=1; }
	echo "$out" | grep -q "exists" || { echo "tool did not say why: $out"; rc=1; }
	qcow2-dm snapshot "$name" 2>/dev/null; [ $? = 2 ] || { echo "usage error: not 2"; rc=1; }
	qcow2-dm snapshot "$name" rename a 2>/dev/null; [ $? = 2 ] || { echo "bad op: not 2"; rc=1; }
	qcow2-dm snapshot "$name" revert tool1 2>"$WORK/err"; [ $? = 1 ] &&
		grep -q "is attached and running" "$WORK/err" ||
		{ echo "revert of a running device not refused"; rc=1; }
	# after the snapshot: change the device, then revert the detached image
	cp "$DEV" "$WORK/before.raw"
	dd if=/dev/urandom of="$DEV" bs=64k count=8 oflag=direct conv=notrunc status=none
	dq_detach "$name" || return 1
	qcow2-dm snapshot "$img" revert tool1 || { echo "revert failed"; rc=1; }
	qemu-img compare -q -f qcow2 -F raw "$img" "$WORK/before.raw" ||
		{ echo "reverted image is not the snapshot content"; rc=1; }
	check_clean "$img" || rc=1
	return $rc
}

# Revert of a suspended device: writes after the snapshot (some still in
# the target's metadata cache at the suspend), revert, resume; the device
# reads the snapshot, takes writes, and the image stays clean.
suspended_revert() {
	local name dev rc=0
	name=$(dq_name)
	dq_attach "$img" "$name" || return 1
	dev=$DEV
	dd if=/dev/urandom of="$dev" bs=64k count=16 oflag=direct status=none || return 1
	qcow2-dm snapshot "$name" create live1 || { dq_detach "$name"; return 1; }
	cp "$dev" "$WORK/snap.raw"
	dd if=/dev/urandom of="$dev" bs=4k count=64 seek=100 oflag=direct status=none
	dd if=/dev/urandom of="$dev" bs=64k count=32 seek=64 oflag=direct status=none
	dmsetup suspend "$name" || { dq_detach "$name"; return 1; }
	qcow2-dm snapshot "$name" revert nosuch 2>"$WORK/err"; [ $? = 1 ] &&
		grep -q "unchanged, still suspended" "$WORK/err" ||
		{ echo "revert to a missing snapshot: not refused"; cat "$WORK/err"; rc=1; }
	qcow2-dm snapshot "$name" revert live1 || { echo "suspended revert failed"; rc=1; }
	dmsetup info -c --noheadings -o suspended "$name" | grep -q Suspended ||
		{ echo "device not left suspended"; rc=1; }
	dmsetup resume "$name" || { echo "resume failed"; rc=1; }
	cmp "$dev" "$WORK/snap.raw" || { echo "device does not read the snapshot after revert"; rc=1; }
	dd if=/dev/urandom of="$dev" bs=4k count=256 seek=1000 oflag=direct status=none ||
		{ echo "write after revert failed"; rc=1; }
	cp "$dev" "$WORK/after.raw"
	dq_detach "$name" || return 1
	qemu-img compare -q -f qcow2 -F raw "$img" "$WORK/after.raw" ||
		{ echo "image differs from the device after revert and writes"; rc=1; }
	qemu-img snapshot -l "$img" | grep -qw live1 || { echo "snapshot live1 gone"; rc=1; }
	check_clean "$img" || rc=1
	return $rc
}

# Messages on a table that is not the image's running owner (review
# finding, reproduced): suspend, reload the same table, message, resume,
# write, detach. The message used to write the snapshot table under the
# new table, whose view then overwrote it, and QEMU could no longer open
# the image ("Too much extra metadata in snapshot table entry 0"). Each
# metadata-writing message must be refused with EBUSY and one log line,
# on a suspended owner with and without a reload; the image stays clean,
# opens in QEMU and holds what the device read.
# not_owner_one OP ARG reload|plain
not_owner_one() {
	local op="$1 $2" how=$3 name dev rc=0 table
	qemu-img snapshot -c own "$img" || return 1
	name=$(dq_name)
	dq_attach "$img" "$name" || return 1
	dev=$DEV
	table=$(dmsetup table "$name" | cut -d' ' -f4-)
	dmsetup suspend "$name" || { echo "suspend failed"; return 1; }
	if [ "$how" = reload ]; then
		dmsetup reload "$name" --table "0 $((SIZE / 512)) qcow2 $table" ||
			{ echo "reload failed"; return 1; }
	fi
	refused "$op on a suspended table ($how)" "Device or resource busy" \
		"not the image's running owner" "$name" "$1" "$2" || rc=1
	dmsetup resume "$name" || { echo "resume after $op ($how) failed"; return 1; }
	dd if=/dev/urandom of="$dev" bs=64k count=4 seek=$((RANDOM % 64)) \
		oflag=direct status=none || { echo "write after $op failed"; rc=1; }
	cp "$dev" "$WORK/owner.raw"
	dq_detach "$name" || return 1
	check_clean "$img" || rc=1
	qemu-img snapshot -l "$img" >/dev/null ||
		{ echo "$op ($how): qemu-img snapshot -l cannot open the image"; return 1; }
	listed "$img" own || { echo "$op ($how): own not in qemu-img snapshot -l"; rc=1; }
	listed "$img" s1 && { echo "$op ($how): s1 in qemu-img snapshot -l"; rc=1; }
	qemu-img compare -q -f qcow2 -F raw "$img" "$WORK/owner.raw" ||
		{ echo "$op ($how): image differs from what the device read"; rc=1; }
	qemu-img snapshot -d own "$img" || rc=1
	qemu-img snapshot -d s1 "$img" 2>/dev/null
	return $rc
}

not_owner() {
	local name rc=0
	not_owner_one create s1 reload || rc=1
	not_owner_one delete own reload || rc=1
	not_owner_one create s1 plain || rc=1
	not_owner_one delete own plain || rc=1
	# the running owner still takes both, once resumed
	name=$(dq_name)
	dq_attach "$img" "$name" || return 1
	dmsetup suspend "$name" && dmsetup resume "$name" || rc=1
	snap_msg "$name" create s2 || { echo "create on the running owner failed"; rc=1; }
	snap_msg "$name" delete s2 || { echo "delete on the running owner failed"; rc=1; }
	dq_detach "$name" || rc=1
	check_clean "$img" || rc=1
	return $rc
}

ktap_header
ktap_plan 5
ktap_run "message refusals: errno and reason" messages
ktap_run "read-only device refuses create and delete" readonly_dev
ktap_run "qcow2-dm snapshot wrapper and revert" tool
ktap_run "revert of a suspended device" suspended_revert
ktap_run "messages refused unless the table is the running owner" not_owner
ktap_finish
