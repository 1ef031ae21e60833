#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Parallel writers: threads writing interleaved sectors of the same
# clusters at once (every write allocates or races an allocation), and fio
# jobs on disjoint regions; all data verified, again after re-attach; the
# image clean.
. "$(dirname "$0")/lib.sh"

PIO=$(dirname "$0")/pattern_io
[ -x "$PIO" ] || ktap_skip_all "pattern_io not built"
SIZE=$((64 << 20))

same_clusters() {	# same_clusters CLUSTER THREADS MB
	local img=$WORK/p.qcow2 name rc=0
	rm -f "$img"
	qemu-img create -q -f qcow2 -o cluster_size=$1 "$img" $SIZE || return 1
	name=$(dq_name)
	dq_attach "$img" "$name" || return 1
	"$PIO" stripe "$DEV" "$2" "$3" || rc=1
	dq_detach "$name" || return 1
	dq_check_clean "$img" || rc=1
	dq_attach "$img" "$name" || return 1
	"$PIO" verify-stripe "$DEV" "$2" "$3" || { echo "data lost across detach"; rc=1; }
	dq_detach "$name" || rc=1
	return $rc
}

different_clusters() {
	local img=$WORK/q.qcow2 name rc=0 args
	rm -f "$img"
	qemu-img create -q -f qcow2 -o cluster_size=65536 "$img" $SIZE || return 1
	args=(--name=par --direct=1 --ioengine=libaio --rw=randwrite --bs=4k
	      --iodepth=16 --numjobs=4 --size=8M --offset_increment=16M
	      --verify=crc32c --verify_fatal=1 --verify_state_save=0 --randrepeat=1
	      --group_reporting)
	name=$(dq_name)
	dq_attach "$img" "$name" || return 1
	fio --filename="$DEV" "${args[@]}" >"$WORK/fio.out" 2>&1 || { cat "$WORK/fio.out"; rc=1; }
	dq_detach "$name" || return 1
	dq_check_clean "$img" || rc=1
	dq_attach "$img" "$name" || return 1
	fio --filename="$DEV" "${args[@]}" --verify_only >"$WORK/fio.out" 2>&1 ||
		{ cat "$WORK/fio.out"; echo "data lost across detach"; rc=1; }
	dq_detach "$name" || rc=1
	return $rc
}

ktap_header
ktap_plan 3
ktap_run "8 threads, same 64k clusters" same_clusters 65536 8 4
ktap_run "4 threads, same 4k clusters" same_clusters 4096 4 2
ktap_run "4 fio jobs, different clusters" different_clusters
ktap_finish
