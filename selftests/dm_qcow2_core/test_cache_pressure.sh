#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# A metadata cache far smaller than the image's L2 tables, under parallel
# writers and readers: L2 misses are read without q->lock while other
# requests allocate, evict dirty tables and flush, and dirty tables about
# to be evicted are written back without it. Every byte fio wrote
# must verify, the device must read what the image file holds, and the
# image must check clean.
. "$(dirname "$0")/lib.sh"

need qemu-img fio dmsetup
IMG=$WORK/cp.qcow2
DEV=/dev/mapper/dmcp
trap 'dmsetup remove dmcp 2>/dev/null; rm -rf "$WORK"' EXIT

ktap_header
ktap_plan 5

# 4 KiB clusters: one L2 table maps 2 MiB; a 1 MiB cache holds about 200
# of them (400 MiB) for a 1 GiB image, so random I/O misses all the time
qemu-img create -q -f qcow2 -o cluster_size=4096 "$IMG" 1G
attach dmcp "$IMG" cache_mb 1 || { echo "Bail out! dmsetup create failed"; exit 1; }

cat > "$WORK/cp.fio" <<EOF
[global]
filename=$DEV
ioengine=libaio
direct=1
bs=4k
iodepth=16
randrepeat=1
verify_state_save=0
[w0]
rw=randwrite
offset=0
size=512M
io_size=12M
verify=crc32c
verify_fatal=1
[w1]
rw=randwrite
offset=512M
size=512M
io_size=12M
verify=crc32c
verify_fatal=1
[r]
rw=randread
io_size=12M
EOF
if out=$(fio --output-format=terse --terse-version=3 "$WORK/cp.fio" 2>&1); then
	ktap_ok "parallel random writers verify, beside a random reader"
else
	ktap_fail "parallel random writers verify, beside a random reader" "$(tail -5 <<< "$out")"
fi

st=$(dmsetup status dmcp)
misses=$(sed -n 's/.*cache_misses \([0-9]*\).*/\1/p' <<< "$st")
if [ "${misses:-0}" -gt 1000 ]; then
	ktap_ok "the cache was under pressure ($misses misses)"
else
	ktap_fail "the cache was under pressure" "$st"
fi

# a lookup that would evict a dirty table first writes the dirty tables
# back as a flush request does, holding the per-image lock only to copy
# them; the locked flush sequence runs only for a table dirtied again
# between that write-back and the eviction
read -r fl lfl <<< "$(sed -n 's/.* flushes \([0-9]*\) locked_flushes \([0-9]*\) .*/\1 \2/p' <<< "$st")"
if [ "${fl:-0}" -ge 20 ] && [ $((${lfl:-$fl} * 10)) -le "$fl" ]; then
	ktap_ok "dirty tables written back without the per-image lock ($fl flushes, $lfl holding it)"
else
	ktap_fail "dirty tables written back without the per-image lock" "flushes ${fl:-?}, holding the lock ${lfl:-?}"
fi

# what the device reads is what the file holds, once flushed
blockdev --flushbufs "$DEV"
if out=$(qemu-img compare -U -f qcow2 -F raw "$IMG" "$DEV" 2>&1); then
	ktap_ok "device content equals the image file's"
else
	ktap_fail "device content equals the image file's" "$out"
fi
detach dmcp

if out=$(qemu-img check "$IMG" 2>&1); then
	ktap_ok "qemu-img check clean"
else
	ktap_fail "qemu-img check clean" "$out"
fi
ktap_finish
