#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# qcow2-dm backup NAME OUT: a point-in-time copy of a live device while a
# writer runs. The copy holds exactly a prefix of the writer's sequence
# (the writes completed before the freeze) and what was there before; the
# device holds every write and is back on its single image afterwards,
# with nothing of the backup left behind; a failed backup also leaves
# nothing behind; a read-only device is copied as it is.
. "$(dirname "$0")/lib.sh"

[ "$DQ_STANDIN" = nbd ] && ktap_skip_all "tests qcow2-dm itself"
ktap_header
ktap_plan 11

SIZE=$((64 << 20))
BLK=65536
NBLK=256			# the writer covers the first 16 MiB
disk=$WORK/disk.qcow2
pat=$WORK/pattern
dname=$(dq_name)

dq_make_pattern
qemu-img create -q -f qcow2 "$disk" $SIZE
qemu-io -c "write -P 0x11 32M 8M" "$disk" >/dev/null

single_image() {
	qcow2-dm info "$dname" | grep -qx "image: $disk" &&
	! qcow2-dm info "$dname" | grep -q '^backing:' && return 0
	qcow2-dm info "$dname" | grep -E '^(image|backing):'
	return 1
}
nothing_left() {
	ls -a "$WORK" | grep -E '\.(backup|merge)-' || return 0
	return 1
}

dq_attach "$disk" "$dname" || ktap_print "attach failed"
dq_writer > "$WORK/writer.log" 2>&1 &
wpid=$!
sleep 1
dq_step "backup while a writer runs" dq_live qcow2-dm backup "$dname" "$WORK/b1.qcow2"
wait $wpid
dq_step "the writer saw no error" test ! -s "$WORK/writer.log"
dq_step "the device is back on its single image, nothing left behind" \
	eval 'single_image && nothing_left'
dd if="$DEV" of="$WORK/dev.raw" bs=1M iflag=direct status=none
dq_step "the device holds every write" cmp -n $((NBLK * BLK)) "$WORK/dev.raw" "$pat"
dq_step "the backup checks clean" dq_check_clean "$WORK/b1.qcow2"
backup_content() {
	qemu-img convert -O raw "$WORK/b1.qcow2" "$WORK/b1.raw" &&
	dq_prefix_of_pattern "$WORK/b1.raw" "backup" &&
	qemu-io -f raw -c "read -P 0x11 32M 8M" "$WORK/b1.raw" | grep -q "read 8388608"
}
dq_step "the backup holds a prefix of the writes and the old data" backup_content
failed_backup() {
	qcow2-dm backup "$dname" "$WORK/nodir/b2.qcow2" && { echo "succeeded"; return 1; }
	single_image && nothing_left && test ! -e "$WORK/nodir/b2.qcow2" &&
	cmp "$DEV" "$WORK/dev.raw"
}
dq_step "a failed backup leaves the device as it was, nothing behind" failed_backup
dq_step "refused: OUT exists" sh -c "! qcow2-dm backup $dname $WORK/b1.qcow2"
dq_detach "$dname" || ktap_print "detach failed"
dq_step "the image checks clean and equals the device" \
	sh -c "qemu-img convert -O raw $disk $WORK/disk.raw && cmp $WORK/disk.raw $WORK/dev.raw && qemu-img check -q $disk"
ro_backup() {
	dq_attach "$disk" "$dname" --ro &&
	qcow2-dm backup "$dname" "$WORK/b3.raw" --format raw &&
	cmp "$WORK/b3.raw" "$WORK/dev.raw"
	local rc=$?
	dq_detach "$dname"
	return $rc
}
dq_step "a read-only device is copied as it is, raw" ro_backup
dq_step "backup --help" sh -c "qcow2-dm backup --help | grep -q 'usage: qcow2-dm backup'"
ktap_finish
