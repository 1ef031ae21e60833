#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# vhost-blkd: the vhost-user-blk daemon in front of /dev/vhost-blk, driven
# by libvblk's vhost-user client (vblk) over its socket, on a dm-qcow2
# device: config and serial, data on 4 queues read back and compared,
# flush, write-zeroes, discard, a client killed mid-I/O and the next one
# served, a read-only daemon, the daemon's own CPU time through the I/O
# (the kernel serves the requests), and at the end a clean image holding
# exactly what was written.
. "$(dirname "$0")/common.sh"

ktap_header
ktap_plan 12
have_vhost_blk || ktap_print "no /dev/vhost-blk"
setup_ext4_file || ktap_print "ext4 on brd setup failed"

BLKD=$TOP/tools/bin/vhost-blkd
SOCK=$WORK/vud.sock
SOCK_RO=$WORK/vud-ro.sock
IMG=$EXT4_MNT/vud.qcow2
NAME=vud$$
SERIAL=vud-serial-1
DEV=
VUD_PID=
RO_PID=
MiB=1048576

cleanup() {
	[ -n "$VUD_PID" ] && kill "$VUD_PID" 2>/dev/null
	[ -n "$RO_PID" ] && kill "$RO_PID" 2>/dev/null
	sleep 0.3
	[ -n "$DEV" ] && qcow2-dm detach "$NAME" >/dev/null 2>&1
	teardown_ext4
}
trap cleanup EXIT

qemu-img create -q -f qcow2 -o cluster_size=65536 "$IMG" 32M &&
	DEV=$(qcow2-dm attach "$IMG" "$NAME") || ktap_print "qcow2-dm attach failed"

# blkd_start SOCK LOG ARGS...: the daemon in the background, pid in BLKD_PID
blkd_start() {
	local sock=$1 log=$2 i
	shift 2
	rm -f "$sock"
	"$BLKD" --socket "$sock" "$@" >/dev/null 2>"$log" &
	BLKD_PID=$!
	for i in $(seq 100); do
		[ -S "$sock" ] && return 0
		kill -0 $BLKD_PID 2>/dev/null || break
		sleep 0.1
	done
	cat "$log"
	return 1
}

blkd_start "$SOCK" "$WORK/vud.log" --queues 4 --serial "$SERIAL" "$DEV" &&
	VUD_PID=$BLKD_PID
started() {
	[ -n "$VUD_PID" ] || { echo "vhost-blkd did not start"; return 1; }
	grep -q "^vhost-blkd $SOCK: serving $DEV: 65536 sectors" "$WORK/vud.log" ||
		{ cat "$WORK/vud.log"; return 1; }
}
ktap_run "vhost-blkd starts on the dm-qcow2 device, its log names the socket" started

info() {
	local out
	out=$("$VBLK" info --vhost-user "$SOCK" --queues 4) || return 1
	echo "$out" | grep -E '^(capacity|queues|features)'
	echo "$out" | grep -q '^queues: *4 of 4' &&
	echo "$out" | grep -Eq '^capacity: *(33554432|65536 sectors)' ||
		{ echo "$out"; return 1; }
}
ktap_run "GET_CONFIG: capacity, 4 queues offered" info
serial() {
	local id
	id=$("$VBLK" id "$SOCK") || return 1
	[ "$id" = "$SERIAL" ] || { echo "serial '$id', expected '$SERIAL'"; return 1; }
}
ktap_run "GET_ID through the kernel gives the daemon's --serial" serial

# The daemon's own CPU time (user, system) in clock ticks.
cpu_ticks() { awk '{ print $14, $15 }' "/proc/$1/stat"; }

verify4() {
	local u0 s0 u1 s1
	read -r u0 s0 < <(cpu_ticks "$VUD_PID")
	"$VBLK" verify "$SOCK" --queues 4 --depth 32 --size 16M --seed 7 || return 1
	read -r u1 s1 < <(cpu_ticks "$VUD_PID")
	echo "daemon CPU during the verify: user $((u1 - u0)) system $((s1 - s0)) ticks"
	echo "$((u1 - u0))" >"$WORK/vud-user-ticks"
}
ktap_run "4 queues: pattern written, flushed, read back and compared (16 MiB)" verify4
# The data path is the kernel's: requests cost the daemon nothing in user
# space. A few ticks allow for the control messages of the connection.
user_cpu() {
	local t
	t=$(cat "$WORK/vud-user-ticks" 2>/dev/null) || return 1
	[ "$t" -le 3 ] || { echo "daemon user time $t ticks over 16 MiB x2 of I/O"; return 1; }
}
ktap_run "daemon user CPU time near zero through the I/O (<= 3 ticks)" user_cpu

head -c $MiB /dev/urandom >"$WORK/vud-a.bin"
head -c $MiB /dev/urandom >"$WORK/vud-b.bin"
# A at 20 MiB stays; B at 24 MiB is discarded; zeros at 22 MiB.
rw() {
	"$VBLK" write "$SOCK" $((20 * MiB)) <"$WORK/vud-a.bin" &&
	"$VBLK" read "$SOCK" $((20 * MiB)) $MiB | cmp - "$WORK/vud-a.bin" &&
	read_backend "$DEV" 20 1 | cmp - "$WORK/vud-a.bin"
}
ktap_run "write, read back, same bytes on the dm-qcow2 device" rw
ktap_run "flush" "$VBLK" flush "$SOCK"
wz_discard() {
	"$VBLK" write "$SOCK" $((22 * MiB)) <"$WORK/vud-b.bin" &&
	"$VBLK" write-zeroes "$SOCK" $((22 * MiB)) $MiB &&
	"$VBLK" read "$SOCK" $((22 * MiB)) $MiB | cmp - <(head -c $MiB /dev/zero) &&
	"$VBLK" write "$SOCK" $((24 * MiB)) <"$WORK/vud-b.bin" &&
	"$VBLK" discard "$SOCK" $((24 * MiB)) $MiB &&
	"$VBLK" read "$SOCK" $((24 * MiB)) $MiB | cmp - <(head -c $MiB /dev/zero)
}
ktap_run "write-zeroes and discard read back as zeros" wz_discard

# Between connections the daemon holds no /dev/vhost-blk and no mapping
# of the last front-end's memory (libvblk's memfd is "vblk-guest").
released() {
	local i
	for i in $(seq 50); do
		! ls -l /proc/"$VUD_PID"/fd | grep -q vhost-blk &&
		! grep -q vblk-guest /proc/"$VUD_PID"/maps && return 0
		sleep 0.1
	done
	echo "after the client went away the daemon still holds:"
	ls -l /proc/"$VUD_PID"/fd | grep vhost-blk
	grep vblk-guest /proc/"$VUD_PID"/maps
	return 1
}

# Several connections over time, one cut off with requests in flight:
# the kernel device and the client's memory are released.
killed_client() {
	local pid
	"$VBLK" verify "$SOCK" --queues 4 --passes 0 --quiet --size 4M --offset 8M &
	pid=$!
	sleep 2
	kill -9 $pid
	wait_gone $pid 20 || { echo "client did not exit"; return 1; }
	kill -0 "$VUD_PID" || { echo "vhost-blkd died"; return 1; }
	released || return 1
	"$VBLK" verify "$SOCK" --queues 2 --size 4M --offset 8M --seed 9 &&
	"$VBLK" verify "$SOCK" --queues 4 --check-only --size 8M --seed 7
}
ktap_run "client killed mid-I/O: all released, the next clients are served, data intact" killed_client

readonly_daemon() {
	local out rc
	# with busy polling: the kernel worker polls the ring between requests
	blkd_start "$SOCK_RO" "$WORK/vud-ro.log" --read-only --queues 1 \
		--busyloop 500 "$DEV" || return 1
	RO_PID=$BLKD_PID
	echo "$RO_PID" >"$WORK/vud-ro.pid"
	out=$("$VBLK" info "$SOCK_RO") || return 1
	echo "$out" | grep -Eq '^read-only: +yes' || { echo "$out"; return 1; }
	"$VBLK" read "$SOCK_RO" $((20 * MiB)) $MiB | cmp - "$WORK/vud-a.bin" || return 1
	"$VBLK" write "$SOCK_RO" $((20 * MiB)) <"$WORK/vud-b.bin" 2>/dev/null; rc=$?
	[ $rc -ne 0 ] || { echo "a write on the read-only daemon succeeded"; return 1; }
	"$VBLK" read "$SOCK_RO" $((20 * MiB)) $MiB | cmp - "$WORK/vud-a.bin" || return 1
	grep -q "polls each ring for 500 us" "$WORK/vud-ro.log" ||
		{ echo "busy polling not set up:"; cat "$WORK/vud-ro.log"; return 1; }
}
ktap_run "--read-only --busyloop 500: RO offered, data readable, writes refused" readonly_daemon
RO_PID=$(cat "$WORK/vud-ro.pid" 2>/dev/null)

stop() {
	kill "$VUD_PID" "$RO_PID" 2>/dev/null
	wait_gone "$VUD_PID" 10 && wait_gone "$RO_PID" 10 ||
		{ echo "vhost-blkd did not exit on SIGTERM"; return 1; }
	VUD_PID= RO_PID=
	[ ! -e "$SOCK" ] || { echo "socket left behind"; return 1; }
	grep -c "front-end connected" "$WORK/vud.log"
	! grep -v "^vhost-blkd " "$WORK/vud.log" | grep -v "signal, exiting"
}
ktap_run "SIGTERM: the daemon exits and removes its socket" stop

image() {
	qcow2-dm detach "$NAME" || return 1
	DEV=
	qemu-img check "$IMG" || return 1
	qemu-img convert -O raw "$IMG" "$WORK/vud.raw" || return 1
	dd if="$WORK/vud.raw" bs=1M skip=20 count=1 status=none | cmp - "$WORK/vud-a.bin" &&
	dd if="$WORK/vud.raw" bs=1M skip=22 count=1 status=none | cmp - <(head -c $MiB /dev/zero) &&
	dd if="$WORK/vud.raw" bs=1M skip=24 count=1 status=none | cmp - <(head -c $MiB /dev/zero)
}
ktap_run "image: qemu-img check clean, the bytes written are in it" image
rm -f "$WORK/vud.raw"
ktap_finish
