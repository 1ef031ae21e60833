#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The same deterministic stream of writes and write-zeroes (pattern_io gen)
# goes to the device and to a raw reference file; after detach the image
# must `qemu-img compare` equal to the reference and `qemu-img check` clean.
# Covers the allocation paths of every layout: v2, v3, small and large
# clusters, 1-bit and 64-bit refcounts (new refcount blocks), extended L2,
# preallocated images, images with data already in them.
. "$(dirname "$0")/lib.sh"

PIO=$(dirname "$0")/pattern_io
[ -x "$PIO" ] || ktap_skip_all "pattern_io not built"
dq_ext4_dir || ktap_skip_all "no RAM disk for ext4"
SIZE=$((48 << 20))

run() {			# run DIR SEED OPS MAXKB QEMU-IMG-OPTS [PREFILL]
	local dir=$1 seed=$2 ops=$3 maxkb=$4 opts=$5 prefill=${6:-} name rc=0
	local img=$dir/cmp.qcow2 ref=$dir/cmp.raw
	rm -f "$img" "$ref"
	qemu-img create -q -f qcow2 -o "$opts" "$img" $SIZE || return 1
	qemu-img create -q -f raw "$ref" $SIZE || return 1
	if [ -n "$prefill" ]; then
		qemu-io -c "$prefill" "$img" >/dev/null &&
		qemu-io -f raw -c "$prefill" "$ref" >/dev/null || return 1
	fi
	name=$(dq_name)
	dq_attach "$img" "$name" || return 1
	"$PIO" gen "$DEV" "$seed" "$ops" "$maxkb" || rc=1
	"$PIO" gen "$ref" "$seed" "$ops" "$maxkb" || rc=1
	# the device reads back what was written, before and after detach
	cmp "$DEV" "$ref" || rc=1
	dq_detach "$name" || return 1
	dq_check_clean "$img" || rc=1
	qemu-img compare -f qcow2 -F raw "$img" "$ref" || rc=1
	rm -f "$img" "$ref"
	return $rc
}

E=$EXT4_DIR T=$WORK
ktap_header
ktap_plan 10
ktap_run "v3 64k clusters, ext4"          run "$E" 1 600 1024 cluster_size=65536
ktap_run "v2 64k clusters, ext4"          run "$E" 2 400 256 compat=0.10,cluster_size=65536
ktap_run "v3 512-byte clusters, tmpfs"    run "$T" 3 400 64 cluster_size=512
ktap_run "v3 4k clusters, refcount_bits=1, ext4" run "$E" 4 800 64 cluster_size=4096,refcount_bits=1
ktap_run "v3 4k clusters, refcount_bits=64, tmpfs" run "$T" 5 400 64 cluster_size=4096,refcount_bits=64
ktap_run "v3 2M clusters, ext4"           run "$E" 6 200 1024 cluster_size=2097152
ktap_run "extended L2, 64k clusters, ext4" run "$E" 7 600 16 extended_l2=on,cluster_size=65536
ktap_run "preallocation=metadata, tmpfs"  run "$T" 8 400 128 preallocation=metadata
ktap_run "preallocation=falloc, ext4"     run "$E" 9 400 128 preallocation=falloc
ktap_run "over existing data, ext4"       run "$E" 10 400 128 cluster_size=65536 \
	"write -P 0x3c 0 40M"
ktap_finish
