#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The guest-side driver's virtio-scsi mode against the in-kernel peer:
# /dev/ram0 exported by LIO (iblock) as a vhost-scsi target
# (tools/vm/lio-vhost-scsi), driven with vblk --vhost-scsi; results
# checked against brd itself (O_DIRECT). Skips (exit 4) only when the
# kernel lacks vhost_scsi or the LIO modules.
. "$(dirname "$0")/common.sh"

LIO=$TOP/tools/vm/lio-vhost-scsi
NAME=vblk-selftest

ktap_header
if ! err=$("$LIO" modules 2>&1); then
	[ $? -eq 4 ] && ktap_skip_all "vhost_scsi or LIO missing: $err"
	ktap_print "LIO setup: $err"
fi
ktap_plan 12
setup_brd || ktap_print "setup failed"

data=$WORK/data.bin
out=$WORK/out.bin
head -c $((1 << 20)) /dev/urandom >"$data"
zeros() { head -c "$1" /dev/zero; }

# vblk CMD ARGS...: vblk on the target (the --vhost-scsi option form)
v() {
	local cmd=$1
	shift
	"$VBLK" "$cmd" --vhost-scsi "$TARGET" "$@"
}

# in this shell, not check's subshell: the cases below use BACKEND
"$LIO" remove "$NAME" >/dev/null 2>&1
if BACKEND=$("$LIO" create "$NAME" /dev/ram0 2>&1); then
	TARGET=${BACKEND#scsi:}
	ktap_ok "LIO exports /dev/ram0 as a vhost-scsi target"
else
	ktap_fail "LIO exports /dev/ram0 as a vhost-scsi target" "$BACKEND"
	BACKEND=scsi:none TARGET=none
fi

info_size() {
	local bytes
	bytes=$(backend_bytes /dev/ram0)
	"$VBLK" info "$BACKEND" | grep -q "^capacity: *$((bytes / 512)) sectors" ||
		{ "$VBLK" info "$BACKEND"; return 1; }
	"$VBLK" info "$BACKEND" | grep -q "^transport: *vhost-scsi"
}

rw_back() {
	v write 1048576 <"$data" && v read 1048576 1048576 >"$out" &&
		cmp "$data" "$out"
}
on_backend() { read_backend /dev/ram0 1 1 | cmp - "$data"; }

# brd discards on some kernel lines only (LIO enables UNMAP by the
# device's discard_max_bytes, as tools/vm/lio-vhost-scsi does): else UNSUPP
discard_back() {
	local max
	max=$(cat /sys/block/ram0/queue/discard_max_bytes)
	if [ "${max:-0}" -eq 0 ]; then
		v discard 1048576 65536
		[ $? -eq $EX_UNSUPP ] || { echo "no discard on brd, not UNSUPP"; return 1; }
		echo "brd does not discard: UNSUPP"
		return 0
	fi
	v discard 1048576 65536 && v read 1048576 65536 | cmp - <(zeros 65536) &&
		read_backend /dev/ram0 1 1 | head -c 65536 | cmp - <(zeros 65536)
}

wz_range() {
	v write 2097152 <"$data" && v write-zeroes 2097152 65536 &&
		read_backend /dev/ram0 2 1 | head -c 65536 | cmp - <(zeros 65536) &&
		v read 2162688 4096 | cmp - <(tail -c +65537 "$data" | head -c 4096)
}

# the last block reads; one past it is an error status, not data
edge() {
	local bytes
	bytes=$(backend_bytes /dev/ram0)
	v read $((bytes - 4096)) 4096 >/dev/null
}

# configfs keeps its own attributes (version, discovery_auth) in vhost/
gone() {
	"$LIO" remove "$NAME" || return 1
	! ls -d /sys/kernel/config/target/vhost/naa.* 2>/dev/null &&
		[ ! -e "/sys/kernel/config/target/core/iblock_0/$NAME" ]
}

check "info reports capacity by READ CAPACITY(16)" info_size
check "write then read back 1 MiB" rw_back
check "the data is on the backend (O_DIRECT)" on_backend
check "flush (SYNCHRONIZE CACHE) is OK" v flush
serial() { [ "$(v id)" = "$NAME" ] || { echo "id: '$(v id)'"; return 1; }; }
check "GET_ID is the unit serial LIO was given (INQUIRY page 0x80)" serial
check "discard (UNMAP) reads back zeros" discard_back
check "write-zeroes (WRITE SAME) zeroes the range" wz_range
check "the last block reads" edge
want_exit "read beyond the capacity is IOERR" $EX_IOERR \
	v read "$(backend_bytes /dev/ram0)" 4096
check "verify at depth 16 on 2 queues" v verify --queues 2 --size 8388608 --quiet
check "teardown leaves no target behind" gone
ktap_finish
