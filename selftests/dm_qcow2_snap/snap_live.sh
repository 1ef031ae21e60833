# SPDX-License-Identifier: GPL-2.0
# The live-snapshot scenario shared by test_snap_live.sh and
# test_snap_layout.sh: internal snapshots of a live device while a writer
# keeps writing.
#
# Layout of the 8 MiB device: [0, 2M) region A, written only by the
# test between snapshots (its content at each snapshot is known);
# [4M, 6M) region B, overwritten by a background writer the whole time
# (its content at snapshot time is not deterministic and is not
# compared); the rest keeps the initial content. For one image kind: two
# snapshots taken under load, `snapshot list`, then after detach
# `qemu-img snapshot -l`, each snapshot's content read by qemu-img,
# the active image equal to the device, `qemu-img check` clean; then
# a delete, more writes, and the same checks again.
. "$(dirname "$0")/snap_lib.sh"

SIZE=$((8 * M))
A_LEN=$((2 * M)) B_OFF=$((4 * M)) B_LEN=$((2 * M))

writer_start() {	# writer_start DEV: random 64 KiB writes into region B
	rm -f "$WORK/stop"
	(
		RANDOM=7
		n=0
		while [ ! -e "$WORK/stop" ]; do
			dd if=/dev/urandom of="$1" bs=64k count=4 \
				seek=$(((B_OFF >> 16) + RANDOM % ((B_LEN >> 16) - 4))) \
				oflag=direct conv=notrunc status=none || exit 1
			n=$((n + 1))
			echo $n > "$WORK/writes"
		done
	) &
	WRITER=$!
	dq_pids+=("$WRITER")
	# the writer must really be running when the snapshot is taken
	for _ in $(seq 100); do [ -s "$WORK/writes" ] && break; sleep 0.1; done
}

writer_stop() {
	local rc
	touch "$WORK/stop"
	wait "$WRITER"; rc=$?
	[ $rc -eq 0 ] || echo "background writer failed ($rc)"
	echo "background writer: $(cat "$WORK/writes") writes"
	return $rc
}

# Everything but region B of snapshot TAG equals REF.
snap_matches() {	# snap_matches IMAGE TAG REF
	local out=$WORK/snap.raw
	snap_raw "$1" "$2" "$out" || return 1
	range_eq "$out" "$3" 0 "$B_OFF" &&
	range_eq "$out" "$3" $((B_OFF + B_LEN)) $((SIZE - B_OFF - B_LEN))
}

mkimage() {		# mkimage IMAGE CREATE-OPTIONS [-c]: from the initial content
	local src=$WORK/init.raw
	rm -f "$1"
	qemu-img create -q -f raw "$src" $SIZE &&
	qemu-io -f raw -c "write -P 0x31 0 $SIZE" "$src" >/dev/null &&
	qemu-img convert $3 -O qcow2 -o "$2" "$src" "$1"
}

phase1() {		# snapshots s1, s2 under load; leaves $WORK/cur.raw
	local img=$1 name=$2 rc=0
	rnd "$WORK/a1" "$A_LEN"; rnd "$WORK/a2" $((A_LEN / 2)); rnd "$WORK/a3" $((A_LEN / 8))
	cp "$WORK/init.raw" "$WORK/ref.raw"
	dq_attach "$img" "$name" || return 1
	put "$DEV" "$WORK/a1" 0 && splice "$WORK/ref.raw" "$WORK/a1" 0 || rc=1
	writer_start "$DEV"
	snap_msg "$name" create s1 || { echo "create s1 failed"; rc=1; }
	cp "$WORK/ref.raw" "$WORK/ref-s1.raw"
	put "$DEV" "$WORK/a2" 0 && splice "$WORK/ref.raw" "$WORK/a2" 0 || rc=1
	snap_msg "$name" create s2 || { echo "create s2 failed"; rc=1; }
	cp "$WORK/ref.raw" "$WORK/ref-s2.raw"
	put "$DEV" "$WORK/a3" $((A_LEN / 4)) &&
		splice "$WORK/ref.raw" "$WORK/a3" $((A_LEN / 4)) || rc=1
	writer_stop || rc=1
	snap_msg "$name" list > "$WORK/list" || rc=1
	cat "$WORK/list"
	awk '{ print $2, $3 }' "$WORK/list" | grep -qx "s1 $SIZE" &&
	awk '{ print $2, $3 }' "$WORK/list" | grep -qx "s2 $SIZE" ||
		{ echo "snapshot list lacks s1 or s2"; rc=1; }
	cp "$DEV" "$WORK/cur.raw" || rc=1
	range_eq "$WORK/cur.raw" "$WORK/ref.raw" 0 "$B_OFF" || rc=1
	dq_detach "$name" || return 1
	return $rc
}

verify_image() {	# verify_image IMAGE TAGS...: listed, contents, check
	local img=$1 t rc=0
	shift
	check_clean "$img" || rc=1
	for t in "$@"; do
		listed "$img" "$t" || { echo "qemu-img does not list $t"; rc=1; }
		snap_matches "$img" "$t" "$WORK/ref-$t.raw" || rc=1
	done
	qemu-img compare -q -f qcow2 -F raw "$img" "$WORK/cur.raw" ||
		{ echo "active image differs from the device"; rc=1; }
	return $rc
}

phase2() {		# delete s1 on the live device, write, check again
	local img=$1 name=$2 rc=0
	dq_attach "$img" "$name" || return 1
	snap_msg "$name" delete s1 || { echo "delete s1 failed"; rc=1; }
	snap_msg "$name" list | grep -qw s1 && { echo "s1 still listed"; rc=1; }
	rnd "$WORK/a4" $((A_LEN / 2))
	put "$DEV" "$WORK/a4" $((A_LEN / 4 + 4 * K)) || rc=1
	cp "$DEV" "$WORK/cur.raw" || rc=1
	dq_detach "$name" || return 1
	listed "$img" s1 && { echo "qemu-img still lists s1"; rc=1; }
	verify_image "$img" s2 || rc=1
	return $rc
}

live() {		# live CREATE-OPTIONS [-c]
	local img=$WORK/live.qcow2 name
	name=$(dq_name)
	mkimage "$img" "$1" "$2" || return 1
	dq_kmark
	phase1 "$img" "$name" || return 1
	verify_image "$img" s1 s2 || return 1
	phase2 "$img" "$name" || return 1
	! dq_kbad
}

