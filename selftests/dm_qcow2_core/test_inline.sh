#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Inline I/O (table argument no_inline_io, status inline_ios): reads and
# in-place writes submitted under a plug go to the image file from the
# submitter's thread when the unplug runs. The image lives on ext4 (the
# path needs O_DIRECT on the image file) and is fragmented, and the
# page cache and ext4's extent cache are dropped before the reads, so
# ext4 must read its extent tree from the device while serving them:
# the case that deadlocks when such I/O is issued from inside
# submit_bio(). Bytes compared with a raw reference; counters counted;
# the image checks clean; no_inline_io sends nothing inline.
. "$(dirname "$0")/lib.sh"

need qemu-img dmsetup losetup mkfs.ext4 filefrag fio
MNT=$WORK/mnt
DEV=/dev/mapper/dmin
cleanup() {
	dmsetup remove dmin 2>/dev/null
	ext4_on_loop_undo "$MNT"
	rm -rf "$WORK"
}
trap cleanup EXIT

ktap_header
ktap_plan 10

field() { dmsetup status dmin | sed -n "s/.* $1 \([0-9]*\) .*/\1/p"; }
# reads_ref WHAT: 4 MiB direct reads of the whole device equal $REF
reads_ref() {
	if dd if="$DEV" of="$WORK/out" bs=4M iflag=direct status=none &&
	   cmp -s "$WORK/out" "$REF"; then
		ktap_ok "$1"
	else
		ktap_fail "$1" "$(cmp "$WORK/out" "$REF" 2>&1 | head -1)"
	fi
}

if ! ext4_on_loop 320M "$MNT"; then
	echo "Bail out! cannot make ext4 for the image"
	exit 1
fi
IMG=$MNT/in.qcow2
REF=$WORK/ref.raw
CL=65536
NCL=512
qemu-img create -q -f qcow2 -o cluster_size=$CL "$IMG" 32M
attach dmin "$IMG" || { echo "Bail out! attach failed"; exit 1; }

# Free space in 64 KiB holes only: a file fills the file system and
# every other 64 KiB of its first 96 MiB is punched out. The image file
# then grows in 64 KiB extents, so its extent tree needs blocks of its
# own (an inode holds four extents), which the reads below must load.
avail=$(df --output=avail -B1 "$MNT" | tail -1)
fallocate -l $((avail - (4 << 20))) "$MNT/filler"
python3 - "$MNT/filler" <<'PY'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open(sys.argv[1], os.O_RDWR)
for i in range(768):	# FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
    if libc.fallocate(fd, 3, ctypes.c_long(i << 17), ctypes.c_long(1 << 16)):
        sys.exit("punch: " + os.strerror(ctypes.get_errno()))
PY
head -c 32M /dev/urandom > "$REF"
dd if="$REF" of="$DEV" bs=4M oflag=direct conv=fsync status=none
extents=$(filefrag "$IMG" | sed -n 's/.*: \([0-9]*\) extents\? found/\1/p')
if [ "${extents:-0}" -gt 16 ]; then
	ktap_ok "image file fragmented ($extents extents)"
else
	ktap_fail "image file fragmented" "filefrag: '$extents' extents"
fi

# Reads: a 4 MiB direct read plugs its bios (the target splits them at
# 64 KiB), with ext4's caches dropped first.
sync
echo 3 > /proc/sys/vm/drop_caches
before=$(field inline_ios)
reads_ref "plugged direct reads, extent tree not cached: bytes equal"
after=$(field inline_ios)
n=$((after - before))
# at least half of the 512 clusters' bios: some unplug from schedule()
if [ "$n" -ge $((NCL / 2)) ]; then
	ktap_ok "reads went inline ($n of $NCL bios)"
else
	ktap_fail "reads went inline" "inline_ios grew by $n, want >= $((NCL / 2))"
fi

# In-place writes (clusters of refcount 1): libaio submits 16 at a time
# under a plug (a synchronous direct write to a block device waits
# inside the plug of blkdev_write_iter(): its unplug comes from
# schedule() and goes to the workers). fio verifies what it wrote, by
# reads submitted the same way; the reference takes those bytes.
before=$(field inline_ios)
if out=$(fio --name=w --filename="$DEV" --ioengine=libaio --direct=1 \
	--rw=write --bs=64k --offset=8M --size=8M --iodepth=16 \
	--iodepth_batch_submit=16 --iodepth_batch_complete_min=16 \
	--verify=crc32c --do_verify=1 --verify_fatal=1 --verify_state_save=0 \
	--output-format=terse 2>&1); then
	ktap_ok "in-place writes and their reads verify"
else
	ktap_fail "in-place writes and their reads verify" "$(tail -3 <<< "$out")"
fi
n=$(( $(field inline_ios) - before ))
if [ "$n" -ge 128 ]; then
	ktap_ok "in-place writes and reads went inline ($n of 256 bios)"
else
	ktap_fail "in-place writes and reads went inline" "inline_ios grew by $n, want >= 128"
fi
dd if="$DEV" of="$REF" bs=4M skip=2 seek=2 count=2 iflag=direct \
	conv=notrunc status=none
blkdiscard -o $((20 << 20)) -l $((4 << 20)) "$DEV"
dd if=/dev/zero of="$REF" bs=1M seek=20 count=4 conv=notrunc status=none
head -c 4M /dev/urandom > "$WORK/w2"
dd if="$WORK/w2" of="$DEV" bs=4M seek=5 oflag=direct conv=notrunc,fsync \
	status=none
dd if="$WORK/w2" of="$REF" bs=4M seek=5 conv=notrunc status=none
echo 3 > /proc/sys/vm/drop_caches
reads_ref "inline writes, discard, allocating writes: device reads the reference"

detach dmin
if out=$(qemu-img check "$IMG" 2>&1); then
	ktap_ok "qemu-img check clean"
else
	ktap_fail "qemu-img check clean" "$(tail -3 <<< "$out")"
fi
if qemu-img convert -O raw "$IMG" "$WORK/conv" && cmp -s "$WORK/conv" "$REF"; then
	ktap_ok "QEMU reads the reference from the image"
else
	ktap_fail "QEMU reads the reference from the image" \
		"$(cmp "$WORK/conv" "$REF" 2>&1 | head -1)"
fi

# no_inline_io: the same reads, none inline
attach dmin "$IMG" no_inline_io || { echo "Bail out! attach failed"; exit 1; }
if dmsetup table dmin | grep -q ' no_inline_io$' &&
   dd if="$DEV" of="$WORK/out" bs=4M iflag=direct status=none &&
   cmp -s "$WORK/out" "$REF" && [ "$(field inline_ios)" = 0 ]; then
	ktap_ok "no_inline_io: bytes equal, inline_ios 0"
else
	ktap_fail "no_inline_io: bytes equal, inline_ios 0" \
		"inline_ios '$(field inline_ios)'; $(dmsetup table dmin)"
fi
detach dmin

# An image on tmpfs: inline only where tmpfs takes O_DIRECT (6.6 on),
# since the inline path is direct I/O on the image file.
qemu-img create -q -f qcow2 "$WORK/tmpfs.qcow2" 8M
attach dmin "$WORK/tmpfs.qcow2"
dd if=/dev/urandom of="$DEV" bs=4M count=2 oflag=direct status=none
dd if="$DEV" of=/dev/null bs=4M iflag=direct status=none
n=$(field inline_ios)
if dd if="$WORK/tmpfs.qcow2" of=/dev/null bs=4k count=1 iflag=direct \
	status=none 2>/dev/null; then
	what="tmpfs takes O_DIRECT: reads inline"
	[ "${n:-0}" -ge 64 ]
else
	what="tmpfs without O_DIRECT: nothing inline"
	[ "${n:-1}" = 0 ]
fi && ktap_ok "$what (inline_ios $n)" || ktap_fail "$what" "inline_ios '$n'"
detach dmin
ktap_finish
