#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Writes through the device checked by fio verify=crc32c: sequential and
# random, 512 B to 1 MiB, depth 1 to 128, ranges that straddle clusters,
# on direct-I/O ext4 and on buffered tmpfs. After each job: detach,
# `qemu-img check` clean, re-attach, the data verifies again (fio
# --verify_only), detach, still clean.
. "$(dirname "$0")/lib.sh"

command -v fio >/dev/null || ktap_skip_all "fio not installed"
dq_ext4_dir || ktap_skip_all "no RAM disk for ext4"

SIZE=$((64 << 20))

fio_job() {		# fio_job DEV EXTRA... (write + verify)
	local dev=$1
	shift
	fio --name=dmq --filename="$dev" --direct=1 --ioengine=libaio \
		--verify=crc32c --verify_fatal=1 --do_verify=1 --verify_state_save=0 \
		--randrepeat=1 --output-format=terse --terse-version=3 "$@" \
		>"$WORK/fio.out" 2>&1 || { cat "$WORK/fio.out"; return 1; }
}

# job DIR CLUSTER FIO-ARGS...
job() {
	local dir=$1 cs=$2 img name rc=0
	shift 2
	img=$dir/fio-$cs.qcow2
	rm -f "$img"
	qemu-img create -q -f qcow2 -o cluster_size=$cs "$img" $SIZE || return 1
	name=$(dq_name)
	dq_attach "$img" "$name" || return 1
	fio_job "$DEV" "$@" || rc=1
	dq_detach "$name" || return 1
	dq_check_clean "$img" || return 1
	[ $rc = 0 ] || return 1
	dq_attach "$img" "$name" || return 1
	fio_job "$DEV" "$@" --verify_only || { echo "data lost across detach"; rc=1; }
	dq_detach "$name" || rc=1
	dq_check_clean "$img" || rc=1
	rm -f "$img"
	return $rc
}

E=$EXT4_DIR T=$WORK
ktap_header
ktap_plan 7
ktap_run "seq 1M qd4 whole device, 64k clusters, ext4" \
	job "$E" 65536 --rw=write --bs=1M --iodepth=4
ktap_run "rand 4k qd128, 64k clusters, ext4" \
	job "$E" 65536 --rw=randwrite --bs=4k --iodepth=128 --size=16M
ktap_run "rand 512..1M qd32 straddling 64k clusters, ext4" \
	job "$E" 65536 --rw=randwrite --bsrange=512-1M --blockalign=512 \
	--iodepth=32 --offset=$((65536 - 512)) --size=32M
ktap_run "rand 512 qd1, 64k clusters, tmpfs" \
	job "$T" 65536 --rw=randwrite --bs=512 --iodepth=1 --size=1M
ktap_run "rand 12k qd16 straddling 4k clusters, tmpfs" \
	job "$T" 4096 --rw=randwrite --bs=12k --iodepth=16 --offset=2048 --size=12M
ktap_run "seq 64k qd8, 512-byte clusters, ext4" \
	job "$E" 512 --rw=write --bs=64k --iodepth=8 --size=8M
ktap_run "rand 4k..256k qd64, 2M clusters, ext4" \
	job "$E" $((2 << 20)) --rw=randwrite --bsrange=4k-256k --iodepth=64 --size=24M
ktap_finish
