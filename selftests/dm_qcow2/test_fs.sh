#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# A file system on top: mkfs.ext4, write a tree, unmount, fsck -f clean,
# detach, qemu-img check clean, re-attach, mount, same content by checksum.
. "$(dirname "$0")/lib.sh"

command -v mkfs.ext4 >/dev/null || ktap_skip_all "no mkfs.ext4"
SIZE=$((256 << 20))

fs() {
	local img=$WORK/fs.qcow2 mnt=$WORK/mnt name rc=0 i
	qemu-img create -q -f qcow2 "$img" $SIZE || return 1
	mkdir -p "$mnt"
	name=$(dq_name)
	dq_attach "$img" "$name" || return 1
	mkfs.ext4 -q -F "$DEV" || return 1
	mount "$DEV" "$mnt" || return 1
	# a tree: the project's sources plus files of many sizes
	cp -a "$TOP/tools" "$mnt/tools" 2>/dev/null
	for i in $(seq 0 40); do
		head -c $(((i * i * 7919) % (3 << 20) + 1)) /dev/urandom > "$mnt/f$i"
	done
	mkdir -p "$mnt/d/e/f" && echo deep > "$mnt/d/e/f/g"
	(cd "$mnt" && find . -type f -print0 | sort -z | xargs -0 sha256sum) > "$WORK/sums"
	umount "$mnt" || return 1
	fsck.ext4 -f -n "$DEV" || { echo "fsck found problems"; rc=1; }
	dq_detach "$name" || return 1
	dq_check_clean "$img" || rc=1
	dq_attach "$img" "$name" || return 1
	mount "$DEV" "$mnt" || return 1
	(cd "$mnt" && sha256sum --quiet -c "$WORK/sums") || { echo "content changed"; rc=1; }
	umount "$mnt" || rc=1
	dq_detach "$name" || rc=1
	dq_check_clean "$img" || rc=1
	return $rc
}

ktap_header
ktap_plan 1
ktap_run "ext4 on the device survives detach and re-attach" fs
ktap_finish
