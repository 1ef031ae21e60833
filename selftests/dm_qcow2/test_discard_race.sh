#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Discards racing writes on the same clusters, with flushes in between,
# while fio verify allocates clusters elsewhere (reusing the ones the
# discards free): a write that was in flight to a cluster when it was
# discarded must never land in that cluster after it was punched or handed
# to other data. The verified region must read back intact, before and
# after re-attach, and the image must be clean. Run on tmpfs (buffered,
# synchronous path) and on ext4 (direct I/O, asynchronous kiocbs). The
# flushes that free the discarded clusters must not hold the per-image
# lock (they wait for the racing writes without it).
. "$(dirname "$0")/lib.sh"

SIZE=$((64 << 20))
RUNTIME=${DISCARD_RACE_RUNTIME:-12}

race() {		# race DIR CLUSTER
	local img=$1/race.qcow2 name rc=0 common verify fl lfl
	rm -f "$img"
	qemu-img create -q -f qcow2 -o cluster_size=$2 "$img" $SIZE || return 1
	# region A, [0, 16M): 64 KiB writes with a flush every 4 of them
	# and discards of the same clusters, for RUNTIME seconds;
	# region B, [16M, 40M): allocating writes, then verify, meanwhile.
	common=(--filename=PLACEHOLDER --direct=1)
	verify=(--name=verify --ioengine=libaio --iodepth=16 --rw=randwrite
		--bsrange=4k-64k --offset=16M --size=24M --verify=crc32c
		--verify_fatal=1 --verify_state_save=0)
	name=$(dq_name)
	dq_attach "$img" "$name" || return 1
	common[0]=--filename=$DEV
	fio "${common[@]}" \
		--name=churn --ioengine=libaio --iodepth=8 --rw=randwrite \
		--bs=64k --offset=0 --size=16M --fsync=4 --time_based \
		--runtime="$RUNTIME" --randrepeat=0 --norandommap \
		--name=trim --ioengine=psync --numjobs=2 --rw=randtrim \
		--bs=64k --offset=0 --size=16M --time_based --runtime="$RUNTIME" \
		--randrepeat=0 --norandommap \
		"${verify[@]}" >"$WORK/fio.out" 2>&1 || { tail -n 40 "$WORK/fio.out"; rc=1; }
	grep -E '^ +(write|trim|read):' "$WORK/fio.out" | sed 's/^ */  /'
	if [ "$DQ_STANDIN" != nbd ]; then
		# the cache holds every L2 table: no flush here has a reason
		# to hold the per-image lock, those that free clusters included
		read -r fl lfl <<< "$(dq_flush_counts "$name")"
		echo "  flushes ${fl:-?}, holding the per-image lock ${lfl:-?}"
		[ "${fl:-0}" -gt 0 ] && [ "${lfl:-1}" = 0 ] ||
			{ echo "a flush held the per-image lock"; rc=1; }
	fi
	dq_detach "$name" || return 1
	dq_check_clean "$img" || rc=1
	dq_attach "$img" "$name" || return 1
	fio --filename="$DEV" --direct=1 "${verify[@]}" --verify_only \
		>"$WORK/fio.out" 2>&1 ||
		{ tail -n 20 "$WORK/fio.out"; echo "data lost across detach"; rc=1; }
	dq_detach "$name" || rc=1
	return $rc
}

ktap_header
ktap_plan 3
dq_ext4_dir || ktap_print "no RAM disk for ext4"
ktap_run "tmpfs, 64k clusters: discards racing writes, verify elsewhere" \
	race "$WORK" 65536
ktap_run "ext4, 64k clusters: discards racing writes, verify elsewhere" \
	race "$EXT4_DIR" 65536
ktap_run "ext4, 4k clusters: discards racing writes, verify elsewhere" \
	race "$EXT4_DIR" 4096
ktap_finish
