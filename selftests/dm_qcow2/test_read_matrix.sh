#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Read matrix: images made by qemu-img/qemu-io in every layout qemu-img can
# produce, with known data at known offsets (some straddling clusters);
# attached through qcow2-dm, the device must read back byte for byte what
# `qemu-img convert -O raw` gives, and the image must stay clean.
. "$(dirname "$0")/lib.sh"

SIZE=$((32 << 20))
K=1024 M=$((1 << 20))

# Known data: aligned, straddling, unaligned, at the end; zeroes over data
# (plain and with unmap) and over nothing.
fill() {
	local img=$1 cs=$2 fmt=${3:-qcow2} zu=${4:--u}
	qemu-io -f "$fmt" \
		-c "write -P 0x11 0 4k" \
		-c "write -P 0x22 $((cs - 512)) 1k" \
		-c "write -P 0x33 $((3 * cs + 1000)) 3000" \
		-c "write -P 0x44 $((1 * M)) 300k" \
		-c "write -P 0x66 $((8 * M)) $((1 * M))" \
		-c "write -z $zu $((8 * M + 256 * K)) 256k" \
		-c "write -z $((12 * M)) 128k" \
		-c "write -P 0x55 $((SIZE - 64 * K)) 64k" \
		"$img" >/dev/null
}

mk() {			# mk IMG CLUSTER OPTS...
	local img=$1 cs=$2
	shift 2
	qemu-img create -q -f qcow2 -o "cluster_size=$cs${1:+,$1}" "$img" $SIZE
}

# Each case builds $img; echo nothing on success.
case_v2_64k()     { mk "$img" 65536 compat=0.10 && fill "$img" 65536 qcow2 ""; }
case_v2_4k()      { mk "$img" 4096 compat=0.10 && fill "$img" 4096 qcow2 ""; }
case_v3_512()     { mk "$img" 512 compat=1.1 && fill "$img" 512; }
case_v3_4k()      { mk "$img" 4096 compat=1.1 && fill "$img" 4096; }
case_v3_64k()     { mk "$img" 65536 compat=1.1 && fill "$img" 65536; }
case_v3_2M()      { mk "$img" $((2 * M)) compat=1.1 && fill "$img" $((2 * M)); }
case_v3_64k_zero_keep() { mk "$img" 65536 && fill "$img" 65536 qcow2 ""; }
case_refcount() { mk "$img" 4096 "refcount_bits=$1" && fill "$img" 4096; }
case_refcount_1()  { case_refcount 1; }
case_refcount_2()  { case_refcount 2; }
case_refcount_4()  { case_refcount 4; }
case_refcount_8()  { case_refcount 8; }
case_refcount_16() { case_refcount 16; }
case_refcount_32() { case_refcount 32; }
case_refcount_64() { case_refcount 64; }
case_extl2_64k()  { mk "$img" 65536 extended_l2=on && fill "$img" 65536; }
case_extl2_32k()  { mk "$img" 32768 extended_l2=on && fill "$img" 32768 qcow2 ""; }
case_prealloc_metadata() { mk "$img" 65536 preallocation=metadata && fill "$img" 65536 qcow2 ""; }
case_prealloc_falloc()   { mk "$img" 65536 preallocation=falloc && fill "$img" 65536 qcow2 ""; }
case_prealloc_full()     { mk "$img" 65536 preallocation=full && fill "$img" 65536; }

compressed() {		# compressed TYPE CLUSTER
	local src=$WORK/src.raw
	qemu-img create -q -f raw "$src" $SIZE && fill "$src" "$2" raw "" &&
	qemu-io -f raw -c "write -P 0x77 $((20 * M)) 3M" "$src" >/dev/null &&
	qemu-img convert -c -O qcow2 -o "compression_type=$1,cluster_size=$2" \
		"$src" "$img" &&
	# a normal cluster among the compressed ones
	qemu-io -c "write -P 0x78 $((20 * M + 64 * K)) 4k" "$img" >/dev/null
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
	qemu-io -c "write -P 0x8a $((16 * M)) 128k" "$img" >/dev/null
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

cases=$(declare -F | awk '$3 ~ /^case_/ { print $3 }' | grep -v '^case_refcount$')
ktap_header
ktap_plan "$(echo "$cases" | wc -l)"

one() {
	local name=$1 img=$WORK/$1.qcow2 ref=$WORK/$1.raw dev rc=0
	"case_$name" || { echo "making the image failed"; return 1; }
	qemu-img convert -O raw "$img" "$ref" || return 1
	dq_attach "$img" "$(dq_name)" || return 1
	dev=$DEV
	dq_cmp_raw "$dev" "$ref" || rc=1
	# the same through O_DIRECT reads in odd sizes
	if [ $rc = 0 ] && ! dd if="$dev" bs=12k iflag=direct status=none | cmp - "$ref"; then
		echo "direct reads differ"; rc=1
	fi
	dq_detach "${dq_names[-1]}" || rc=1
	dq_check_clean "$img" || rc=1
	rm -f "$ref"
	return $rc
}

for c in $cases; do
	ktap_run "read ${c#case_}" one "${c#case_}"
done
ktap_finish
