#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Limits against hostile images (review findings). Bitmaps: the memory
# of all tracked bitmaps of one image is capped at 64 MiB, not only each
# one's 16 MiB, so an image with many large bitmaps cannot exhaust
# memory: of eight 16 MiB bitmaps the first three fit (with their tables), the rest
# are marked in use with the reason logged, and the image stays clean.
. "$(dirname "$0")/lib.sh"

need qemu-img dmsetup python3
trap 'dmsetup remove dmhl 2>/dev/null; rm -rf "$WORK"' EXIT

ktap_header
ktap_plan 3

# 64 GiB at 512-byte granularity: 16 MiB of bits per bitmap
img=$WORK/bm.qcow2
qemu-img create -q -f qcow2 "$img" 64G
for i in 0 1 2 3 4 5 6 7; do
	qemu-img bitmap --add -g 512 "$img" "big$i" || { echo "Bail out! bitmap add"; exit 1; }
done
klog_mark
attach dmhl "$img" || { echo "Bail out! attach"; exit 1; }
list=$(dmsetup message dmhl 0 bitmap list)
tracked=$(grep -c " tracked " <<< "$list")
inuse=$(grep -c " inconsistent " <<< "$list")
if [ "$tracked" = 3 ] && [ "$inuse" = 5 ]; then
	ktap_ok "eight 16 MiB bitmaps: three tracked, five marked in use"
else
	ktap_fail "eight 16 MiB bitmaps: three tracked, five marked in use" \
		"tracked $tracked, in use $inuse: $list"
fi
if klog_new | grep -q "bitmap 'big7' not tracked (the bitmaps tracked already take the 64 MiB allowed)"; then
	ktap_ok "the kernel log says why"
else
	ktap_fail "the kernel log says why" "$(klog_new | tail -3)"
fi
dd if=/dev/urandom of=/dev/mapper/dmhl bs=64k count=4 oflag=direct status=none
dmsetup remove dmhl
if out=$(qemu-img check "$img" 2>&1); then
	ktap_ok "qemu-img check clean"
else
	ktap_fail "qemu-img check clean" "$(tail -3 <<< "$out")"
fi
ktap_finish
