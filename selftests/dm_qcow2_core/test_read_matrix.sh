#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Every kind of image qemu-img/qemu-io make reads back through dm-qcow2
# exactly as `qemu-img convert -O raw` gives it: versions 2 and 3, cluster
# sizes 512 B to 2 MiB, refcount orders 0 to 6, extended L2, compressed
# clusters (deflate and zstd), zero clusters (also preallocated ones),
# preallocation modes, internal snapshots, backing chains.
# Run as test_read_matrix.sh: uncompressed formats; as test_read_more.sh
# (a link): compressed images, snapshots and backing chains.
. "$(dirname "$0")/lib.sh"
need qemu-img qemu-io dmsetup python3 cmp

SIZE=4M
# deterministic, partly compressible content for the converted images
python3 - "$WORK/src.raw" <<'PY'
import random, sys
r = random.Random(42)
out = bytearray()
out += b"".join(b"line %08d of the reference text\n" % i for i in range(30000))
out += bytes(1 << 20)
out += r.randbytes(512 << 10)
out += bytes([0x5a]) * (700 << 10)
out += r.randbytes(3000)
out += b"".join(b"%d," % (i * i) for i in range(100000))
out = out[:4 << 20]
out += bytes((4 << 20) - len(out))
open(sys.argv[1], "wb").write(out)
PY

io_image() {	# io_image IMG CREATE_OPTS: pattern, zero and discard writes
	qemu-img create -q -f qcow2 -o "$2" "$1" $SIZE &&
	qemu-io -f qcow2 -c 'write -P 0x11 0 64k' -c 'write -P 0x22 100k 5k' \
		-c 'write -P 0x33 1M 1M' -c 'write -z 1536k 256k' \
		-c 'write -z 2560k 64k' -c 'discard 1280k 64k' \
		-c 'write -P 0x55 3M 33k' -c 'write -P 0x66 3071k 2k' \
		"$1" >/dev/null
}

conv_image() {	# conv_image IMG CREATE_OPTS [-c]
	qemu-img convert -f raw -O qcow2 $3 -o "$2" "$WORK/src.raw" "$1"
}

# read_case NAME OPT_ARGS...: attach $W/img.qcow2 as $DEV, compare, detach
read_case() {
	local name=$1 why=
	shift
	qemu-img convert -O raw "$W/img.qcow2" "$W/ref.raw" || why="convert failed"
	if [ -z "$why" ] && ! attach $DEV "$W/img.qcow2" "$@"; then
		why="attach refused: $(dmesg | tail -2)"
	elif [ -z "$why" ]; then
		cmp /dev/mapper/$DEV "$W/ref.raw" >"$W/cmp.out" 2>&1 ||
			why="content differs: $(head -1 "$W/cmp.out")"
		grep -q ' errors 0 ' <(dmsetup status $DEV) ||
			why="${why}errors counted: $(dmsetup status $DEV)"
		detach $DEV || why="${why} detach failed"
		qemu-img check -q "$W/img.qcow2" || why="${why} check not clean"
	fi
	if [ -z "$why" ]; then ktap_ok "$name"; else ktap_fail "$name" "$why"; fi
}

# The matrix cases run two at a time (ktap_par), each in its own slot.
io_case() {	# io_case NAME CREATE_OPTS [OPT ARGS]
	local name=$1 opts=$2
	shift 2
	case_slot
	rm -f "$W/img.qcow2"
	if io_image "$W/img.qcow2" "$opts"; then
		read_case "$name" "$@"
	else
		ktap_skip "$name" "qemu-img cannot make it"
	fi
}

conv_case() {	# conv_case NAME CREATE_OPTS COMPRESS(-c or "") [OPT ARGS]
	local name=$1 opts=$2 c=$3
	shift 3
	case_slot
	rm -f "$W/img.qcow2"
	if conv_image "$W/img.qcow2" "$opts" "$c"; then
		read_case "$name" "$@"
	else
		ktap_skip "$name" "qemu-img cannot make it"
	fi
}

IO_CASES=(
	"v2 512B clusters|compat=0.10,cluster_size=512"
	"v2 4k clusters|compat=0.10,cluster_size=4096"
	"v2 64k clusters|compat=0.10,cluster_size=65536"
	"v2 2M clusters|compat=0.10,cluster_size=2097152"
	"v3 512B clusters|cluster_size=512"
	"v3 4k clusters|cluster_size=4096"
	"v3 64k clusters|cluster_size=65536"
	"v3 2M clusters|cluster_size=2097152"
	"v3 refcount_bits=1|refcount_bits=1"
	"v3 refcount_bits=2|refcount_bits=2"
	"v3 refcount_bits=4|refcount_bits=4"
	"v3 refcount_bits=8|refcount_bits=8"
	"v3 refcount_bits=32|refcount_bits=32"
	"v3 refcount_bits=64|refcount_bits=64"
	"v3 512B refcount_bits=1|cluster_size=512,refcount_bits=1"
	"extended L2 16k|extended_l2=on,cluster_size=16384"
	"extended L2 64k|extended_l2=on,cluster_size=65536"
	"extended L2 2M|extended_l2=on,cluster_size=2097152"
	"preallocation=metadata|preallocation=metadata"
	"preallocation=falloc|preallocation=falloc"
	"preallocation=full 4k|preallocation=full,cluster_size=4096"
	"extended L2 preallocation=metadata|extended_l2=on,preallocation=metadata"
)
CONV_CASES=(
	"deflate v2 64k|compat=0.10|-c"
	"deflate v3 512B|cluster_size=512|-c"
	"deflate v3 4k|cluster_size=4096|-c"
	"deflate v3 64k|cluster_size=65536|-c"
	"deflate v3 2M|cluster_size=2097152|-c"
	"zstd 512B|compression_type=zstd,cluster_size=512|-c"
	"zstd 64k|compression_type=zstd|-c"
	"zstd 2M|compression_type=zstd,cluster_size=2097152|-c"
	"zstd extended L2|compression_type=zstd,extended_l2=on|-c"
	"converted, uncompressed, 1M clusters|cluster_size=1048576|"
)

ktap_header
if [ "$(basename "$0")" = test_read_matrix.sh ]; then
	ktap_plan ${#IO_CASES[@]}
	i=0
	for c in "${IO_CASES[@]}"; do
		# every other case attached read-only
		if [ $((i++ % 2)) -eq 1 ]; then
			ktap_par io_case "${c%%|*} (ro)" "${c#*|}" ro
		else
			ktap_par io_case "${c%%|*}" "${c#*|}"
		fi
	done
	ktap_par_wait
	ktap_finish
fi

ktap_plan $(( ${#CONV_CASES[@]} + 4 ))
for c in "${CONV_CASES[@]}"; do
	IFS='|' read -r name opts comp <<<"$c"
	ktap_par conv_case "$name" "$opts" "$comp" ro
done
ktap_par_wait

# preallocated zero clusters: allocated clusters carrying the zero flag
rm -f "$WORK/img.qcow2"
qemu-img create -q -f qcow2 -o preallocation=metadata "$WORK/img.qcow2" $SIZE
qemu-io -c 'write -P 0x77 0 3M' -c 'write -z 1M 1M' -c 'write -P 0x78 3M 4k' \
	"$WORK/img.qcow2" >/dev/null
read_case "preallocated zero clusters" ro

# internal snapshot: the active layer reads back, shared clusters included
rm -f "$WORK/img.qcow2"
io_image "$WORK/img.qcow2" "cluster_size=65536"
qemu-img snapshot -c snap1 "$WORK/img.qcow2"
qemu-io -c 'write -P 0x99 1M 64k' -c 'write -P 0x9a 3M 4k' "$WORK/img.qcow2" >/dev/null
read_case "internal snapshot, active layer" ro

# backing chain: raw <- qcow2 (64k) <- qcow2 (4k, top)
rm -f "$WORK"/mid.qcow2 "$WORK/img.qcow2"
cp "$WORK/src.raw" "$WORK/base.raw"
qemu-img create -q -f qcow2 -b "$WORK/base.raw" -F raw "$WORK/mid.qcow2"
qemu-io -c 'write -P 0xa1 512k 100k' -c 'write -z 3M 64k' "$WORK/mid.qcow2" >/dev/null
qemu-img create -q -f qcow2 -o cluster_size=4096 -b "$WORK/mid.qcow2" -F qcow2 "$WORK/img.qcow2"
qemu-io -c 'write -P 0xa2 520k 7k' -c 'write -P 0xa3 2M 1k' "$WORK/img.qcow2" >/dev/null
read_case "backing chain qcow2 -> qcow2 -> raw" ro backing qcow2 "$WORK/mid.qcow2" backing raw "$WORK/base.raw"

# a backing chain without its backing arguments is refused
if attach dmq "$WORK/img.qcow2" ro 2>/dev/null; then
	detach dmq
	ktap_fail "image with a backing file but no backing args refused"
else
	ktap_ok "image with a backing file but no backing args refused"
fi
ktap_finish
