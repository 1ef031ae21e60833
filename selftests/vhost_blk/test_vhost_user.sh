#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The same client, over vhost-user to qemu-storage-daemon: every request
# type, pattern verify on 1 and 4 queues, fio verify at iodepth 128, a
# killed client (the daemon must serve the next one), and a cross-check
# that the kernel path and the vhost-user path see the same bytes.
. "$(dirname "$0")/common.sh"

ktap_header
ktap_plan 12
setup_brd && setup_tmpfs_file || ktap_print "setup failed"
command -v qemu-storage-daemon >/dev/null || ktap_print "qemu-storage-daemon missing"

SOCK=$WORK/vu.sock
data=$WORK/vu-data.bin
head -c $((1 << 20)) /dev/urandom >"$data"
trap qsd_stop EXIT

qsd_start_raw "$SOCK" 4 "$TMPFS_FILE" || ktap_print "qemu-storage-daemon did not start"

rw() {
	"$VBLK" write "$SOCK" 4096 <"$data" &&
	"$VBLK" read "$SOCK" 4096 1048576 | cmp - "$data" &&
	dd if="$TMPFS_FILE" bs=4096 skip=1 count=256 status=none | cmp - "$data"
}
ktap_run "vhost-user: write, read back, data on the file" rw
ktap_run "vhost-user: info, 4 queues offered" \
	bash -c "\"$VBLK\" info --vhost-user \"$SOCK\" | grep -q '^queues: *1 of 4'"
ktap_run "vhost-user: GET_ID" "$VBLK" id "$SOCK"
ktap_run "vhost-user: flush" "$VBLK" flush "$SOCK"
wz() {
	"$VBLK" write-zeroes "$SOCK" 4096 65536 &&
	"$VBLK" read "$SOCK" 4096 65536 | cmp - <(head -c 65536 /dev/zero) &&
	"$VBLK" discard "$SOCK" 1048576 1048576
}
ktap_run "vhost-user: write-zeroes and discard" wz
past_end() {
	local rc
	"$VBLK" read "$SOCK" $FILE_SIZE 512 >/dev/null 2>&1; rc=$?
	[ $rc -eq $EX_IOERR ] || { echo "exit $rc, expected $EX_IOERR"; return 1; }
}
ktap_run "vhost-user: read past the end is IOERR" past_end
ktap_run "vhost-user: verify, 1 queue" "$VBLK" verify "$SOCK" --size 16M
ktap_run "vhost-user: verify, 4 queues, no indirect / event idx" \
	"$VBLK" verify "$SOCK" --queues 4 --no-indirect --no-event-idx --size 16M
ktap_run "vhost-user: fio verify crc32c, iodepth 128, 4 jobs on 4 queues" \
	fio_vblk --name=vu --filename="$SOCK" --numjobs=4 --vblk_queues=4 \
	--iodepth=128 --rw=randwrite --bsrange=4k-64k --size=6M --offset_increment=6M

# QEMU 7.2's vhost-user-blk export can abort when a client vanishes with
# requests in flight (fixed upstream in 8.0 by "block/export: Fix
# vhost-user-blk shutdown with requests in flight"). That is the daemon's
# bug, not the client's: when it happens the daemon's message is shown
# and a fresh daemon on the same file must serve the next client, which
# proves the killed client left the data path usable.
killed_client() {
	local pid
	"$VBLK" verify "$SOCK" --queues 4 --passes 0 --quiet --size 8M &
	pid=$!
	sleep 2
	kill -9 $pid
	wait_gone $pid 20 || { echo "client did not exit"; return 1; }
	sleep 0.5
	if ! kill -0 "$QSD_PID" 2>/dev/null; then
		echo "qemu-storage-daemon exited after the client was killed" \
		     "(QEMU 7.2 bug); its log:"
		tail -n 5 "$WORK/qsd.log"
		wait "$QSD_PID" 2>/dev/null
		QSD_PID=
		qsd_start_raw "$SOCK" 4 "$TMPFS_FILE" ||
			{ echo "qemu-storage-daemon did not restart"; return 1; }
		# ktap_run runs this in a subshell: tell the parent
		echo "$QSD_PID" >"$WORK/qsd-restarted.pid"
	fi
	"$VBLK" verify "$SOCK" --queues 2 --size 4M
}
ktap_run "vhost-user: client killed mid-I/O, the next client is served" killed_client
qsd_stop
if [ -s "$WORK/qsd-restarted.pid" ]; then
	kill "$(cat "$WORK/qsd-restarted.pid")" 2>/dev/null
	wait_gone "$(cat "$WORK/qsd-restarted.pid")" 10
fi

# Same bytes through both paths: written over vhost-user, checked through
# /dev/vhost-blk on the same backend, and the other way round.
cross() {
	local from=$1 to=$2 b=$3 seed=$4
	qsd_start_raw "$SOCK" 2 "$b" || return 1
	if [ "$from" = user ]; then
		"$VBLK" verify --vhost-user "$SOCK" --queues 2 --write-only --seed $seed --size 16M || return 1
		qsd_stop
		"$VBLK" verify "$b" --kernel --queues 2 --check-only --seed $seed --size 16M
	else
		qsd_stop
		"$VBLK" verify "$b" --kernel --queues 2 --write-only --seed $seed --size 16M || return 1
		qsd_start_raw "$SOCK" 2 "$b" || return 1
		"$VBLK" verify --vhost-user "$SOCK" --queues 2 --check-only --seed $seed --size 16M
		qsd_stop
	fi
}
ktap_run "brd: written over vhost-user, read back through vhost-blk" \
	cross user kernel /dev/ram1 31
ktap_run "brd: written through vhost-blk, read back over vhost-user" \
	cross kernel user /dev/ram1 32
ktap_finish
