# SPDX-License-Identifier: GPL-2.0
# Shared helpers of the dm_qcow2 suite (sourced by each test).
#
# Every test attaches images through `qcow2-dm` and the dm-qcow2 target.
# DQ_STANDIN=nbd runs the same checks through qemu-nbd instead: that only
# proves the harness itself (used while the target's I/O path was being
# written); the suite's verdict is always the dm-qcow2 run.
. "$(dirname "$0")/../lib/ktap.sh"

DQ_STANDIN=${DQ_STANDIN:-}
DQ_TMP=${DQ_TMP:-/tmp}
WORK=$(mktemp -d "$DQ_TMP/dmq.XXXXXX")
dq_names=()
dq_pids=()
dq_mounts=()
dq_seq=0

dq_base_mount=

dq_cleanup() {
	local m n p
	for m in "${dq_mounts[@]}"; do umount "$m" 2>/dev/null; done
	for p in "${dq_pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	for n in "${dq_names[@]}"; do dq_detach "$n" >/dev/null 2>&1; done
	# ktap_run runs steps in subshells: also catch what they left behind
	if [ "$DQ_STANDIN" != nbd ]; then
		for n in $(qcow2-dm list 2>/dev/null | awk '{ print $1 }' | grep "^dq$$-"); do
			qcow2-dm detach "$n" >/dev/null 2>&1
		done
	fi
	[ -n "$dq_base_mount" ] && umount "$dq_base_mount" 2>/dev/null
	rm -rf "$WORK"
}
trap dq_cleanup EXIT

# Where qemu-nbd stand-in devices are recorded: name -> /dev/nbdN
dq_nbd_dev() { cat "$WORK/.nbd.$1" 2>/dev/null; }

dq_need_nbd() {
	[ -e /dev/nbd0 ] || modprobe nbd nbds_max=16 >/dev/null 2>&1
}

# dq_attach IMAGE NAME [qcow2-dm attach options]: sets DEV to the device.
# (Not for $(...): it records the name for cleanup in this shell.)
dq_attach() {
	local img=$1 name=$2 dev i
	shift 2
	if [ "$DQ_STANDIN" = nbd ]; then
		dq_need_nbd
		local ro=()
		for o in "$@"; do [ "$o" = --ro ] && ro=(-r); done
		for i in $(seq 0 15); do
			[ "$(cat /sys/block/nbd$i/size 2>/dev/null)" = 0 ] || continue
			if qemu-nbd -c /dev/nbd$i -f qcow2 "${ro[@]}" "$img" >&2; then
				dev=/dev/nbd$i
				break
			fi
		done
		[ -n "${dev:-}" ] || { echo "qemu-nbd attach failed" >&2; return 1; }
		for i in $(seq 50); do
			[ "$(cat /sys/block/${dev#/dev/}/size)" != 0 ] && break
			sleep 0.1
		done
		echo "$dev" > "$WORK/.nbd.$name"
	else
		dev=$(qcow2-dm attach "$img" "$name" "$@") || return 1
	fi
	dq_names+=("$name")
	DEV=$dev
}

dq_detach() {
	local name=$1 dev
	if [ "$DQ_STANDIN" = nbd ]; then
		dev=$(dq_nbd_dev "$name")
		[ -n "$dev" ] || return 1
		qemu-nbd -d "$dev" >/dev/null || return 1
		rm -f "$WORK/.nbd.$name"
		# the server exits asynchronously: wait for its image lock to go
		for _ in $(seq 50); do
			pgrep -f "qemu-nbd -c $dev " >/dev/null || break
			sleep 0.1
		done
	else
		qcow2-dm detach "$name" || return 1
	fi
	local keep=() n
	for n in "${dq_names[@]}"; do [ "$n" != "$name" ] && keep+=("$n"); done
	dq_names=("${keep[@]}")
}

# Flush sequences a dm-qcow2 device ran, and how many held its lock.
dq_flush_counts() {	# NAME -> "FLUSHES LOCKED"
	dmsetup status "$1" |
		sed -n 's/.* flushes \([0-9]*\) locked_flushes \([0-9]*\) .*/\1 \2/p'
}

dq_name() { dq_seq=$((dq_seq + 1)); echo "dq$$-$dq_seq"; }

# qemu-img check must report neither errors nor leaks.
dq_check_clean() {
	local out rc
	out=$(qemu-img check "$1" 2>&1); rc=$?
	if [ $rc -ne 0 ] || ! echo "$out" | grep -q "No errors were found"; then
		echo "qemu-img check $1 (rc $rc):"; echo "$out"
		return 1
	fi
	if echo "$out" | grep -qi "leaked"; then
		echo "qemu-img check $1 reports leaks:"; echo "$out"
		return 1
	fi
	return 0
}

# Device bytes equal to `qemu-img convert -O raw` of the image (and size).
dq_cmp_raw() {
	local dev=$1 ref=$2 dsize rsize
	dsize=$(blockdev --getsize64 "$dev") || return 1
	rsize=$(stat -c %s "$ref")
	if [ "$dsize" != "$rsize" ]; then
		echo "size differs: device $dsize, reference $rsize"
		return 1
	fi
	cmp "$dev" "$ref"
}

# Run a step and record it as one KTAP result: dq_step NAME CMD...
dq_step() { ktap_run "$@"; }

# Lines the kernel logged since mark (dq_kmark sets it).
dq_kmark() { dq_klines=$(dmesg | wc -l); }
dq_knew() { dmesg | tail -n +$((dq_klines + 1)); }
dq_kbad() { dq_knew | grep -E 'WARNING|BUG|Oops|Call Trace|KASAN|UBSAN|lockdep'; }

# A scratch ext4 on a RAM disk, for direct I/O (tmpfs has none). Call it
# directly, not in $(...): sets EXT4_DIR.
dq_ext4_dir() {
	local mnt=$WORK/ext4
	EXT4_DIR=$mnt
	[ -n "$dq_base_mount" ] && return 0
	grep -q '^brd ' /proc/modules || modprobe brd rd_nr=1 rd_size=${1:-524288} || return 1
	mkfs.ext4 -q -F /dev/ram0 >/dev/null || return 1
	mkdir -p "$mnt" && mount /dev/ram0 "$mnt" || return 1
	dq_base_mount=$mnt
}

# Writer tests (backup, external snapshot, bitmaps) use the caller's pat,
# NBLK, BLK and DEV: the pattern is NBLK blocks of BLK bytes, block i
# being byte (i % 251) + 1, tagged "blk i".
dq_make_pattern() {
	python3 - "$pat" "$NBLK" "$BLK" <<'EOF'
import sys
path, n, bs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "wb") as f:
    for i in range(n):
        f.write((b"blk %08d " % i).ljust(bs, bytes([i % 251 + 1])))
EOF
}

# dq_writer: the pattern onto $DEV block by block, each acknowledged
# before the next; $WORK/writer.pos holds the last block acknowledged. A
# short pause after each keeps it going through a live operation even on
# a fast host (256 blocks: 5 s at least).
dq_writer() {
	local i
	echo -1 > "$WORK/writer.pos"
	for i in $(seq 0 $((NBLK - 1))); do
		dd if="$pat" of="$DEV" bs="$BLK" skip="$i" seek="$i" count=1 \
			oflag=direct conv=notrunc status=none || return 1
		echo "$i" > "$WORK/writer.pos"
		sleep 0.02
	done
}

# dq_live CMD...: run CMD, a live operation, and fail unless the writer
# (dq_writer, or a test's own that keeps $WORK/writer.pos) acknowledged at
# least one block while it ran: the operation ran live, not after the
# writes ended
dq_live() {
	local p0 p1 rc
	p0=$(cat "$WORK/writer.pos" 2>/dev/null || echo -1)
	"$@"
	rc=$?
	p1=$(cat "$WORK/writer.pos" 2>/dev/null || echo -1)
	echo "writer: block $p0 acknowledged before, block $p1 after ($((p1 - p0)) during)"
	[ $rc = 0 ] || return $rc
	[ "$p1" -gt "$p0" ] || { echo "no write acknowledged during '$*'"; return 1; }
}

# dq_prefix_of_pattern RAW WHAT: the first NBLK blocks of the raw file RAW
# are blocks 0..k-1 of the pattern, then zeros (what WHAT held at an
# instant while dq_writer ran over zeros)
dq_prefix_of_pattern() {
	python3 - "$1" "$pat" "$NBLK" "$BLK" "$2" <<'EOF'
import sys
img, pat, n, bs, what = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
a, p = open(img, "rb"), open(pat, "rb")
k = None
for i in range(n):
    b, e = a.read(bs), p.read(bs)
    if b == e and k is None:
        continue
    if b != bytes(bs):
        sys.exit("block %d is neither the pattern nor zero" % i)
    if k is None:
        k = i
print("%s holds the first %s of %d blocks" % (what, k if k is not None else n, n))
EOF
}
