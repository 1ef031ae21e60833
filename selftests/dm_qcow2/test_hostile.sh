#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Hostile images: qemu-img makes a good image, qcow2_patch.py damages it in
# one way. Damage visible in the metadata the target reads at construction
# must be refused there with a clear ti->error (logged by device-mapper as
# "<dev>: qcow2: <reason>"); damage found only when a request touches it
# must fail that request with EIO. Never a kernel warning.
. "$(dirname "$0")/lib.sh"

[ "$DQ_STANDIN" = nbd ] && ktap_skip_all "hostile images test the dm-qcow2 target itself"

SIZE=$((8 << 20))
SECTORS=$((SIZE / 512))
PATCH=$(dirname "$0")/qcow2_patch.py

# kind : what must happen : reason pattern (case-insensitive, in the log)
refused=(
	"bad-magic:magic"
	"bad-version:version"
	"huge-l1:l1"
	"l1-past-eof:l1|end of (the )?file|eof"
	"refcount-past-eof:refcount"
	"l1-overlaps-refcount:overlap"
	"l1-overlaps-header:overlap|header"
	"refcount-overlaps-header:overlap|header"
	"unknown-incompat:incompatible|feature"
	"corrupt-bit:corrupt"
	"dirty-bit:qemu-img check -r all"
	"encrypted:encrypt"
	"bad-cluster-bits:cluster"
	"huge-refcount-table:refcount"
)
# refused at construction, or the read of the damaged range fails with EIO
read_eio=(truncated compressed-past-eof l2-into-metadata l2-past-eof
	  l1-entry-past-eof l2-unaligned)

base=$WORK/good.qcow2
qemu-img create -q -f qcow2 -o cluster_size=65536 "$base" $SIZE
qemu-io -c "write -P 0x5a 0 128k" -c "write -c -P 0x5b 1M 64k" "$base" >/dev/null

mkbad() {		# mkbad KIND: $img is the damaged copy
	img=$WORK/$1.qcow2
	cp "$base" "$img" && "$PATH_PY" "$PATCH" "$1" "$img"
}
PATH_PY=python3

# dmsetup create with a table; sets created=1 when the kernel accepted it.
create() {
	local name=$1 table=$2
	created=0
	dq_kmark
	if dmsetup create "$name" --table "$table" 2>"$WORK/dmsetup.err"; then
		created=1
		dmsetup mknodes "$name"
	fi
}

refusal_logged() {	# refusal_logged PATTERN
	local new
	new=$(dq_knew | grep -i 'qcow2')
	echo "$new" | sed 's/^/kernel: /'
	[ -n "$new" ] && echo "$new" | grep -Eqi "$1"
}

no_warnings() {
	local bad
	bad=$(dq_kbad)
	[ -z "$bad" ] || { echo "kernel warnings:"; echo "$bad"; return 1; }
}

check_refused() {	# KIND PATTERN
	local kind=$1 pat=$2 name
	mkbad "$kind" || { echo "could not make the image"; return 1; }
	name=$(dq_name)
	create "$name" "0 $SECTORS qcow2 $img"
	if [ $created = 1 ]; then
		echo "table accepted for a $kind image"
		dmsetup remove "$name"
		return 1
	fi
	refusal_logged "$pat" || { echo "no refusal matching /$pat/ in the log"; return 1; }
	no_warnings
}

check_read_eio() {	# KIND
	local kind=$1 name out
	mkbad "$kind" || { echo "could not make the image"; return 1; }
	name=$(dq_name)
	create "$name" "0 $SECTORS qcow2 $img"
	if [ $created = 0 ]; then
		refusal_logged . || { echo "refused without a reason in the log"; return 1; }
		no_warnings
		return
	fi
	out=$(dd if="/dev/mapper/$name" of=/dev/null bs=64k count=32 iflag=direct 2>&1)
	local rc=$?
	dmsetup remove "$name" || { echo "remove failed"; return 1; }
	if [ $rc = 0 ] || ! echo "$out" | grep -q "Input/output error"; then
		echo "reading the damaged range did not fail with EIO: $out"
		return 1
	fi
	no_warnings
}

# Missing refcount blocks: refused, or a write that needs a refcount fails.
check_missing_refblock() {
	local name out rc
	mkbad missing-refblock || return 1
	name=$(dq_name)
	create "$name" "0 $SECTORS qcow2 $img"
	if [ $created = 0 ]; then
		refusal_logged refcount || { echo "no refusal naming refcounts"; return 1; }
		no_warnings
		return
	fi
	out=$(dd if=/dev/zero of="/dev/mapper/$name" bs=64k count=1 seek=64 \
		oflag=direct conv=fsync 2>&1); rc=$?
	dmsetup remove "$name"
	if [ $rc = 0 ] || ! echo "$out" | grep -q "Input/output error"; then
		echo "allocating write succeeded without refcount blocks: $out"
		return 1
	fi
	no_warnings
}

# The table must match the image: wrong length, missing backing files.
check_table_mismatch() {
	local name
	name=$(dq_name)
	create "$name" "0 $((SECTORS * 2)) qcow2 $base"
	if [ $created = 1 ]; then dmsetup remove "$name"; echo "bigger length accepted"; return 1; fi
	refusal_logged "size|length|sectors" || return 1
	qemu-img create -q -f qcow2 -b "$base" -F qcow2 "$WORK/over.qcow2"
	create "$name" "0 $SECTORS qcow2 $WORK/over.qcow2"
	if [ $created = 1 ]; then dmsetup remove "$name"; echo "backing file without backing args accepted"; return 1; fi
	refusal_logged "backing" || return 1
	create "$name" "0 $SECTORS qcow2 $WORK/no-such-file.qcow2"
	if [ $created = 1 ]; then dmsetup remove "$name"; echo "missing file accepted"; return 1; fi
	refusal_logged . || return 1
	no_warnings
}

# qcow2-dm shows the kernel's reason too.
check_tool_message() {
	local out
	mkbad corrupt-bit || return 1
	out=$(qcow2-dm attach "$img" "$(dq_name)" 2>&1) && { echo "attach succeeded"; return 1; }
	echo "$out"
	echo "$out" | grep -qi corrupt
}

ktap_header
ktap_plan $((${#refused[@]} + ${#read_eio[@]} + 3))
for r in "${refused[@]}"; do
	ktap_run "refused: ${r%%:*}" check_refused "${r%%:*}" "${r#*:}"
done
for k in "${read_eio[@]}"; do
	ktap_run "refused or EIO: $k" check_read_eio "$k"
done
ktap_run "missing refcount blocks" check_missing_refblock
ktap_run "table mismatch refused" check_table_mismatch
ktap_run "qcow2-dm attach shows the kernel's reason" check_tool_message
ktap_finish
