#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Pattern verify through /dev/vhost-blk with 1 to 16 queues, several
# worker threads, with and without INDIRECT_DESC / EVENT_IDX, on block and
# file backends, and several devices at once.
. "$(dirname "$0")/common.sh"

ktap_header
ktap_plan 14
setup_brd && setup_ext4_file || ktap_print "setup failed"
have_vhost_blk || ktap_print "/dev/vhost-blk is missing: every case fails"

v() { "$VBLK" verify --timeout 60 "$@"; }

for q in 1 2 4 8 16; do
	ktap_run "brd, $q queue(s)" v /dev/ram0 --queues $q --size 16M --depth 16
done
ktap_run "brd, 8 queues on 2 workers" v /dev/ram0 --queues 8 --workers 2 --size 16M
ktap_run "brd, 16 queues on 4 workers" v /dev/ram0 --queues 16 --workers 4 --size 16M
ktap_run "brd, 4 queues on 16 workers" v /dev/ram0 --queues 4 --workers 16 --size 8M
ktap_run "brd, no INDIRECT_DESC, no EVENT_IDX, depth 64" \
	v /dev/ram0 --queues 4 --no-indirect --no-event-idx --depth 64 --bs 4096 --size 8M
ktap_run "brd, large requests (1 MiB, many segments)" \
	v /dev/ram0 --queues 2 --bs 1M --depth 4 --size 32M
ktap_run "brd, 3 passes with new patterns" v /dev/ram0 --queues 4 --passes 3 --size 8M
ktap_run "ext4 file, 4 queues, 2 workers" v "$EXT4_FILE" --queues 4 --workers 2

# several devices at once: two halves of ram0 and a file, concurrently
concurrent() {
	local pids=() rc=0 p
	v /dev/ram0 --queues 4 --offset 0 --size 16M --seed 11 & pids+=($!)
	v /dev/ram0 --queues 4 --workers 2 --offset 32M --size 16M --seed 12 & pids+=($!)
	v "$EXT4_FILE" --queues 2 --seed 13 & pids+=($!)
	for p in "${pids[@]}"; do wait "$p" || rc=1; done
	# each range still holds its own pattern
	v /dev/ram0 --check-only --offset 0 --size 16M --seed 11 || rc=1
	v /dev/ram0 --check-only --offset 32M --size 16M --seed 12 || rc=1
	return $rc
}
ktap_run "three devices concurrently, patterns intact" concurrent

# a pattern from another seed must be reported as a mismatch (exit 8)
mismatch() {
	local rc
	v /dev/ram0 --write-only --size 1M --seed 21 >/dev/null &&
	{ v /dev/ram0 --check-only --size 1M --seed 22 >/dev/null 2>&1; rc=$?; }
	[ "${rc:-0}" -eq 8 ]
}
ktap_run "verify detects foreign data" mismatch
teardown_ext4
ktap_finish
