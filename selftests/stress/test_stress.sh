#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make stress: the whole stack under a bounded mixed load, with a summary.
#
# One dm-qcow2 device (a 192 MiB image on ext4 on brd, 64 KiB clusters)
# carries three kinds of load at once, each on its own region:
#   R1 [0, 48M)     vblk verify through /dev/vhost-blk (2 queues, 2 workers),
#                   pass after pass, each with a new seed;
#   R2 [48M, 96M)   fio verify (crc32c, libaio, depth 16) on the device;
#   R3 [96M, 192M)  a churn loop that picks at random: write a random chunk,
#                   discard whole clusters, create an internal snapshot
#                   (deleting the oldest beyond 3), suspend and resume the
#                   device, flush, a point-in-time backup (at most
#                   STRESS_BACKUPS), a vhost-blk backend swap under load
#                   between two RAM disks, and a vhost-blk owner killed
#                   mid-I/O. R3's expected content is kept in a model file.
# Afterwards: the last pass of R1 and R2 and the model of R3 read back,
# before and after detach/attach; qemu-img check finds no errors and no
# leaks; the snapshots qemu-img lists are the ones left; every backup is
# a clean image. Any failure of a load fails the run.
#
#   STRESS_SECONDS (150)  length of the churn
#   STRESS_SEED    (1)    seed of the churn's choices
#   STRESS_BACKUPS (2)    backups at most
. "$(dirname "$0")/../lib/ktap.sh"

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
VBLK=$TOP/tools/bin/vblk
SWAP=$TOP/selftests/vhost_blk/swap
SECONDS_WANTED=${STRESS_SECONDS:-150}
SEED=${STRESS_SEED:-1}
MAX_BACKUPS=${STRESS_BACKUPS:-2}
M=$((1 << 20))
CLUSTER=65536
R3_OFF=$((96 * M)) R3_LEN=$((96 * M))

WORK=$(mktemp -d /tmp/stress.XXXXXX)
MNT=$WORK/ext4
IMG=$MNT/stress.qcow2
MODEL=$WORK/r3.model
NAME=stress$$
DEV=/dev/mapper/$NAME
STOP=$WORK/stop
pids=()

cleanup() {
	touch "$STOP"
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	dmsetup resume "$NAME" >/dev/null 2>&1
	qcow2-dm detach "$NAME" >/dev/null 2>&1
	mountpoint -q "$MNT" && umount "$MNT"
	rm -rf "$WORK"
}
trap cleanup EXIT

# RANDOM is seeded once: the same STRESS_SEED makes the same choices.
# rnd sets R (never call it in a subshell: the parent's sequence would not
# advance).
RANDOM=$SEED
rnd() { R=$((RANDOM * 32768 + RANDOM)); }

count() { echo $(( $(cat "$WORK/count.$1" 2>/dev/null || echo 0) + 1 )) >"$WORK/count.$1"; }
counted() { cat "$WORK/count.$1" 2>/dev/null || echo 0; }
fail() { echo "$*" >>"$WORK/failures"; echo "FAIL: $*"; }
nfail() { if [ -f "$WORK/failures" ]; then wc -l <"$WORK/failures"; else echo 0; fi; }

setup() {
	modprobe brd rd_nr=3 rd_size=$((512 * 1024)) || return 1
	mkfs.ext4 -q -F /dev/ram0 >/dev/null && mkdir -p "$MNT" &&
		mount /dev/ram0 "$MNT" || return 1
	qemu-img create -q -f qcow2 -o cluster_size=$CLUSTER "$IMG" 192M || return 1
	qcow2-dm attach "$IMG" "$NAME" >/dev/null || return 1
	truncate -s $R3_LEN "$MODEL"
	[ -x "$SWAP" ] || { echo "$SWAP not built"; return 1; }
}

# R1: vblk verify passes through /dev/vhost-blk; the last good seed kept.
load_vblk() {
	local seed=100
	while [ ! -e "$STOP" ]; do
		seed=$((seed + 1))
		if "$VBLK" verify "$DEV" --queues 2 --workers 2 --depth 16 \
			--size 48M --offset 0 --seed $seed --quiet >"$WORK/vblk.out" 2>&1; then
			echo $seed >"$WORK/r1.seed"; count vblk
		else
			fail "vblk verify pass (seed $seed): $(tail -n 3 "$WORK/vblk.out")"
			return 1
		fi
	done
}

FIO_R2=(--name=r2 --filename="$DEV" --direct=1 --ioengine=libaio --iodepth=16
	--rw=randwrite --bsrange=4k-256k --offset=48M --size=48M
	--verify=crc32c --verify_fatal=1 --verify_state_save=0)
load_fio() {
	local seed=200
	while [ ! -e "$STOP" ]; do
		seed=$((seed + 1))
		if fio "${FIO_R2[@]}" --randseed=$seed >"$WORK/fio.out" 2>&1; then
			echo $seed >"$WORK/r2.seed"; count fio
		else
			fail "fio verify run (seed $seed): $(grep -iE 'err|bad|verify' "$WORK/fio.out" | head -n 3)"
			return 1
		fi
	done
}

# R3 helpers: byte offsets within R3, cluster aligned.
r3_pick() {	# r3_pick MAXCLUSTERS: sets OFF and LEN
	local n
	rnd; n=$((R % $1 + 1))
	rnd; OFF=$(( (R % (R3_LEN / CLUSTER - n + 1)) * CLUSTER ))
	LEN=$((n * CLUSTER))
}

op_write() {
	r3_pick 16
	head -c "$LEN" /dev/urandom >"$WORK/chunk" &&
	dd if="$WORK/chunk" of="$DEV" bs=$CLUSTER seek=$(((R3_OFF + OFF) / CLUSTER)) \
		oflag=direct conv=notrunc status=none &&
	dd if="$WORK/chunk" of="$MODEL" bs=$CLUSTER seek=$((OFF / CLUSTER)) \
		conv=notrunc status=none
}

op_discard() {
	r3_pick 32
	blkdiscard -o $((R3_OFF + OFF)) -l "$LEN" "$DEV" &&
	dd if=/dev/zero of="$MODEL" bs=$CLUSTER seek=$((OFF / CLUSTER)) \
		count=$((LEN / CLUSTER)) conv=notrunc status=none
}

SNAPS=()
op_snapshot() {
	local tag=s$(counted snap_create)
	qcow2-dm snapshot "$NAME" create "$tag" >/dev/null || return 1
	SNAPS+=("$tag"); count snap_create
	if [ ${#SNAPS[@]} -gt 3 ]; then
		qcow2-dm snapshot "$NAME" delete "${SNAPS[0]}" >/dev/null || return 1
		SNAPS=("${SNAPS[@]:1}"); count snap_delete
	fi
}

op_suspend() {
	dmsetup suspend "$NAME" || return 1
	rnd; sleep 0.$((R % 5))
	dmsetup resume "$NAME"
}

op_flush() { blockdev --flushbufs "$DEV"; }

op_backup() {
	local out=$WORK/backup$(counted backup_done).qcow2
	[ "$(counted backup_done)" -lt "$MAX_BACKUPS" ] || return 0
	qcow2-dm backup "$NAME" "$out" >"$WORK/backup.out" 2>&1 ||
		{ cat "$WORK/backup.out"; return 1; }
	qemu-img check -q "$out" || { echo "backup $out not clean"; return 1; }
	rm -f "$out"
	count backup_done
}

op_swap() {
	"$SWAP" /dev/ram1 /dev/ram2 --queues 2 --rounds 1 >"$WORK/swap.out" 2>&1 ||
		{ grep -v '^ok' "$WORK/swap.out" | tail -n 5; return 1; }
}

op_kill() {
	local pid
	"$VBLK" verify /dev/ram1 --queues 4 --workers 2 --depth 32 --passes 0 \
		--quiet --size 16M &
	pid=$!
	rnd; sleep 1.$((R % 10))
	kill -9 $pid
	for _ in $(seq 300); do
		if ! kill -0 $pid 2>/dev/null || ps -o stat= -p $pid | grep -q Z; then
			wait $pid 2>/dev/null
			return 0
		fi
		sleep 0.1
	done
	echo "killed vhost-blk owner still there after 30 s"
	return 1
}

OPS=(write write write discard discard snapshot suspend flush backup swap kill)
churn() {
	local end=$((SECONDS + SECONDS_WANTED)) op n=0
	while [ $SECONDS -lt $end ]; do
		[ -s "$WORK/failures" ] && break
		rnd; op=${OPS[$((R % ${#OPS[@]}))]}
		if "op_$op"; then
			count "$op"
		else
			fail "churn operation $op (#$n)"
		fi
		n=$((n + 1))
	done
	echo "churn: $n operations in $SECONDS_WANTED s"
	touch "$STOP"
	wait "${pids[@]}"
	pids=()
}

check_data() {		# check_data WHEN
	local rc=0
	"$VBLK" verify "$DEV" --queues 2 --size 48M --offset 0 \
		--seed "$(cat "$WORK/r1.seed")" --check-only --quiet ||
		{ echo "$1: R1 (vhost-blk) differs from its last pass"; rc=1; }
	fio "${FIO_R2[@]}" --randseed="$(cat "$WORK/r2.seed")" --verify_only \
		>"$WORK/fio.out" 2>&1 ||
		{ echo "$1: R2 (fio) differs from its last run"; tail -n 5 "$WORK/fio.out"; rc=1; }
	cmp <(dd if="$DEV" bs=1M skip=96 count=96 iflag=direct status=none) "$MODEL" ||
		{ echo "$1: R3 differs from the model"; rc=1; }
	return $rc
}

after() {
	local rc=0 out
	[ -s "$WORK/r1.seed" ] && [ -s "$WORK/r2.seed" ] ||
		{ echo "a load never completed a pass"; return 1; }
	check_data "live" || rc=1
	qcow2-dm detach "$NAME" || return 1
	out=$(qemu-img check "$IMG" 2>&1)
	if ! echo "$out" | grep -q "No errors were found" || echo "$out" | grep -qi leak; then
		echo "qemu-img check:"; echo "$out"; rc=1
	fi
	got=$(qemu-img snapshot -l "$IMG" | awk 'NR > 2 { print $2 }' | xargs)
	[ "$got" = "${SNAPS[*]}" ] ||
		{ echo "snapshots: qemu-img lists '$got', expected '${SNAPS[*]}'"; rc=1; }
	qcow2-dm attach "$IMG" "$NAME" >/dev/null || return 1
	check_data "re-attached" || rc=1
	return $rc
}

ktap_header
ktap_plan 3
if setup >"$WORK/setup.log" 2>&1; then
	ktap_ok "setup: 192 MiB image on ext4 on brd, attached"
else
	sed 's/^/# /' "$WORK/setup.log"
	ktap_fail "setup: 192 MiB image on ext4 on brd, attached"
	ktap_finish
fi
load_vblk & pids+=($!)
load_fio & pids+=($!)
# not through ktap_run (a subshell): the churn keeps state in this shell
churn > >(sed -u 's/^/# /') 2>&1
if [ -s "$WORK/failures" ]; then
	ktap_fail "mixed load for ${SECONDS_WANTED}s" "$(nfail) failures"
else
	ktap_ok "mixed load for ${SECONDS_WANTED}s"
fi
ktap_run "data, image and snapshots intact" after
summary="stress: ${SECONDS_WANTED}s, seed $SEED; vblk passes $(counted vblk), fio runs $(counted fio);"
for op in write discard snapshot suspend flush swap kill; do
	summary+=" $op $(counted "$op")"
done
summary+="; snapshots created $(counted snap_create), deleted $(counted snap_delete);"
summary+=" backups $(counted backup_done);"
summary+=" failures $(nfail)"
ktap_print "$summary"
ktap_finish
