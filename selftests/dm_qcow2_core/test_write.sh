#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Writes through dm-qcow2 on many kinds of images: random writes of 512 B
# to 1 MiB (straddling clusters), cluster-aligned discards and write
# zeroes, mirrored on a raw reference. The device reads back the
# reference; after suspend the image checks clean while attached; after
# detach `qemu-img check` finds no errors and no leaks and `qemu-img
# compare` finds the image equal to the reference.
. "$(dirname "$0")/lib.sh"
need qemu-img qemu-io dmsetup python3 cmp

SIZE=4M
cat > "$WORK/mirror.py" <<'PY'
import fcntl, os, random, struct, sys
dev, ref, seed, n, zero_ok = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
cl = int(sys.argv[6])
r = random.Random(seed)
d = os.open(dev, os.O_RDWR)
f = os.open(ref, os.O_RDWR)
size = os.lseek(d, 0, os.SEEK_END)
for i in range(n):
    kind = r.random()
    if zero_ok and kind < 0.1:
        # whole clusters: discard (reads zeros here) or write zeroes
        ncl = r.randint(1, min(4, size // cl))
        off = r.randrange(0, size // cl - ncl + 1) * cl
        ln = ncl * cl
        op = 0x1277 if kind < 0.05 else 0x127f   # BLKDISCARD, BLKZEROOUT
        fcntl.ioctl(d, op, struct.pack("QQ", off, ln))
        os.pwrite(f, bytes(ln), off)
        continue
    ln = r.choice([512, 1024, 4096, 8192, 65536, 65536 + 512, 262144, 1 << 20])
    off = r.randrange(0, (size - ln) // 512) * 512
    buf = r.randbytes(ln)
    os.pwrite(d, buf, off)
    os.pwrite(f, buf, off)
os.fsync(d)
os.close(d)
os.close(f)
PY

# write_case NAME CLUSTER DISCARD_OK ATTACH_OPTS...: image $W/img.qcow2, as $DEV
write_case() {
	local name=$1 cl=$2 zok=$3 why= t0=$SECONDS
	shift 3
	qemu-img convert -O raw "$W/img.qcow2" "$W/ref.raw"
	if ! attach $DEV "$W/img.qcow2" "$@"; then
		ktap_fail "$name" "attach refused: $(dmesg | tail -2)"
		return
	fi
	python3 "$WORK/mirror.py" /dev/mapper/$DEV "$W/ref.raw" 1 16 "$zok" "$cl" ||
		why="writes failed;"
	dmsetup suspend $DEV
	qemu-img check -q -U "$W/img.qcow2" >"$W/chk" 2>&1 ||
		why="$why check while suspended: $(head -3 "$W/chk");"
	dmsetup resume $DEV
	python3 "$WORK/mirror.py" /dev/mapper/$DEV "$W/ref.raw" 2 12 "$zok" "$cl" ||
		why="$why writes failed;"
	echo 3 > /proc/sys/vm/drop_caches
	cmp /dev/mapper/$DEV "$W/ref.raw" >"$W/cmp" 2>&1 ||
		why="$why device differs: $(head -1 "$W/cmp");"
	grep -q ' errors 0 ' <(dmsetup status $DEV) ||
		why="$why errors: $(dmsetup status $DEV);"
	detach $DEV || why="$why detach failed;"
	qemu-img check "$W/img.qcow2" >"$W/chk" 2>&1 ||
		why="$why check: $(grep -v '^$' "$W/chk" | head -4 | tr '\n' ' ');"
	qemu-img compare -q "$W/img.qcow2" "$W/ref.raw" ||
		why="$why compare differs;"
	ktap_print "$name: $((SECONDS - t0)) s"
	if [ -z "$why" ]; then ktap_ok "$name"; else ktap_fail "$name" "$why"; fi
}

fill() {	# fill IMG: some content to overwrite
	qemu-io -c 'write -P 0x11 0 1M' -c 'write -P 0x22 3M 300k' \
		-c 'write -z 2M 1M' "$1" >/dev/null
}

CASES=(
	"v3 64k|cluster_size=65536"
	"v2 64k|compat=0.10"
	"v3 512B|cluster_size=512"
	"v3 4k refcount_bits=2|cluster_size=4096,refcount_bits=2"
	"v3 2M|cluster_size=2097152"
	"extended L2 64k|extended_l2=on"
	"preallocation=metadata|preallocation=metadata"
)

# The cases run two at a time (ktap_par), each in its own slot.
matrix_case() {	# matrix_case NAME CREATE_OPTS
	local cl
	case_slot
	cl=$(echo "$2" | sed -n 's/.*cluster_size=\([0-9]*\).*/\1/p')
	qemu-img create -q -f qcow2 -o "$2" "$W/img.qcow2" $SIZE
	fill "$W/img.qcow2"
	write_case "$1" "${cl:-65536}" 1
}

# compressed clusters, deflate and zstd: writes move them to normal ones
compressed_case() {	# compressed_case zlib|zstd
	case_slot
	seq 1 400000 | head -c 2M > "$W/src.raw"
	qemu-img convert -c -O qcow2 -o compression_type=$1 "$W/src.raw" "$W/img.qcow2"
	write_case "writes into compressed clusters ($1)" 65536 1
}

# internal snapshot: shared clusters are copied on write, the snapshot keeps
# its data
snapshot_case() {
	case_slot
	qemu-img create -q -f qcow2 "$W/img.qcow2" $SIZE
	fill "$W/img.qcow2"
	qemu-img snapshot -c s1 "$W/img.qcow2"
	qemu-img convert -O raw -l snapshot.name=s1 "$W/img.qcow2" "$W/snap.raw"
	write_case "copy-on-write of snapshot-shared clusters" 65536 1
	qemu-img convert -O raw -l snapshot.name=s1 "$W/img.qcow2" "$W/snap2.raw"
	if cmp -s "$W/snap.raw" "$W/snap2.raw"; then
		ktap_ok "snapshot content unchanged"
	else
		ktap_fail "snapshot content unchanged"
	fi
}

# backing file: partial writes copy the rest of the cluster up
backing_case() {
	case_slot
	head -c 4M /dev/urandom > "$W/base.raw"
	qemu-img create -q -f qcow2 -b "$W/base.raw" -F raw "$W/img.qcow2"
	write_case "writes over a raw backing file" 65536 0 backing raw "$W/base.raw"
}

ktap_header
ktap_plan $(( ${#CASES[@]} + 6 ))
for c in "${CASES[@]}"; do
	ktap_par matrix_case "${c%%|*}" "${c#*|}"
done
ktap_par compressed_case zlib
ktap_par compressed_case zstd
ktap_par snapshot_case
ktap_par backing_case
ktap_par_wait

# 512 B clusters: 12 MiB of data outgrow the refcount table qemu-img made
rm -f "$WORK/img.qcow2"
qemu-img create -q -f qcow2 -o cluster_size=512 "$WORK/img.qcow2" 16M
rt0=$(python3 "$(dirname "$0")/qcow2patch.py" "$WORK/img.qcow2" get refcount_table_offset)
head -c 12M /dev/urandom > "$WORK/big.bin"
why=
attach dmq "$WORK/img.qcow2" || why="attach failed;"
dd if="$WORK/big.bin" of=/dev/mapper/dmq bs=1M oflag=direct status=none || why="$why write failed;"
detach dmq
cp "$WORK/big.bin" "$WORK/ref.raw" && truncate -s 16M "$WORK/ref.raw"
qemu-img check -q "$WORK/img.qcow2" || why="$why check: $(qemu-img check "$WORK/img.qcow2" 2>&1 | head -3);"
qemu-img compare -q "$WORK/img.qcow2" "$WORK/ref.raw" || why="$why compare differs;"
rt1=$(python3 "$(dirname "$0")/qcow2patch.py" "$WORK/img.qcow2" get refcount_table_offset)
[ "$rt0" != "$rt1" ] || why="$why refcount table did not move;"
if [ -z "$why" ]; then ktap_ok "refcount table growth"; else ktap_fail "refcount table growth" "$why"; fi
ktap_finish
