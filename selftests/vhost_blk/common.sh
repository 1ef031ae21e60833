# SPDX-License-Identifier: GPL-2.0
# Shared setup of the vhost_blk suite: brd disks, a raw file on tmpfs and
# one on ext4 on brd, qemu-storage-daemon helpers. Sourced by the tests.
. "$(dirname "$0")/../lib/ktap.sh"

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=${TOP:-$(cd "$HERE/../.." && pwd)}
VBLK=$TOP/tools/bin/vblk
FIO_ENGINE=$TOP/tools/fio-vblk/fio-vblk.so
RD_KB=65536			# each brd disk: 64 MiB
WORK=/tmp/vhost_blk_test
TMPFS_FILE=$WORK/tmpfs.raw
EXT4_MNT=$WORK/ext4
EXT4_FILE=$EXT4_MNT/disk.raw
FILE_SIZE=$((32 << 20))

# Exit statuses of vblk (Documentation/vblk.rst)
EX_IOERR=5
EX_UNSUPP=6

mkdir -p "$WORK"

have_vhost_blk() { [ -c /dev/vhost-blk ]; }

# /dev/ram0 and /dev/ram1 (64 MiB each); ram1 carries ext4 when asked.
setup_brd() {
	if [ ! -b /dev/ram1 ]; then
		modprobe brd rd_nr=2 rd_size=$RD_KB || return 1
	fi
	[ -b /dev/ram0 ] && [ -b /dev/ram1 ]
}

setup_tmpfs_file() {
	rm -f "$TMPFS_FILE"
	truncate -s $FILE_SIZE "$TMPFS_FILE"
}

setup_ext4_file() {
	setup_brd || return 1
	if ! mountpoint -q "$EXT4_MNT"; then
		mkdir -p "$EXT4_MNT"
		mkfs.ext4 -q -F /dev/ram1 >/dev/null 2>&1 || return 1
		mount /dev/ram1 "$EXT4_MNT" || return 1
	fi
	rm -f "$EXT4_FILE"
	fallocate -l $FILE_SIZE "$EXT4_FILE"
}

teardown_ext4() {
	mountpoint -q "$EXT4_MNT" && umount "$EXT4_MNT"
	return 0
}

# Size in bytes of a block device or file.
backend_bytes() {
	if [ -b "$1" ]; then blockdev --getsize64 "$1"; else stat -c %s "$1"; fi
}

# qsd_start SOCK QUEUES BLOCKDEV-ARGS...: qemu-storage-daemon exporting
# node "disk" as vhost-user-blk on SOCK; its pid in QSD_PID.
qsd_start() {
	local sock=$1 nq=$2 i
	shift 2
	rm -f "$sock"
	qemu-storage-daemon "$@" \
		--export "type=vhost-user-blk,id=e,node-name=disk,addr.type=unix,addr.path=$sock,writable=on,num-queues=$nq" \
		>"$WORK/qsd.log" 2>&1 &
	QSD_PID=$!
	for i in $(seq 100); do
		[ -S "$sock" ] && return 0
		kill -0 $QSD_PID 2>/dev/null || break
		sleep 0.1
	done
	cat "$WORK/qsd.log" >&2
	return 1
}

# Export a raw file or block device (O_DIRECT, native AIO where possible).
qsd_start_raw() {
	local sock=$1 nq=$2 path=$3 drv=file
	[ -b "$path" ] && drv=host_device
	qsd_start "$sock" "$nq" \
		--blockdev "driver=$drv,node-name=proto,filename=$path,cache.direct=on,aio=native" \
		--blockdev "driver=raw,node-name=disk,file=proto"
}

qsd_stop() {
	[ -n "${QSD_PID:-}" ] || return 0
	kill "$QSD_PID" 2>/dev/null
	wait "$QSD_PID" 2>/dev/null
	QSD_PID=
}

# Wait up to $2 seconds for pid $1 to be gone; 1 if it is still there.
wait_gone() {
	local i
	for i in $(seq $(($2 * 10))); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

# fio_verify NAME ARGS...: fio with the vblk engine, verify=crc32c.
fio_vblk() {
	fio --output-format=terse --terse-version=3 \
		--ioengine=external:"$FIO_ENGINE" --thread \
		--verify=crc32c --verify_fatal=1 --do_verify=1 \
		--verify_backlog=0 "$@"
}
