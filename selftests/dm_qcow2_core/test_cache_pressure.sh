#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# A metadata cache far smaller than the image's metadata, under parallel
# writers and readers: L2 tables and refcount blocks that miss are read
# without q->lock while other requests allocate, evict dirty tables and
# flush, and dirty tables about to be evicted are written back without it.
# Every byte fio wrote must verify, the device must read what the image
# file holds, and the image must check clean. Two geometries: 4 KiB
# clusters (L2 misses), and 512-byte clusters, where one refcount block
# covers only 128 KiB of the file and refcount blocks miss too.
. "$(dirname "$0")/lib.sh"

need qemu-img fio dmsetup
DEV=/dev/mapper/dmcp
trap 'dmsetup remove dmcp 2>/dev/null; rm -rf "$WORK"' EXIT

ktap_header
ktap_plan 9

# pressure NAME CLUSTER SIZE IO_SIZE [lock]: the checks for one geometry
pressure() {
	local what=$1 img=$WORK/cp.qcow2 st misses fl lfl out
	rm -f "$img"
	qemu-img create -q -f qcow2 -o cluster_size="$2" "$img" "$3"
	if ! attach dmcp "$img" cache_mb 1; then
		echo "Bail out! dmsetup create failed"
		exit 1
	fi
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
size=50%
io_size=$4
verify=crc32c
verify_fatal=1
[w1]
rw=randwrite
offset=50%
size=50%
io_size=$4
verify=crc32c
verify_fatal=1
[r]
rw=randread
io_size=$4
EOF
	if out=$(fio --output-format=terse --terse-version=3 "$WORK/cp.fio" 2>&1); then
		ktap_ok "$what: parallel random writers verify, beside a random reader"
	else
		ktap_fail "$what: parallel random writers verify, beside a random reader" "$(tail -5 <<< "$out")"
	fi

	st=$(dmsetup status dmcp)
	misses=$(sed -n 's/.*cache_misses \([0-9]*\).*/\1/p' <<< "$st")
	if [ "${misses:-0}" -gt 1000 ]; then
		ktap_ok "$what: the cache was under pressure ($misses misses)"
	else
		ktap_fail "$what: the cache was under pressure" "$st"
	fi

	# a lookup that would evict a dirty table first writes the dirty
	# tables back as a flush request does, holding the per-image lock
	# only to copy them; the locked flush sequence runs only for a table
	# dirtied again between that write-back and the eviction
	# (with 512-byte clusters the refcount table moves to grow several
	# times, which the locked sequence does: counted, not asserted)
	read -r fl lfl <<< "$(sed -n 's/.* flushes \([0-9]*\) locked_flushes \([0-9]*\) .*/\1 \2/p' <<< "$st")"
	if [ "$5" != lock ]; then
		ktap_print "$what: $fl flushes, $lfl holding the per-image lock"
	elif [ "${fl:-0}" -ge 20 ] && [ $((${lfl:-$fl} * 10)) -le "$fl" ]; then
		ktap_ok "$what: dirty tables written back without the per-image lock ($fl flushes, $lfl holding it)"
	else
		ktap_fail "$what: dirty tables written back without the per-image lock" "flushes ${fl:-?}, holding the lock ${lfl:-?}"
	fi

	# what the device reads is what the file holds, once flushed
	blockdev --flushbufs "$DEV"
	if out=$(qemu-img compare -U -f qcow2 -F raw "$img" "$DEV" 2>&1); then
		ktap_ok "$what: device content equals the image file's"
	else
		ktap_fail "$what: device content equals the image file's" "$out"
	fi
	detach dmcp

	if out=$(qemu-img check "$img" 2>&1); then
		ktap_ok "$what: qemu-img check clean"
	else
		ktap_fail "$what: qemu-img check clean" "$out"
	fi
}

# 4 KiB clusters: one L2 table maps 2 MiB; a 1 MiB cache holds about 200
# of them (400 MiB) for a 1 GiB image, so random I/O misses all the time
pressure "4k clusters" 4096 1G 12M lock
# 512-byte clusters: an L2 table maps 32 KiB, a refcount block counts
# 128 KiB of the file; 1 MiB holds about 1500 and 500 of them
pressure "512b clusters" 512 256M 6M
ktap_finish
