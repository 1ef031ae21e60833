#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Owner exit mid-I/O: kill -9 the client while every queue has requests in
# flight. The process must go away promptly (no hang in release), the same
# backend must serve a new device, and nothing may stay referenced: the
# module unloads and brd (whose disks the device had open) unloads too.
. "$(dirname "$0")/common.sh"

ktap_header
ktap_plan 6
setup_brd && setup_tmpfs_file || ktap_print "setup failed"
have_vhost_blk || ktap_print "/dev/vhost-blk is missing: every case fails"

mods=$TOP/build/$KREL/modules

kill_mid_io() {
	local b=$1 i pid
	for i in 1 2 3; do
		"$VBLK" verify "$b" --queues 4 --workers 2 --depth 32 --passes 0 \
			--quiet --size 16M &
		pid=$!
		sleep 2
		if ! kill -0 $pid 2>/dev/null; then
			echo "round $i: the verify loop ended early"; wait $pid; return 1
		fi
		kill -9 $pid
		if ! wait_gone $pid 30; then
			echo "round $i: killed owner still there after 30s"
			ps -o pid,stat,wchan:32,comm -p $pid
			return 1
		fi
		wait $pid 2>/dev/null || true
	done
	return 0
}

ktap_run "kill -9 mid-I/O on brd, 3 times" kill_mid_io /dev/ram0
ktap_run "kill -9 mid-I/O on a tmpfs file, 3 times" kill_mid_io "$TMPFS_FILE"
ktap_run "brd serves a new device afterwards" \
	"$VBLK" verify /dev/ram0 --queues 4 --size 8M
ktap_run "the file serves a new device afterwards" \
	"$VBLK" verify "$TMPFS_FILE" --queues 2 --size 8M

no_vhost_threads() {
	local t
	t=$(ps -e -o comm= | grep -E '^vhost-|^vhost_blk|^vblk' || true)
	[ -z "$t" ] || { echo "threads left: $t"; return 1; }
}
ktap_run "no vhost worker threads left" no_vhost_threads

unload_all() {
	rmmod vhost_blk || return 1
	rmmod brd || { echo "brd still held"; insmod "$mods/vhost_blk.ko"; return 1; }
	insmod "$mods/vhost_blk.ko" && [ -c /dev/vhost-blk ]
}
ktap_run "vhost_blk and brd unload: no reference leaked" unload_all
ktap_finish
