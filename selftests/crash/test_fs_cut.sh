#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Power cuts under a file system, generic/482 style: ext4 (online
# discard) on a dm-qcow2 device, fs_stress.py's processes creating,
# appending, syncing, renaming and removing files while every write under
# the image is logged. At each crash point (every flush/FUA point after
# the file system was made, or CRASH_POINTS of them, plus CRASH_RANDOM
# random ones), replayed as in lib.sh: qemu-img check, the image attaches,
# the guest's ext4 mounts (its journal recovers), every file synced before
# the point holds its bytes and no file holds bytes it never had
# (fs_stress.py check), e2fsck -fn is clean after the recovery, and the
# image detaches.
#   CRASH_FS_OPS   operations per fs_stress process (40)
# The other CRASH_* variables as in lib.sh (CRASH_THREADS processes).
CRASH_SIZE=${CRASH_SIZE:-64M}
. "$(dirname "$0")/lib.sh"

FS_STRESS=$HERE/fs_stress.py
CRASH_FS_OPS=${CRASH_FS_OPS:-40}
INNER=$W/inner

fs_record() {
	local dev
	cr_record_start || return 1
	dev=$(cr_attach "$MNT/img.qcow2") || return 1
	# mkfs discards the whole device: dm-qcow2's discard path is logged too
	mkfs.ext4 -q -F "$dev" || return 1
	mkdir -p "$INNER" "$W/ops"
	# online discard: freed blocks become qcow2 discards mid-workload
	mount -o noatime,discard "$dev" "$INNER" || return 1
	sync -f "$INNER" || return 1
	dmsetup message "$LW" 0 mark fs-ready || return 1
	"$FS_STRESS" work "$INNER" "$W/ops" --lw "$LW" --seed "$CRASH_SEED" \
		--procs "$CRASH_THREADS" --ops "$CRASH_FS_OPS" || return 1
	umount "$INNER" || return 1
	qcow2-dm detach "$DQ" || return 1
	dmsetup message "$LW" 0 mark fs-done || return 1
	cr_record_finish
}

# One crash point (lib.sh's cr_job calls it with the job's devices set);
# $2, the last mark before it, is fs_stress's (crash_io knows only its own).
fs_point() {
	local point=$1 out rc res=0 dev inner=$CR_TMP/inner
	set -- "$1" "$(awk -v p="$point" '$1 >= p { exit } $2 ~ /M/ { m = $5 }
		END { print m ? m : "none" }' "$W/list")"
	cr_mount_replay "point $point (the host's)" || return 1
	out=$(qemu-img check "$RMNT/img.qcow2" 2>&1); rc=$?
	cr_judge_check "point $point (last mark $2)" "$out" "$rc"
	res=$?
	if [ $res != 1 ] && ! dev=$(cr_attach "$RMNT/img.qcow2" 2>"$CR_TMP/attach.err"); then
		echo "point $point: attach failed: $(cat "$CR_TMP/attach.err")"
		res=1
	elif [ $res != 1 ]; then
		mkdir -p "$inner"
		if ! mount -o noatime "$dev" "$inner" 2>"$CR_TMP/mount.err"; then
			echo "point $point (last mark $2): the guest's ext4 does not mount: $(cat "$CR_TMP/mount.err")"
			res=1
		else
			out=$("$FS_STRESS" check "$inner" "$W/ops" "$W/list" "$point" 2>&1) ||
				{ echo "point $point (last mark $2): files wrong"; echo "$out"; res=1; }
			echo "$out" | tail -1 >> "$CR_TMP/files"
			umount "$inner" || { echo "point $point: umount failed"; res=1; }
			out=$(e2fsck -fn "$dev" 2>&1) ||
				{ echo "point $point (last mark $2): e2fsck -fn after recovery:"
				  echo "$out" | head -20; res=1; }
		fi
		qcow2-dm detach "$DQ" || { echo "point $point: detach failed"; res=1; }
	fi
	umount "$RMNT" || res=1
	dmsetup remove "$SNAP" || res=1
	return $res
}

# How many synced files the checks found in place, over all points.
fs_files_summary() {
	cat "$W"/job*/files 2>/dev/null | awk '
		{ for (i = 1; i < NF; i++) if ($(i + 1) == "synced") s += $i
		  for (i = 1; i < NF; i++) if ($(i + 1) == "present,") p += $i
		  n++ }
		END { printf "%d points: %d synced files checked exact, %d files present checked\n", n, s, p }'
}

ktap_header
ktap_plan 3
setup_rc=0
cr_setup || setup_rc=$?
if [ $setup_rc = 4 ]; then
	ktap_skip "record fs_stress on ext4 on dm-qcow2" "dm-log-writes, dm-snapshot or brd missing"
	ktap_skip "file system and files at every crash point" "no log"
	ktap_skip "the recorded image is clean at the end" "no log"
	ktap_finish
fi
[ $setup_rc = 0 ] || { ktap_fail "setup" "RAM disks"; ktap_finish; }
ktap_print "seed $CRASH_SEED (rerun: CRASH_SEED=$CRASH_SEED), $CRASH_THREADS processes of" \
	"$CRASH_FS_OPS operations, cluster $CRASH_CLUSTER, size $CRASH_SIZE," \
	"at most ${CRASH_POINTS/#0/all} points + $CRASH_RANDOM random, $CRASH_JOBS checking jobs"
ktap_run "record fs_stress on ext4 on dm-qcow2" fs_record
CR_POINT_FN=fs_point CR_START=fs-ready
every_point() { cr_replay_all && fs_files_summary; }
ktap_run "file system and files at every crash point" every_point
ktap_run "the recorded image is clean at the end" cr_final_clean
ktap_finish
