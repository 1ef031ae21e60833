#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Hostile snapshot tables: a good image with two snapshots (qemu-img),
# damaged one way each by snap_patch.py, must be refused when the table
# is loaded, with a clear reason in the kernel log and no kernel warning.
. "$(dirname "$0")/snap_lib.sh"

[ "$DQ_STANDIN" = nbd ] && ktap_skip_all "hostile images test the dm-qcow2 target itself"

SIZE=$((8 * M))
PATCH=$(dirname "$0")/snap_patch.py

# kind:reason pattern (case-insensitive, in the log)
kinds=(
	"too-many:more than 65536 snapshots"
	"table-past-eof:snapshot table offset invalid|snapshot table beyond end"
	"table-unaligned:snapshot table offset invalid"
	"table-over-l1:snapshot table overlaps|snapshot L1 table"
	"count-past-eof:snapshot table beyond end of file|snapshot table larger"
	"extra-huge:snapshot table entry with too much extra data"
	"l1-past-eof:snapshot L1 table misaligned or beyond end of file"
	"l1-unaligned:snapshot L1 table misaligned or beyond end of file"
	"l1-over-header:snapshot L1 table overlaps other metadata"
	"l1-over-refcount:snapshot L1 table overlaps other metadata"
	"l1-huge:snapshot L1 table too large"
)

base=$WORK/good.qcow2
qemu-img create -q -f qcow2 "$base" $SIZE
qemu-io -c "write -P 0x5a 0 256k" "$base" >/dev/null
qemu-img snapshot -c one "$base"
qemu-io -c "write -P 0x5b 64k 64k" "$base" >/dev/null
qemu-img snapshot -c two "$base"

good() {
	local name rc=0
	name=$(dq_name)
	dq_attach "$base" "$name" || return 1
	snap_msg "$name" list | awk '{ print $2 }' | tr '\n' ' ' | grep -qx "one two " ||
		{ echo "snapshot list is not 'one two'"; rc=1; }
	dq_detach "$name" || rc=1
	return $rc
}

refused() {		# refused KIND PATTERN
	local img=$WORK/$1.qcow2 name=dq$$-bad
	cp "$base" "$img" && python3 "$PATCH" "$1" "$img" || return 1
	dq_kmark
	if dmsetup create "$name" --table "0 $((SIZE / 512)) qcow2 $img" 2>/dev/null; then
		dmsetup remove "$name"
		echo "$1: the damaged image was accepted"
		return 1
	fi
	dq_knew | grep -iEq "qcow2: ($2)" ||
		{ echo "$1: no '$2' in the log:"; dq_knew; return 1; }
	! dq_kbad
}

# Damage that only a delete reaches (review finding): an L2 entry of the
# deleted snapshot naming a refcount block or an active L2 table. The
# delete used to drop that cluster's refcount and punch it; it must check
# every table and cluster first and refuse (EIO) with nothing changed:
# the snapshot stays, qemu-img check finds only the planted damage, and
# the image is marked corrupt.
check_errors() {
	qemu-img check "$1" 2>&1 | sed -n 's/^\([0-9]*\) errors were found.*/\1/p' | grep . || echo 0
}
delete_refused() {	# KIND
	local img=$WORK/$1.qcow2 name before after rc=0
	cp "$base" "$img" && python3 "$PATCH" "$1" "$img" || return 1
	before=$(check_errors "$img")
	name=$(dq_name)
	dq_attach "$img" "$name" || return 1
	dq_kmark
	if snap_msg "$name" delete one 2>/dev/null; then
		echo "$1: delete of the damaged snapshot accepted"; rc=1
	fi
	dq_knew | grep -iq "qcow2: .*snapshot delete: .*metadata" ||
		{ echo "$1: no reason in the log:"; dq_knew; rc=1; }
	dq_detach "$name" || rc=1
	listed "$img" one || { echo "$1: snapshot one is gone"; rc=1; }
	after=$(check_errors "$img")
	[ "$after" = "$before" ] ||
		{ echo "$1: qemu-img check: $before errors planted, $after after the delete"; rc=1; }
	qemu-img info "$img" | grep -q "corrupt: true" || { echo "$1: not marked corrupt"; rc=1; }
	! dq_kbad && return $rc
}

ktap_header
ktap_plan $((${#kinds[@]} + 3))
ktap_run "good image with two snapshots attaches and lists them" good
for k in "${kinds[@]}"; do
	ktap_run "${k%%:*} refused" refused "${k%%:*}" "${k#*:}"
done
ktap_run "delete of a snapshot whose L2 entry names a refcount block: refused, nothing changed" \
	delete_refused l2-over-refblock
ktap_run "delete of a snapshot whose L2 entry names an active L2 table: refused, nothing changed" \
	delete_refused l2-over-active-l2
ktap_finish
