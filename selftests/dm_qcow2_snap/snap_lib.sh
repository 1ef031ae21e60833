# SPDX-License-Identifier: GPL-2.0
# Helpers of the dm_qcow2_snap suite, on top of the dm_qcow2 suite's lib.sh.
. "$(dirname "$0")/../dm_qcow2/lib.sh"

K=1024 M=$((1 << 20))

# snap_msg NAME ARGS...: dmsetup message NAME 0 snapshot ARGS...
snap_msg() {
	local name=$1
	shift
	dmsetup message "$name" 0 snapshot "$@"
}

# put DEV FILE OFF: write FILE at byte OFF of DEV, direct I/O
put() {
	dd if="$2" of="$1" bs=64k seek="$3" oflag=direct,seek_bytes \
		conv=notrunc status=none
}

# splice REF FILE OFF: the same into a reference file
splice() {
	dd if="$2" of="$1" bs=64k seek="$3" oflag=seek_bytes conv=notrunc \
		status=none
}

# rnd FILE LEN: LEN random bytes
rnd() { head -c "$2" /dev/urandom > "$1"; }

# range_eq A B OFF LEN: bytes [OFF, OFF+LEN) of files A and B are equal
range_eq() {
	cmp -n "$4" -i "$3:$3" "$1" "$2" ||
		{ echo "$1 and $2 differ in [$3, +$4)"; return 1; }
}

# snap_raw IMAGE TAG OUT: the snapshot's content as raw
snap_raw() {
	qemu-img convert -l "snapshot.name=$2" -O raw "$1" "$3" ||
		{ echo "cannot read snapshot $2 of $1"; return 1; }
}

# listed IMAGE TAG: qemu-img snapshot -l shows TAG
listed() { qemu-img snapshot -l "$1" | awk 'NR > 2 { print $2 }' | grep -qx "$2"; }

# qemu-img check exit 0 and no leaks
check_clean() { dq_check_clean "$1"; }
