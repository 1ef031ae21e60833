#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Status and table lines, read-only devices, flush durability while
# attached, persistent bitmaps in use while attached read-write and
# stored at detach, unknown autoclear bits cleared on a read-write attach, ENOSPC on the host filesystem failing
# writes with EIO while reads go on and the image stays consistent.
. "$(dirname "$0")/lib.sh"
need qemu-img qemu-io dmsetup python3 cmp

P="python3 $(dirname "$0")/qcow2patch.py"
IMG=$WORK/f.qcow2

ktap_header
ktap_plan 13

qemu-img create -q -f qcow2 "$IMG" 4M
qemu-io -c 'write -P 0x11 0 1M' "$IMG" >/dev/null
attach dmf "$IMG" cache_mb 2
st=$(dmsetup status dmf)
if [[ $st =~ ^0\ 8192\ qcow2\ version\ 3\ cluster_size\ 65536\ allocated\ [0-9]+\ free\ [0-9]+\ cache_hits\ [0-9]+\ cache_misses\ [0-9]+\ errors\ 0\ flushes\ [0-9]+\ locked_flushes\ [0-9]+\ deferred_frees\ [0-9]+\ write_error\ 0\ no_space\ 0\ no_space_queued\ 0\ inline_ios\ [0-9]+\ rw$ ]]; then
	ktap_ok "status INFO line"
else
	ktap_fail "status INFO line" "$st"
fi
tb=$(dmsetup table dmf)
if [ "$tb" = "0 8192 qcow2 $IMG 2 cache_mb 2" ]; then
	ktap_ok "status TABLE echoes the table"
else
	ktap_fail "status TABLE echoes the table" "$tb"
fi

# a flush makes data and metadata durable: the image checks clean and
# holds the data while still attached
head -c 1M /dev/urandom > "$WORK/r.bin"
dd if="$WORK/r.bin" of=/dev/mapper/dmf bs=64k seek=20 conv=fsync status=none
qemu-img convert -U -O raw "$IMG" "$WORK/now.raw"
if qemu-img check -q -U "$IMG" &&
   cmp -s <(dd if="$WORK/now.raw" bs=64k skip=20 count=16 status=none) "$WORK/r.bin"; then
	ktap_ok "fsync makes writes durable in the image"
else
	ktap_fail "fsync makes writes durable in the image"
fi
detach dmf

attach dmf "$IMG" ro
if dd if=/dev/zero of=/dev/mapper/dmf bs=4k count=1 oflag=direct status=none 2>/dev/null; then
	ktap_fail "ro device refuses writes"
else
	ktap_ok "ro device refuses writes"
fi
dmsetup status dmf | grep -q ' ro$' && ktap_ok "ro in status" || ktap_fail "ro in status"
detach dmf

# persistent bitmaps: in use while attached read-write (a crash leaves
# them inconsistent), stored consistent at detach; untouched by ro
rm -f "$IMG"
qemu-img create -q -f qcow2 "$IMG" 4M
if qemu-img bitmap --add "$IMG" b0 2>/dev/null; then
	attach dmf "$IMG" ro && detach dmf
	inuse_ro=$(qemu-img info --output=json "$IMG" | grep -c in-use)
	attach dmf "$IMG" && dd if=/dev/zero of=/dev/mapper/dmf bs=4k count=1 status=none
	inuse_rw=$(qemu-img info -U --output=json "$IMG" | grep -c in-use)
	detach dmf
	inuse_after=$(qemu-img info --output=json "$IMG" | grep -c in-use)
	if [ "$inuse_ro" = 0 ] && [ "$inuse_rw" = 1 ] && [ "$inuse_after" = 0 ] &&
	   qemu-img check -q "$IMG"; then
		ktap_ok "bitmaps in use while attached rw only, stored at detach"
	else
		ktap_fail "bitmaps in use while attached rw only, stored at detach" \
			"ro=$inuse_ro rw=$inuse_rw after=$inuse_after"
	fi
else
	ktap_skip "bitmaps in use while attached rw only, stored at detach" "qemu-img bitmap unsupported"
fi

# One running read-write table per image: a second one (reload of the
# same device or another device) is refused while the first runs; once it
# is suspended the newer table owns the image and the older one may not
# resume; when the newer goes away unresumed the older owns it again.
rm -f "$IMG"
qemu-img create -q -f qcow2 "$IMG" 4M
t="0 $(img_sectors "$IMG") qcow2 $IMG"
# put FILE CHUNK: one 64 KiB chunk through dmf, O_DIRECT
put() { dd if="$1" of=/dev/mapper/dmf bs=64k seek="$2" oflag=direct status=none; }
owner_ok() {
	head -c 64k /dev/urandom > "$WORK/o1"
	head -c 64k /dev/urandom > "$WORK/o2"
	head -c 64k /dev/urandom > "$WORK/o3"
	attach dmf "$IMG" || { echo "attach failed"; return 1; }
	put "$WORK/o1" 0 || { echo "first write failed"; return 1; }
	dmsetup reload dmf --table "$t" 2>/dev/null &&
		{ echo "reload of the running device accepted"; return 1; }
	dmsetup create dmf2 --table "$t" 2>/dev/null &&
		{ echo "second rw device accepted"; return 1; }
	dmsetup create dmf2 --table "$t 1 ro" ||
		{ echo "read-only device refused"; return 1; }
	dmsetup remove dmf2
	# newer tables never resumed (a second reload replaces the first),
	# then cleared: the old one goes on
	dmsetup suspend dmf && dmsetup reload dmf --table "$t" ||
		{ echo "reload of the suspended device refused"; return 1; }
	dmsetup reload dmf --table "$t" ||
		{ echo "a second reload refused: an unresumed table counted as running"; return 1; }
	dmsetup clear dmf && dmsetup resume dmf ||
		{ echo "old table did not resume after clear"; return 1; }
	put "$WORK/o2" 1 || { echo "write after clear failed"; return 1; }
	# a device on the same image while dmf is suspended: it owns the
	# image, dmf may not resume
	dmsetup suspend dmf && dmsetup create dmf2 --table "$t" ||
		{ echo "second device refused while the first is suspended"; return 1; }
	dmsetup resume dmf 2>/dev/null && { echo "superseded table resumed"; return 1; }
	cmp -n 131072 <(cat "$WORK/o1" "$WORK/o2") /dev/mapper/dmf2 ||
		{ echo "new device does not read what the old one wrote"; return 1; }
	dmsetup remove dmf2 && dmsetup remove dmf ||
		{ echo "remove failed"; return 1; }
	# reload while suspended: the new table takes over
	attach dmf "$IMG" && dmsetup suspend dmf && dmsetup reload dmf --table "$t" &&
		dmsetup resume dmf && put "$WORK/o3" 2 ||
		{ echo "suspend, reload, resume, write failed"; return 1; }
	detach dmf
	qemu-img check -q "$IMG" || { echo "image not clean"; return 1; }
	qemu-img convert -O raw "$IMG" "$WORK/o.raw" &&
	cmp -n 196608 <(cat "$WORK/o1" "$WORK/o2" "$WORK/o3") "$WORK/o.raw" ||
		{ echo "image content differs"; return 1; }
}
if why=$(owner_ok 2>&1); then
	ktap_ok "one running rw table per image: refused, handed over at suspend, superseded one stays down"
else
	ktap_fail "one running rw table per image: refused, handed over at suspend, superseded one stays down" "$why"
	dmsetup remove dmf2 2>/dev/null
	dmsetup remove dmf 2>/dev/null
fi

# unknown autoclear bits are cleared before the first write
rm -f "$IMG"
qemu-img create -q -f qcow2 "$IMG" 4M
$P "$IMG" set 88 8 0x8000
attach dmf "$IMG" && detach dmf
ac=$(python3 -c 'import sys; f=open(sys.argv[1],"rb"); f.seek(88); print(int.from_bytes(f.read(8),"big"))' "$IMG")
if [ "$ac" = 0 ]; then
	ktap_ok "unknown autoclear bits cleared"
else
	ktap_fail "unknown autoclear bits cleared" "autoclear=$ac"
fi

# ENOSPC on the host filesystem: writes fail with EIO, reads go on, the
# image stays consistent (leaks allowed)
mkdir -p "$WORK/small"
mount -t tmpfs -o size=3M tmpfs "$WORK/small"
qemu-img create -q -f qcow2 "$WORK/small/s.qcow2" 16M
qemu-io -c 'write -P 0x33 0 1M' "$WORK/small/s.qcow2" >/dev/null
attach dmn "$WORK/small/s.qcow2"
if dd if=/dev/urandom of=/dev/mapper/dmn bs=1M seek=2 count=8 oflag=direct status=none 2>/dev/null; then
	ktap_fail "ENOSPC fails the write"
else
	ktap_ok "ENOSPC fails the write"
fi
if [ "$(dd if=/dev/mapper/dmn bs=64k count=1 iflag=direct status=none | od -An -tx1 | head -1 | awk '{print $1}')" = 33 ]; then
	ktap_ok "reads still served after ENOSPC"
else
	ktap_fail "reads still served after ENOSPC"
fi
detach dmn
qemu-img check -q "$WORK/small/s.qcow2"
rc=$?
if [ $rc = 0 ] || [ $rc = 3 ]; then
	ktap_ok "image consistent after ENOSPC (rc $rc)"
else
	ktap_fail "image consistent after ENOSPC" "qemu-img check rc $rc"
fi
umount "$WORK/small"

# direct I/O (asynchronous kiocb path) on ext4 over a RAM disk
why=
if modprobe brd rd_nr=1 rd_size=65536 2>/dev/null && mkfs.ext4 -q -F /dev/ram0 &&
   mkdir -p "$WORK/ext4" && mount /dev/ram0 "$WORK/ext4"; then
	qemu-img create -q -f qcow2 "$WORK/ext4/d.qcow2" 16M
	qemu-io -c 'write -P 0x44 0 4M' "$WORK/ext4/d.qcow2" >/dev/null
	qemu-img convert -O raw "$WORK/ext4/d.qcow2" "$WORK/d.raw"
	attach dmd "$WORK/ext4/d.qcow2"
	head -c 6M /dev/urandom > "$WORK/w.bin"
	dd if="$WORK/w.bin" of=/dev/mapper/dmd bs=4k seek=100 oflag=direct status=none
	dd if="$WORK/w.bin" of=/dev/mapper/dmd bs=64k seek=100 count=20 oflag=direct status=none
	dd if="$WORK/w.bin" of="$WORK/d.raw" bs=4k seek=100 conv=notrunc status=none
	dd if="$WORK/w.bin" of="$WORK/d.raw" bs=64k seek=100 count=20 conv=notrunc status=none
	cmp /dev/mapper/dmd "$WORK/d.raw" || why="device differs;"
	detach dmd
	qemu-img check -q "$WORK/ext4/d.qcow2" || why="$why check;"
	qemu-img compare -q "$WORK/ext4/d.qcow2" "$WORK/d.raw" || why="$why compare;"
	umount "$WORK/ext4"
	rmmod brd
	if [ -z "$why" ]; then ktap_ok "direct I/O on ext4"; else ktap_fail "direct I/O on ext4" "$why"; fi
else
	ktap_skip "direct I/O on ext4" "no brd/mkfs.ext4"
fi

# 4096-byte sectors: 512-byte guest I/O cannot go to such a device with
# direct I/O, so the target must use buffered I/O there, both for an image
# on a file system over it and for a data file that is the device itself
# writes512 RAW COUNT SEEK...: COUNT sectors of w.bin at each SEEK (in
# 512-byte sectors) of dm4, direct, and of RAW; fails when a write fails
# or dm4 then reads otherwise than RAW
writes512() {
	local raw=$1 count=$2 seek rc=0
	shift 2
	for seek in "$@"; do
		dd if="$WORK/w.bin" of=/dev/mapper/dm4 bs=512 seek="$seek" \
			count="$count" oflag=direct status=none || rc=1
		dd if="$WORK/w.bin" of="$raw" bs=512 seek="$seek" count="$count" \
			conv=notrunc status=none
	done
	cmp /dev/mapper/dm4 "$raw" >/dev/null || rc=1
	return $rc
}

sector4k() {
	local loop why=
	truncate -s 64M "$WORK/4k.img"
	loop=$(losetup -f --show -b 4096 "$WORK/4k.img") || return 4
	mkfs.ext4 -q -F "$loop" && mkdir -p "$WORK/4k" && mount "$loop" "$WORK/4k" ||
		{ losetup -d "$loop"; return 4; }
	qemu-img create -q -f qcow2 "$WORK/4k/s.qcow2" 8M
	qemu-img create -q -f qcow2 -o data_file="$WORK/s.data" "$WORK/s2.qcow2" 8M
	qemu-io -c 'write -P 0x45 0 1M' "$WORK/4k/s.qcow2" >/dev/null
	qemu-io -c 'write -P 0x46 0 1M' "$WORK/s2.qcow2" >/dev/null
	# the data file moves onto the 4k device (a block device of its own)
	umount "$WORK/4k" && dd if="$WORK/4k.img" of="$WORK/4k.save" bs=1M status=none &&
	dd if="$WORK/s.data" of="$loop" bs=1M conv=fsync status=none || why="setup;"
	qemu-img convert -O raw "$WORK/s2.qcow2" "$WORK/s2.raw"
	attach dm4 "$WORK/s2.qcow2" data_file "$loop" || why="$why attach data file;"
	head -c 8192 /dev/urandom > "$WORK/w.bin"
	writes512 "$WORK/s2.raw" 3 1 7 2050 || why="$why data file writes;"
	detach dm4
	# the image back on its file system, now with the data file's changes
	dd if="$loop" of="$WORK/s.data" bs=1M count=8 status=none
	qemu-img check -q "$WORK/s2.qcow2" || why="$why data file image check;"
	qemu-img compare -q "$WORK/s2.qcow2" "$WORK/s2.raw" || why="$why data file compare;"
	dd if="$WORK/4k.save" of="$loop" bs=1M conv=fsync status=none
	mount "$loop" "$WORK/4k" || { losetup -d "$loop"; echo "remount failed"; return 1; }
	qemu-img convert -O raw "$WORK/4k/s.qcow2" "$WORK/s.raw"
	attach dm4 "$WORK/4k/s.qcow2" || why="$why attach on ext4;"
	writes512 "$WORK/s.raw" 5 3 129 4000 || why="$why ext4 writes;"
	detach dm4
	qemu-img check -q "$WORK/4k/s.qcow2" || why="$why ext4 image check;"
	qemu-img compare -q "$WORK/4k/s.qcow2" "$WORK/s.raw" || why="$why ext4 compare;"
	umount "$WORK/4k"
	losetup -d "$loop"
	rm -f "$WORK/4k.img" "$WORK/4k.save"
	[ -z "$why" ] || { echo "$why"; return 1; }
}
ktap_run "4096-byte sectors: 512-byte writes to an image on ext4 and to a data file on the device" sector4k
ktap_finish
