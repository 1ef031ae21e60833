# SPDX-License-Identifier: GPL-2.0
# Helpers for the dm_qcow2_core tests (sourced).
. "$(dirname "$0")/../lib/ktap.sh"

export DM_DISABLE_UDEV=1
WORK=${WORK:-/tmp/dmq-core}
rm -rf "$WORK" && mkdir -p "$WORK"

need() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null || ktap_skip_all "$c not available"
	done
	dmsetup targets | grep -q '^qcow2 ' || ktap_skip_all "qcow2 target not loaded"
}

# virtual size of an image, in 512-byte sectors
img_sectors() {
	echo $(( $(qemu-img info --output=json "$1" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])') / 512 ))
}

# attach NAME IMAGE [OPT ARGS...]: dmsetup create with the image's size
attach() {
	local name=$1 img=$2 table
	shift 2
	table="0 $(img_sectors "$img") qcow2 $img"
	[ $# -gt 0 ] && table="$table $# $*"
	dmsetup create "$name" --table "$table"
}

detach() { dmsetup remove "$1"; }

# A case's device name and scratch folder: dmq and $WORK, or their own
# (dmqN, $WORK/slotN) for a case run beside others with ktap_par.
DEV=dmq
W=$WORK
case_slot() {
	[ -n "${KTAP_SLOT:-}" ] || return 0
	DEV=dmq$KTAP_SLOT
	W=$WORK/slot$KTAP_SLOT
	rm -rf "$W" && mkdir -p "$W"
}

# dmesg lines since the last call (kernel warnings fail the VM run anyway)
klog_mark() { dmesg | wc -l > "$WORK/.klog"; }
klog_new() { dmesg | tail -n +$(( $(cat "$WORK/.klog") + 1 )); }

# mirror_write DEV REF OFF LEN: the same LEN random bytes at byte offset
# OFF of DEV (synced) and of the raw reference REF
mirror_write() {
	head -c "$4" /dev/urandom > "$WORK/.w" &&
	dd if="$WORK/.w" of="$1" bs=64k oflag=seek_bytes seek="$3" \
		conv=notrunc,fsync status=none &&
	dd if="$WORK/.w" of="$2" bs=64k oflag=seek_bytes seek="$3" \
		conv=notrunc status=none
}

# ext4_on_loop SIZE MNT: ext4 on a loop device over a sparse file in
# $WORK, mounted at MNT (images that need direct I/O live there); sets
# LOOP. ext4_on_loop_undo MNT unmounts and detaches it.
LOOP=
ext4_on_loop() {
	truncate -s "$1" "$WORK/fs.img" &&
		LOOP=$(losetup -f --show "$WORK/fs.img") && mkdir -p "$2" &&
		mkfs.ext4 -q -F "$LOOP" && mount "$LOOP" "$2"
}
ext4_on_loop_undo() {
	umount "$1" 2>/dev/null
	[ -n "$LOOP" ] && losetup -d "$LOOP"
	LOOP=
}
