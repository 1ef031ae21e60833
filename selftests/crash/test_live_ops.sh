#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Power cuts inside the live chain operations of qcow2-dm: an external
# snapshot, a merge and a backup of a device that is being written.
#
# Recorded as in test_power_cut.sh (lib.sh): ext4 on dm-log-writes holds
# every file of the chain, so each crash point is what a power cut would
# have left of all of them at once. Workload phases (crash_io) alternate
# with the operations, each recorded whole in an "op-" window:
#   A  on img.qcow2
#   op-external   qcow2-dm snapshot --external ext.qcow2
#   B  on ext.qcow2 -> img.qcow2
#   op-merge      qcow2-dm merge (ext.qcow2 committed into img.qcow2)
#   C  on img.qcow2
#   op-backup     qcow2-dm backup --bitmap lo to bak.qcow2
#   D  on img.qcow2
#   op-incremental  qcow2-dm backup --bitmap lo --incremental bak.qcow2
#                 to inc.qcow2 (only what bitmap lo marks)
#   E  on img.qcow2
# img.qcow2 carries an enabled dirty bitmap "lo" throughout: the target
# stores it at each suspend, the backup resets it in the frozen image, so
# every crash point also checks those writes (qemu-img check counts the
# bitmap's clusters; the attach loads it, or finds it in use).
# At every crash point (a spread of LO_WINDOW_POINTS of the flush/FUA and
# random points inside each window, CRASH_POINTS of the others):
#   - every image file that the user was told exists (before its
#     operation completed it may be half made) passes qemu-img check
#     (leaks allowed);
#   - inside an operation, qcow2-dm recover (its state file is next to
#     the image; attach refuses the chain until then) names the live top;
#   - the chain that was live at the point attaches and holds, sector by
#     sector, a version legal at the last completed flush; inside a window
#     that is the chain from before the operation (the workload pauses
#     during an operation, and none of them changes what that chain reads);
#   - once the backup has completed, bak.qcow2 holds the content from the
#     instant it was taken; once the incremental one has, so does the
#     chain inc.qcow2 -> bak.qcow2 (the bitmap missed no write of D).
. "$(dirname "$0")/lib.sh"

LO_OPS=${LO_OPS:-24}
LO_WINDOW_POINTS=${LO_WINDOW_POINTS:-12}	# per operation, 0 = all
DQB=cr$$bak

lo_work() {			# lo_work DEV SEED
	"$CRASH_IO" work "$1" "$W/hist" --lw "$LW" --seed "$2" \
		--ops "$LO_OPS" --cluster "$CRASH_CLUSTER"
}

# lo_op NAME TOP COMMAND...: run one operation in its window; TOP is the
# chain's top from its end on ("-" for no change).
lo_op() {
	local name=$1 top=$2 m
	shift 2
	dmsetup message "$LW" 0 mark "op-$name" || return 1
	"$@" >/dev/null || { echo "$name: $* failed"; return 1; }
	cr_mark "after-$name" || return 1
	m=$(tail -n 1 "$W/labels" | cut -d' ' -f1)
	[ "$top" = - ] || echo "${m#c} $top" >> "$W/tops"
	echo "${m#c} $name" >> "$W/ends"
}

lo_record() {
	local dev
	: > "$W/labels"
	echo "0 img.qcow2" > "$W/tops"
	: > "$W/ends"
	cr_record_start || return 1
	# a dirty bitmap the target stores at every suspend, the backup resets
	qemu-img bitmap --add "$MNT/img.qcow2" lo || return 1
	sync -f "$MNT/img.qcow2" || return 1

	dev=$(cr_attach "$MNT/img.qcow2") || return 1
	lo_work "$dev" "$CRASH_SEED" || return 1
	lo_op external ext.qcow2 qcow2-dm snapshot "$DQ" --external "$MNT/ext.qcow2" || return 1
	lo_work "$dev" "$((CRASH_SEED + 100))" || return 1
	lo_op merge img.qcow2 qcow2-dm merge "$DQ" || return 1
	lo_work "$dev" "$((CRASH_SEED + 200))" || return 1
	cr_mark before-backup || return 1
	tail -n 1 "$W/labels" | cut -d' ' -f1 > "$W/bak_mark"
	lo_op backup - qcow2-dm backup "$DQ" "$MNT/bak.qcow2" --bitmap lo || return 1
	lo_work "$dev" "$((CRASH_SEED + 300))" || return 1
	cr_mark before-incremental || return 1
	tail -n 1 "$W/labels" | cut -d' ' -f1 > "$W/inc_mark"
	lo_op incremental - qcow2-dm backup "$DQ" "$MNT/inc.qcow2" --bitmap lo \
		--incremental "$MNT/bak.qcow2" || return 1
	lo_work "$dev" "$((CRASH_SEED + 400))" || return 1
	qcow2-dm detach "$DQ" || return 1
	cr_mark after-detach || return 1
	cr_record_finish
}

lo_top() {			# the chain's top from mark cN on
	awk -v n="${1#c}" '$1 <= n { t = $2 } END { print t }' "$W/tops"
}

lo_done() {			# lo_done MARK OP: OP completed at or before MARK
	[ "$1" != none ] &&
		awk -v n="${1#c}" -v op="$2" '$2 == op && $1 <= n { f = 1 } END { exit !f }' "$W/ends"
}

# lo_check FILE: qemu-img check; 0 clean or leaks only, else prints why.
lo_check() {
	local out rc
	out=$(qemu-img check "$1" 2>&1); rc=$?
	[ $rc = 0 ] || [ $rc = 3 ] && return 0
	echo "$(basename "$1"): qemu-img check exit $rc"
	echo "$out" | grep -v '^Leaked cluster' | head -20
	return 1
}

# lo_verify IMAGE MARK NAME [--ro]: attach IMAGE as NAME, verify its data
# against the history at MARK, detach.
lo_verify() {
	local dev vout res=0 lost
	dev=$(qcow2-dm attach "$1" "$3" ${4:+"$4"} 2>"$W/attach.err") ||
		{ echo "$(basename "$1"): attach failed: $(cat "$W/attach.err")"; return 1; }
	vout=$("$CRASH_IO" verify "$dev" "$W/hist" --last-mark "$2" 2>&1) ||
		{ echo "$(basename "$1"): data check failed"; echo "$vout" | tail -n 11; res=1; }
	lost=$(echo "$vout" | sed -n 's/.*bytes_lost \([0-9]*\).*/\1/p' | tail -n 1)
	lo_plost=$((lo_plost + ${lost:-0}))
	qcow2-dm detach "$3" || { echo "$(basename "$1"): detach failed"; res=1; }
	return $res
}

# One crash point, replayed onto /dev/ram2 and mounted where it was
# recorded (ext.qcow2 names its backing file by absolute path).
lo_point() {
	local point=$1 mark=$2 kind=$3 res=0 f base top out lost
	RMNT=$MNT cr_mount_replay "point $point" || return 1
	out=$(
		lo_plost=0
		for f in "$MNT"/*.qcow2; do
			base=$(basename "$f")
			case $base in
			ext.qcow2) lo_done "$mark" external || continue ;;
			bak.qcow2) lo_done "$mark" backup || continue ;;
			inc.qcow2) lo_done "$mark" incremental || continue ;;
			esac
			lo_check "$f" || exit 1
		done
		top=$(lo_top "$mark")
		# Cut inside an operation: its state file is next to the image
		# and attach refuses the chain; qcow2-dm recover, as after a
		# reboot, must name a live top that holds the data (the
		# workload pauses during operations, so the same data).
		sf=$(ls "$MNT"/.*.qcow2-dm-state 2>/dev/null | head -n 1)
		if [ -n "$sf" ]; then
			f=${sf##*/}; f=${f#.}; f=${f%.qcow2-dm-state}
			out=$(qcow2-dm recover "$MNT/$f" 2>&1) ||
				{ echo "recover $f failed: $out"; exit 1; }
			top=$(sed -n 's/^live top: //p' <<< "$out" | tail -n 1)
			[ -n "$top" ] || { echo "recover $f named no live top: $out"; exit 1; }
			top=${top##*/}
			echo "recovered 1"
		fi
		lo_verify "$MNT/$top" "$mark" "$DQ" || exit 1
		if lo_done "$mark" backup; then
			lo_verify "$MNT/bak.qcow2" "$(cat "$W/bak_mark")" "$DQB" --ro || exit 1
		fi
		if lo_done "$mark" incremental; then
			lo_verify "$MNT/inc.qcow2" "$(cat "$W/inc_mark")" "$DQB" --ro || exit 1
		fi
		echo "lost $lo_plost"
	) || res=1
	if [ $res = 1 ]; then
		echo "point $point (last mark $mark$(cr_label "$mark"), $kind):"
		echo "$out" | grep -v '^lost \|^recovered 1$'
	fi
	lost=$(echo "$out" | sed -n 's/^lost //p')
	lo_lost=$((lo_lost + ${lost:-0}))
	grep -q '^recovered 1$' <<< "$out" && lo_recovered=$((lo_recovered + 1))
	umount "$MNT" || res=1
	dmsetup remove "$SNAP" || res=1
	return $res
}

# LO_WINDOW_POINTS points of each window, evenly spread, first and last kept.
lo_spread() {
	awk -v k="$LO_WINDOW_POINTS" '
		NR == FNR { if ($3 ~ /^op-/) n[$3]++; next }
		$3 !~ /^op-/ || k == 0 || n[$3] <= k { print; next }
		{ i = seen[$3]++; m = n[$3] - 1 }
		i == 0 || int(i * (k - 1) / m) != int((i - 1) * (k - 1) / m)
	' "$1" "$1"
}

lo_replay_all() {
	local prev=0 point mark kind t0=$SECONDS nop=0
	lo_tried=0; lo_errors=0; lo_lost=0; lo_recovered=0
	"$CRASH_IO" points "$W/list" "$W/hist" --start start --seed "$CRASH_SEED" \
		--max "$CRASH_POINTS" --random "$CRASH_RANDOM" > "$W/all_points" || return 1
	lo_spread "$W/all_points" > "$W/points"
	while read -r point mark kind; do
		lwlog replay /dev/ram1 /dev/ram2 --from "$prev" --to "$point" || return 1
		prev=$point
		lo_tried=$((lo_tried + 1))
		case $kind in op-*) nop=$((nop + 1)) ;; esac
		lo_point "$point" "$mark" "$kind" || lo_errors=$((lo_errors + 1))
	done < "$W/points"
	echo "crash points tried: $lo_tried of $(wc -l < "$W/all_points")" \
	     "($nop inside external snapshot, merge, backup" \
	     "or incremental: $(grep -c ' op-external$' "$W/points")," \
	     "$(grep -c ' op-merge$' "$W/points"), $(grep -c ' op-backup$' "$W/points")," \
	     "$(grep -c ' op-incremental$' "$W/points"));" \
	     "$lo_recovered recovered with qcow2-dm recover;" \
	     "errors $lo_errors; bytes lost $lo_lost; $((SECONDS - t0))s"
	[ "$lo_errors" = 0 ] && [ "$lo_lost" = 0 ]
}

lo_cleanup() {
	qcow2-dm detach "$DQB" >/dev/null 2>&1
	cr_cleanup
}
trap lo_cleanup EXIT

ktap_header
ktap_plan 2
setup_rc=0
cr_setup || setup_rc=$?
if [ $setup_rc = 4 ]; then
	ktap_skip "record snapshot, merge and backup of a written device" \
		"dm-log-writes, dm-snapshot or brd missing"
	ktap_skip "every file and the live chain at every crash point" "no log"
	ktap_finish
fi
[ $setup_rc = 0 ] || { ktap_fail "setup" "RAM disks"; ktap_finish; }
ktap_print "seed $CRASH_SEED (rerun: CRASH_SEED=$CRASH_SEED), $LO_OPS operations per phase, cluster $CRASH_CLUSTER," \
	"size $CRASH_SIZE, at most ${CRASH_POINTS/#0/all} points + $CRASH_RANDOM random"
ktap_run "record snapshot, merge and backup of a written device" lo_record
ktap_run "every file and the live chain at every crash point" lo_replay_all
ktap_finish
