#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Every request type through /dev/vhost-blk, on a block device (brd), a raw
# file on tmpfs and a raw file on ext4 on brd; results checked against the
# backend itself.
. "$(dirname "$0")/common.sh"

ktap_header
backends=(/dev/ram0 "$TMPFS_FILE" "$EXT4_FILE")
ktap_plan $((${#backends[@]} * 11))

setup_brd && setup_tmpfs_file && setup_ext4_file ||
	ktap_print "setup failed"
have_vhost_blk || ktap_print "/dev/vhost-blk is missing: every case fails"

data=$WORK/data.bin
out=$WORK/out.bin
head -c $((1 << 20)) /dev/urandom >"$data"

# the range op answers what the device advertised: OK if it has a limit
range_status() {
	local b=$1 what=$2 lim
	lim=$("$VBLK" info "$b" | sed -n "s/^$what: *\([0-9]*\) sectors.*/\1/p")
	[ "${lim:-0}" -gt 0 ] && echo 0 || echo $EX_UNSUPP
}

info_size() { "$VBLK" info "$1" | grep -q "^capacity: *$(($2 / 512)) sectors"; }
rw_back() {
	"$VBLK" write "$1" 1048576 <"$data" &&
	"$VBLK" read "$1" 1048576 1048576 >"$out" && cmp "$data" "$out"
}
on_backend() { read_backend "$1" 1 1 | cmp - "$data"; }
get_id() {
	local id
	id=$("$VBLK" id --serial vblk-serial-1234 "$1") || return 1
	[ "$id" = vblk-serial-1234 ] || { echo "got '$id'"; return 1; }
}
wz_range() {
	"$VBLK" write-zeroes "$1" 1048576 65536 &&
	"$VBLK" read "$1" 1048576 65536 | cmp - <(head -c 65536 /dev/zero) &&
	"$VBLK" read "$1" 1114112 4096 | cmp - <(tail -c +65537 "$data" | head -c 4096)
}
wz_unmap() {
	"$VBLK" write "$1" 2097152 <"$data" &&
	"$VBLK" write-zeroes --unmap "$1" 2097152 1048576 &&
	read_backend "$1" 2 1 | cmp - <(head -c 1048576 /dev/zero)
}
ro_reads() {
	"$VBLK" info --readonly "$1" | grep -q '^read-only: *yes' &&
	"$VBLK" read --readonly "$1" 0 4096 >/dev/null
}

for b in "${backends[@]}"; do
	n=$(basename "$b")
	bytes=$(backend_bytes "$b")
	check "$n: info reports the backend size" info_size "$b" "$bytes"
	check "$n: write then read back 1 MiB" rw_back "$b"
	check "$n: the data is on the backend" on_backend "$b"
	check "$n: GET_ID returns the serial" get_id "$b"
	check "$n: flush" "$VBLK" flush "$b"
	check "$n: write-zeroes zeroes the range" wz_range "$b"
	check "$n: write-zeroes with unmap zeroes the range" wz_unmap "$b"
	want_exit "$n: discard answers as advertised" "$(range_status "$b" discard)" \
		"$VBLK" discard "$b" 2097152 1048576
	want_exit "$n: read at the capacity is IOERR" $EX_IOERR \
		"$VBLK" read "$b" "$bytes" 512
	want_exit "$n: write to a read-only backend is IOERR" $EX_IOERR \
		"$VBLK" write --readonly "$b" 0 <"$data"
	check "$n: read-only backend reads and says read-only" ro_reads "$b"
done
teardown_ext4
ktap_finish
