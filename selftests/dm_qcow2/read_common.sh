# SPDX-License-Identifier: GPL-2.0
# Shared part of the read matrix tests (sourced): known data, image
# makers, and the check of one case: the device reads back byte for byte
# what `qemu-img convert -O raw` gives, also with O_DIRECT reads of odd
# sizes, and the image stays clean after detach.
SIZE=$((16 << 20))
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

one() {			# one CASE: make the image, compare, detach, check
	local name=$1 img=$WORK/$1.qcow2 ref=$WORK/$1.raw rc=0
	"case_$name" || { echo "making the image failed"; return 1; }
	qemu-img convert -O raw "$img" "$ref" || return 1
	dq_attach "$img" "$(dq_name)" || return 1
	dq_cmp_raw "$DEV" "$ref" || rc=1
	# the same through O_DIRECT reads of an odd size
	if [ $rc = 0 ] && ! dd if="$DEV" bs=12k iflag=direct status=none | cmp - "$ref"; then
		echo "direct reads differ"; rc=1
	fi
	dq_detach "${dq_names[-1]}" || rc=1
	dq_check_clean "$img" || rc=1
	rm -f "$ref"
	return $rc
}

# Run every case_* function defined by the test as one KTAP result each.
read_matrix() {
	local cases c
	cases=$(declare -F | awk '$3 ~ /^case_/ { print $3 }' | grep -v '^case_refcount$')
	ktap_header
	ktap_plan "$(echo "$cases" | wc -l)"
	for c in $cases; do
		ktap_run "read ${c#case_}" one "${c#case_}"
	done
	ktap_finish
}
