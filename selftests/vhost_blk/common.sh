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

# read_backend PATH OFFSET_MB COUNT_MB: bytes straight from the backend
# (O_DIRECT on block devices so no stale page cache is read; files are
# read through the page cache, which direct writes keep coherent, and
# tmpfs has no O_DIRECT on 6.1)
read_backend() {
	local flag=
	[ -b "$1" ] && flag=iflag=direct
	dd if="$1" bs=1M skip="$2" count="$3" $flag status=none
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

# Export a raw file or block device: a block device with O_DIRECT and
# native AIO; a file through the page cache (tmpfs has no O_DIRECT on 6.1).
qsd_start_raw() {
	local sock=$1 nq=$2 path=$3 proto
	if [ -b "$path" ]; then
		proto="driver=host_device,cache.direct=on,aio=native"
	else
		proto="driver=file,cache.direct=off,aio=threads"
	fi
	qsd_start "$sock" "$nq" \
		--blockdev "$proto,node-name=proto,filename=$path" \
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

# fio_vblk ARGS...: fio with the vblk engine, verify=crc32c; its output
# is shown only on failure, and any failure is exit 1 (never 4 = skip).
fio_vblk() {
	local log=$WORK/fio.log
	if fio --ioengine=external:"$FIO_ENGINE" --thread \
		--verify=crc32c --verify_fatal=1 --do_verify=1 --verify_state_save=0 \
		"$@" >"$log" 2>&1; then
		grep -E '^ *(read|write):' "$log" | head -2
		return 0
	fi
	grep -vE '^ *(lat|clat|slat|bw|iops|cpu|IO depths|submit|complete|issued|latency|[0-9. ]+th|\|)' "$log" | tail -25
	return 1
}

# check NAME CMD... : ok when CMD succeeds, fail with its stderr otherwise
check() {
	local name=$1 err
	shift
	if err=$("$@" 2>&1); then ktap_ok "$name"; else ktap_fail "$name" "$err"; fi
}

# want_exit NAME STATUS CMD...: ok when CMD exits with STATUS
want_exit() {
	local name=$1 want=$2 rc err
	shift 2
	err=$("$@" 2>&1 >/dev/null); rc=$?
	if [ $rc -eq "$want" ]; then ktap_ok "$name"; else
		ktap_fail "$name" "exit $rc, expected $want: $err"; fi
}
