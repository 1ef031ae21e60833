# SPDX-License-Identifier: GPL-2.0
# Power-cut test of dm-qcow2 (sourced by the test programs).
#
# Recording: brd RAM disk -> dm-log-writes (log on a second RAM disk) ->
# ext4 -> image.qcow2 -> dm-qcow2 -> crash_io workload. Every write that
# reaches the RAM disk (ext4 carrying the image, i.e. all that dm-qcow2
# makes it write) is in the log, in the order it became durable; after
# each completed flush (fsync) of the dm-qcow2 device the workload puts a
# mark in the log.
#
# Replay: for each crash point the log is replayed up to that entry onto
# a RAM disk of its checking job (CRASH_JOBS jobs take every CRASH_JOBS-th
# point each, in steps, point after point), and a throw-away dm-snapshot
# of it is mounted (ext4 journal recovery), so that each point starts
# from exactly what a power cut would have left:
#   - qemu-img check: no errors (exit 0, or 3 for leaked clusters only);
#   - the image attaches with dm-qcow2;
#   - crash_io verify, given the marks the log holds before the point:
#     every sector holds a version that was legal there (no garbage,
#     nothing acknowledged before a completed flush or FUA is missing, a
#     write in flight is old or new data), with the workload's writer
#     threads running at once;
#   - it detaches cleanly.
#
# Environment (defaults give a run of a few minutes under TCG):
#   CRASH_SEED      workload and point choice seed (default: a fresh one
#                   each run, printed; set it to replay a run)
#   CRASH_OPS       workload operations per phase (60)
#   CRASH_POINTS    at most this many crash points, 0 = every flush/FUA
#                   point plus the random ones (16)
#   CRASH_RANDOM    random points between flush points (4)
#   CRASH_CLUSTER   cluster size of the image (65536)
#   CRASH_SIZE      virtual size of the image (48M)
#   CRASH_CACHE_MB  dm-qcow2 metadata cache (target default when empty)
#   CRASH_THREADS   writer threads of the workload (4)
#   CRASH_JOBS      crash points checked at once, each on its own pair of
#                   RAM disks (2; replaying is cheap, checking costs)
#   CRASH_GEOMETRIES  geometries test_geometry.sh records (geometry.sh)
. "$(dirname "$0")/../lib/ktap.sh"

HERE=$(cd "$(dirname "$0")" && pwd)
CRASH_IO=$HERE/crash_io
CRASH_SEED=${CRASH_SEED:-$(( $(od -An -N2 -tu2 /dev/urandom) % 60000 + 1 ))}
CRASH_OPS=${CRASH_OPS:-60}
CRASH_POINTS=${CRASH_POINTS:-16}
CRASH_RANDOM=${CRASH_RANDOM:-4}
CRASH_CLUSTER=${CRASH_CLUSTER:-65536}
CRASH_SIZE=${CRASH_SIZE:-48M}
CRASH_CACHE_MB=${CRASH_CACHE_MB:-}
CRASH_THREADS=${CRASH_THREADS:-4}
CRASH_JOBS=${CRASH_JOBS:-2}
CR_IMG_OPTS=			# more qemu-img create -o options
CR_BACKING=			# 1: img.qcow2 has a backing file written first
CR_BURST=4			# one-block writes per scattered burst
CR_FUA=10			# per cent of the writes with FUA
RD_KB=262144			# each RAM disk, KiB (allocated as written)

W=$(mktemp -d /tmp/crash.XXXXXX)
LW=cr$$lw
SNAP=cr$$snap
DQ=cr$$dq
MNT=$W/mnt
RMNT=$W/rmnt
mkdir -p "$MNT" "$RMNT"

# Every device of a recording and its checks gone, the RAM disks freed.
cr_teardown() {
	local j
	qcow2-dm detach "$DQ" >/dev/null 2>&1
	for ((j = 0; j < CRASH_JOBS; j++)); do
		qcow2-dm detach "$DQ$j" >/dev/null 2>&1
		umount "$RMNT$j" 2>/dev/null
		dmsetup remove "$SNAP$j" 2>/dev/null
	done
	umount "$MNT" 2>/dev/null
	umount "$RMNT" 2>/dev/null
	dmsetup remove "$SNAP" 2>/dev/null
	dmsetup remove "$LW" 2>/dev/null
	# free the RAM disks' memory for the next test
	[ -n "${cr_brd:-}" ] && rmmod brd 2>/dev/null
	return 0
}

cr_cleanup() {
	cr_teardown
	rm -rf "$W"
}
trap cr_cleanup EXIT

cr_setup() {
	modprobe dm-log-writes || return 4
	modprobe dm-snapshot || return 4
	# brd takes its geometry at load: a copy left by an earlier test
	# (RAM disks unused) goes; one still in use is an error
	if grep -q '^brd ' /proc/modules && ! rmmod brd; then
		echo "brd already loaded and in use"; return 1
	fi
	# ram0 recorded, ram1 the log, then a replay target and the
	# throw-away snapshot's store for each checking job
	modprobe brd rd_nr=$((2 + 2 * CRASH_JOBS)) rd_size=$RD_KB || return 4
	cr_brd=1
}

cr_attach() {
	local opts=()
	[ -n "$CRASH_CACHE_MB" ] && opts=(--cache-mb "$CRASH_CACHE_MB")
	qcow2-dm attach "$1" "$DQ" "${opts[@]}"
}

# cr_work DEV SEED OPS: one phase of the workload
cr_work() {
	"$CRASH_IO" work "$1" "$W/hist" --lw "$LW" --seed "$2" --ops "$3" \
		--cluster "$CRASH_CLUSTER" --threads "$CRASH_THREADS" --burst "$CR_BURST" \
		--fua "$CR_FUA"
}

cr_mark() {			# cr_mark WHAT: a flush completed outside crash_io
	local m
	m=$("$CRASH_IO" mark "$W/hist") && dmsetup message "$LW" 0 mark "$m" &&
		echo "$m $1" >> "$W/labels"
}

cr_label() {			# what made mark $1, if not the workload
	awk -v m="$1" '$1 == m { print " = " $2 }' "$W/labels" 2>/dev/null
}

# The recorded ext4 (RAM disk under dm-log-writes, mounted at $MNT) with
# an empty img.qcow2, and the log's "start" mark.
cr_record_start() {
	local sz
	sz=$(blockdev --getsz /dev/ram0) || return 1
	dmsetup create "$LW" --table "0 $sz log-writes /dev/ram0 /dev/ram1" || return 1
	mkfs.ext4 -q -F -E nodiscard,lazy_itable_init=0,lazy_journal_init=0 "/dev/mapper/$LW" || return 1
	mount -o noatime "/dev/mapper/$LW" "$MNT" || return 1
	if [ -n "$CR_BACKING" ]; then
		cr_make_backing || return 1
		qemu-img create -q -f qcow2 -o cluster_size="$CRASH_CLUSTER$CR_IMG_OPTS" \
			-b base.qcow2 -F qcow2 "$MNT/img.qcow2" || return 1
	else
		qemu-img create -q -f qcow2 -o cluster_size="$CRASH_CLUSTER$CR_IMG_OPTS" \
			"$MNT/img.qcow2" "$CRASH_SIZE" || return 1
	fi
	sync -f "$MNT/img.qcow2" || return 1
	dmsetup message "$LW" 0 mark start
}

# base.qcow2 (the backing file, named relative to the image so that a
# replay mounted elsewhere finds it), written by the workload before the
# start mark: its writes are in the history, flushed, so every sector the
# image does not cover must read the base's version.
cr_make_backing() {
	local dev
	qemu-img create -q -f qcow2 "$MNT/base.qcow2" "$CRASH_SIZE" || return 1
	dev=$(qcow2-dm attach "$MNT/base.qcow2" "$DQ") || return 1
	cr_work "$dev" "$((CRASH_SEED + 500))" "$CRASH_OPS" || return 1
	qcow2-dm detach "$DQ" || return 1
	sync -f "$MNT/base.qcow2" || return 1
	cr_mark base-written
}

# End the recording: unmount, $W/list from the log, a summary line.
cr_record_finish() {
	umount "$MNT" || return 1
	dmsetup remove "$LW" || return 1
	lwlog list /dev/ram1 > "$W/list" || return 1
	local hist=			# crash_io's, when it was the workload
	[ -f "$W/hist" ] && hist="; history: $(wc -l < "$W/hist") operations"
	echo "recorded in ${SECONDS}s; log: $(wc -l < "$W/list") entries," \
	     "$(grep -c ' [^ ]*[FU][^ ]* ' "$W/list") flush/FUA," \
	     "$(grep -c ' M ' "$W/list") marks$hist"
}

# cr_record_phases PHASE_FN: workload phase 1 on the attached image, an
# internal snapshot by qemu-img (later writes copy on write), phase 2.
# PHASE_FN DEV SEED N runs phase N on the device.
cr_record_phases() {
	local dev
	dev=$(cr_attach "$MNT/img.qcow2") || return 1
	"$1" "$dev" "$CRASH_SEED" 1 || return 1
	qcow2-dm detach "$DQ" || return 1
	cr_mark after-detach-1 || return 1

	# QEMU's snapshot creation is not ours to judge: no crash points in it
	dmsetup message "$LW" 0 mark qemu || return 1
	qemu-img snapshot -c s1 "$MNT/img.qcow2" || return 1
	sync -f "$MNT/img.qcow2" || return 1
	cr_mark after-snapshot || return 1

	dev=$(cr_attach "$MNT/img.qcow2") || return 1
	"$1" "$dev" "$((CRASH_SEED + 1000))" 2 || return 1
	qcow2-dm detach "$DQ" || return 1
	cr_mark after-detach-2
}

cr_phase() {			# cr_phase DEV SEED N: CRASH_OPS operations
	cr_work "$1" "$2" "$CRASH_OPS"
}

# Record: mkfs, image, phases 1 and 2 (cr_record_phases), then phase 3:
# snapshots created and deleted online by dm-qcow2 between bursts of the
# workload. Writes $W/list (lwlog list).
cr_record() {
	cr_record_start || return 1
	cr_record_phases cr_phase || return 1
	cr_record_snapshots || return 1
	cr_record_finish
}

# Phase 3: internal snapshots created and deleted by dm-qcow2 itself,
# online, between bursts of the workload. Each message is recorded in a
# window (mark "op-snapshot-...") whose every flush/FUA point, and some
# random ones, are tried (crash_io points). The message flushes the data
# before it changes metadata, so a completed one counts as a flush.
CR_SNAP_OPS="create t1,create t2,delete s1,delete t1"
cr_record_snapshots() {
	local dev k=0 op
	dev=$(cr_attach "$MNT/img.qcow2") || return 1
	while IFS= read -r op; do
		k=$((k + 1))
		cr_work "$dev" "$((CRASH_SEED + 2000 + k))" "$((CRASH_OPS / 4 + 1))" || return 1
		dmsetup message "$LW" 0 mark "op-snapshot-${op// /-}" || return 1
		# shellcheck disable=SC2086 # op is two words on purpose
		dmsetup message "$DQ" 0 snapshot $op ||
			{ echo "snapshot $op failed"; return 1; }
		cr_mark "snapshot-${op// /-}" || return 1
	done < <(tr , '\n' <<< "$CR_SNAP_OPS")
	cr_work "$dev" "$((CRASH_SEED + 2999))" "$((CRASH_OPS / 4 + 1))" || return 1
	dmsetup message "$DQ" 0 snapshot list | grep -qw t2 ||
		{ echo "snapshot t2 missing from the list"; return 1; }
	qcow2-dm detach "$DQ" || return 1
	cr_mark after-detach-3
}

# cr_copied_only CHECK_OUTPUT KIND: the qemu-img check output has errors,
# all of them OFLAG_COPIED ones, and harmless where the crash fell (KIND,
# the window op-snapshot-create-TAG or op-snapshot-delete-TAG):
#   - the flag missing on a cluster at refcount 1: the next write copies
#     once more, nothing is lost (create and delete windows);
#   - the flag set on a cluster at refcount 2 or more: a write would go in
#     place, which is harmless only while no snapshot shares the cluster,
#     i.e. inside create before the new snapshot reached the table.
cr_copied_only() {
	local errs tag
	errs=$(grep '^ERROR' <<< "$1")
	[ -n "$errs" ] && ! grep -qv 'OFLAG_COPIED' <<< "$errs" || return 1
	grep -qv 'refcount=1$' <<< "$errs" || return 0
	case $2 in
	op-snapshot-create-*) tag=${2#op-snapshot-create-} ;;
	*) echo "COPIED flag set on a shared cluster"; return 1 ;;
	esac
	if qemu-img snapshot -l "$RMNT/img.qcow2" | awk 'NR > 2 { print $2 }' | grep -qx "$tag"; then
		echo "COPIED flag set on a cluster shared with snapshot $tag"
		return 1
	fi
}

# The RAM disk $CR_RD (the log replayed to a point) under a throw-away
# snapshot, its ext4 mounted at $RMNT: journal recovery writes only to the
# snapshot, so the next point replays on from the disk as the log left it.
# $1 names the point in the message when ext4 does not mount.
cr_mount_replay() {
	local sz
	sz=$(blockdev --getsz "$CR_RD")
	dmsetup create "$SNAP" --table "0 $sz snapshot $CR_RD $CR_COW N 8" || return 1
	if ! mount -o noatime "/dev/mapper/$SNAP" "$RMNT" 2>"$CR_TMP/mount.err"; then
		echo "$1: ext4 does not mount: $(cat "$CR_TMP/mount.err")"
		dmsetup remove "$SNAP"
		return 1
	fi
}

# cr_judge_check WHAT OUTPUT RC: a qemu-img check result at a crash point.
# Returns 0 clean, 3 leaked clusters only (harmless after a crash), 1 for
# errors, which it prints under WHAT.
cr_judge_check() {
	case $3 in
	0) return 0 ;;
	3) return 3 ;;
	esac
	echo "$1: qemu-img check exit $3"
	echo "$2" | grep -v '^Leaked cluster' | head -30
	return 1
}

# One crash point: the RAM disk $CR_RD holds the log replayed to it (a
# checking job sets CR_RD, CR_COW, CR_TMP, RMNT, SNAP and DQ to its own).
# Prints one line; returns 0 clean, 3 leaks only, 1 failure.
CR_RD=/dev/ram2 CR_COW=/dev/ram3 CR_TMP=$W
cr_point() {
	local point=$1 mark=$2 out rc res=0 dev vout where=
	[ "${3#op-}" != "${3:-}" ] && where=" (inside ${3#op-})"
	cr_mount_replay "point $point$where" || return 1
	out=$(qemu-img check "$RMNT/img.qcow2" 2>&1); rc=$?
	if [ $rc = 2 ] && [ -n "$where" ] && cr_copied_only "$out" "$3"; then
		# the documented window of snapshot create/delete (and QEMU's):
		# refcounts on disk, COPIED flags not yet; the repair must fix it
		cr_copied=$((cr_copied + 1))
		qemu-img check -q -r all "$RMNT/img.qcow2" >/dev/null 2>&1
		out=$(qemu-img check "$RMNT/img.qcow2" 2>&1); rc=$?
	fi
	cr_judge_check "point $point$where (last mark $mark$(cr_label "$mark"))" "$out" "$rc"
	res=$?
	if [ $res != 1 ]; then
		if dev=$(cr_attach "$RMNT/img.qcow2" 2>"$CR_TMP/attach.err"); then
			vout=$("$CRASH_IO" verify "$dev" "$W/hist" --list "$W/list" \
				--point "$point" 2>&1) ||
				{ echo "point $point$where (last mark $mark$(cr_label "$mark")): data check failed"; res=1; }
			echo "$vout" | tail -n 11 > "$CR_TMP/verify.out"
			[ $res = 1 ] && cat "$CR_TMP/verify.out"
			lost=$(sed -n 's/.*bytes_lost \([0-9]*\).*/\1/p' "$CR_TMP/verify.out")
			cr_lost=$((cr_lost + ${lost:-0}))
			qcow2-dm detach "$DQ" ||
				{ echo "point $point$where: detach failed"; res=1; }
		else
			echo "point $point$where (last mark $mark): attach failed: $(cat "$CR_TMP/attach.err")"
			res=1
		fi
	fi
	umount "$RMNT" || res=1
	dmsetup remove "$SNAP" || res=1
	return $res
}

# The whole log replayed: what the machine had at the end, with no cut;
# the image must be clean, without leaks.
cr_final_clean() {
	local out
	lwlog replay /dev/ram1 /dev/ram2 --to "$(wc -l < "$W/list")" 2>/dev/null || true
	mount -o noatime /dev/ram2 "$RMNT" || return 1
	out=$(qemu-img check "$RMNT/img.qcow2" 2>&1) ||
		{ echo "$out"; umount "$RMNT"; return 1; }
	echo "$out" | grep -qi leaked && { echo "$out"; umount "$RMNT"; return 1; }
	umount "$RMNT"
}

# cr_job J: check every CRASH_JOBS-th point of $W/points from the J-th on,
# in order, replaying onto the job's own RAM disk from its last point; one
# line "KIND RC LOST COPIED" a point into $W/job$J/res, messages to out.
# CR_POINT_FN names the check of one point (cr_point).
cr_job() {
	local j=$1 prev=0 i=0 point mark kind rc
	CR_RD=/dev/ram$((2 + 2 * j)) CR_COW=/dev/ram$((3 + 2 * j)) CR_TMP=$W/job$j
	RMNT=$W/rmnt$j SNAP=$SNAP$j DQ=$DQ$j
	mkdir -p "$CR_TMP" "$RMNT"
	: > "$CR_TMP/res"
	while read -r point mark kind; do
		i=$((i + 1))
		[ $(((i - 1) % CRASH_JOBS)) = "$j" ] || continue
		# a long run's time limit: stop between points
		[ -n "${CR_DEADLINE:-}" ] && [ "$(date +%s)" -ge "$CR_DEADLINE" ] && break
		lwlog replay /dev/ram1 "$CR_RD" --from "$prev" --to "$point" || return 1
		prev=$point
		cr_lost=0 cr_copied=0
		"${CR_POINT_FN:-cr_point}" "$point" "$mark" "$kind"; rc=$?
		echo "$kind $rc $cr_lost $cr_copied" >> "$CR_TMP/res"
	done < "$W/points"
}

# Check the chosen crash points (from the mark CR_START, "start"),
# CRASH_JOBS at a time. Sets the cr_* counters.
cr_replay_all() {
	local j t0=$SECONDS kind rc lost copied fail=0
	local pids=()
	cr_tried=0; cr_clean=0; cr_leaks=0; cr_errors=0; cr_lost=0
	cr_nflush=0; cr_nrandom=0; cr_nop=0; cr_copied=0
	"$CRASH_IO" points "$W/list" "$W/hist" --start "${CR_START:-start}" --seed "$CRASH_SEED" \
		--max "$CRASH_POINTS" --random "$CRASH_RANDOM" > "$W/points" || return 1
	for ((j = 0; j < CRASH_JOBS; j++)); do
		mkdir -p "$W/job$j"
		(cr_job "$j") > "$W/job$j/out" 2>&1 &
		pids+=($!)
	done
	for j in "${!pids[@]}"; do
		wait "${pids[$j]}" || { echo "checking job $j failed"; fail=1; }
		cat "$W/job$j/out"
		while read -r kind rc lost copied; do
			cr_tried=$((cr_tried + 1))
			cr_lost=$((cr_lost + lost))
			cr_copied=$((cr_copied + copied))
			case $kind in
			flush) cr_nflush=$((cr_nflush + 1)) ;;
			op-*) cr_nop=$((cr_nop + 1)) ;;
			*) cr_nrandom=$((cr_nrandom + 1)) ;;
			esac
			case $rc in
			0) cr_clean=$((cr_clean + 1)) ;;
			3) cr_leaks=$((cr_leaks + 1)) ;;
			*) cr_errors=$((cr_errors + 1)) ;;
			esac
		done < "$W/job$j/res"
	done
	[ "$cr_tried" = "$(wc -l < "$W/points")" ] || [ -n "${CR_DEADLINE:-}" ] ||
		{ echo "only $cr_tried of $(wc -l < "$W/points") points checked"; fail=1; }
	echo "crash points tried: $cr_tried ($cr_nflush flush/FUA, $cr_nrandom random or end," \
	     "$cr_nop inside online snapshot create/delete, of which $cr_copied" \
	     "in the COPIED-flag window, repaired by qemu-img check -r all)" \
	     "of $(grep -c ' [^ ]*[FU][^ ]* ' "$W/list") flush/FUA entries;" \
	     "clean $cr_clean, leaks only $cr_leaks, errors $cr_errors; bytes lost $cr_lost;" \
	     "$((SECONDS - t0))s, $CRASH_JOBS checking jobs"
	[ "$fail" = 0 ] && [ "$cr_errors" = 0 ] && [ "$cr_lost" = 0 ]
}
