#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Read matrix, features: compressed clusters (deflate, zstd), extended L2,
# preallocation=metadata|falloc|full, internal snapshots leaving shared
# clusters, raw and qcow2 backing chains (relative names, probed format,
# zero clusters hiding backing data). Through qcow2-dm the device must read
# back what `qemu-img convert -O raw` gives. (The layouts alone, versions,
# cluster sizes and refcount widths, are dm_qcow2_core/test_read_matrix.sh.)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/read_common.sh"

case_extl2_64k()  { mk "$img" 65536 extended_l2=on && fill "$img" 65536; }
case_extl2_32k()  { mk "$img" 32768 extended_l2=on && fill "$img" 32768 qcow2 ""; }
case_prealloc_metadata() { mk "$img" 65536 preallocation=metadata && fill "$img" 65536 qcow2 ""; }
case_prealloc_falloc()   { mk "$img" 65536 preallocation=falloc && fill "$img" 65536 qcow2 ""; }
case_prealloc_full()     { mk "$img" 65536 preallocation=full && fill "$img" 65536; }

compressed() {		# compressed TYPE CLUSTER
	local src=$WORK/src.raw
	qemu-img create -q -f raw "$src" $SIZE && fill "$src" "$2" raw "" &&
	qemu-io -f raw -c "write -P 0x77 $((13 * M)) 2M" "$src" >/dev/null &&
	qemu-img convert -c -O qcow2 -o "compression_type=$1,cluster_size=$2" \
		"$src" "$img" &&
	# a normal cluster among the compressed ones
	qemu-io -c "write -P 0x78 $((13 * M + 64 * K)) 4k" "$img" >/dev/null ||
		{ rm -f "$src"; return 1; }
	rm -f "$src"
}

case_compressed_deflate()    { compressed zlib 65536; }
case_compressed_deflate_4k() { compressed zlib 4096; }
case_compressed_zstd()       { compressed zstd 65536; }
case_compressed_zstd_2M()    { compressed zstd $((2 * M)); }

case_snapshots() {
	mk "$img" 65536 && fill "$img" 65536 &&
	qemu-img snapshot -c s1 "$img" &&
	qemu-io -c "write -P 0x88 0 8k" -c "write -P 0x89 $((1 * M + 4 * K)) 64k" \
		-c "write -z $((8 * M)) 64k" "$img" >/dev/null &&
	qemu-img snapshot -c s2 "$img" &&
	qemu-io -c "write -P 0x8a $((14 * M)) 128k" "$img" >/dev/null
}

case_backing_raw() {
	local base=$WORK/base.raw
	qemu-img create -q -f raw "$base" $SIZE && fill "$base" 65536 raw "" &&
	qemu-img create -q -f qcow2 -b "$base" -F raw "$img" &&
	qemu-io -c "write -P 0x99 $((1 * M + 512)) 8k" -c "write -z $((8 * M)) 64k" \
		"$img" >/dev/null
}

# qcow2 over qcow2 over raw, names relative, the top one without a backing
# format extension (probed); zero clusters in the top hide lower data.
case_backing_chain() {
	mkdir -p "$WORK/chain" &&
	qemu-img create -q -f raw "$WORK/chain/base.raw" $SIZE &&
	fill "$WORK/chain/base.raw" 65536 raw "" &&
	qemu-img create -q -f qcow2 -b base.raw -F raw -o cluster_size=4096 \
		"$WORK/chain/mid.qcow2" &&
	qemu-io -c "write -P 0xa1 $((1 * M + 64 * K)) 64k" \
		"$WORK/chain/mid.qcow2" >/dev/null &&
	qemu-img create -q -f qcow2 -b chain/mid.qcow2 -F qcow2 "$img" &&
	python3 "$(dirname "$0")/qcow2_patch.py" drop-backing-fmt "$img" &&
	qemu-io -c "write -P 0xa2 $((1 * M + 96 * K)) 64k" -c "write -z 0 64k" \
		"$img" >/dev/null
}

read_matrix
