#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Writing under memory pressure (review finding: the I/O path must
# allocate as the block layer requires). ext4 on a dm-qcow2 device with a
# small metadata cache, written with buffered I/O by fio inside a memory
# cgroup of 40 MiB: the writer's own reclaim writes its dirty pages back
# through the target, whose workers allocate under memalloc_noio_save()
# and take the records a request needs to progress without sleeping. The
# data verifies, fsck and qemu-img check are clean, and nothing hangs (a
# hung task or lockdep report fails the suite through the kernel log).
. "$(dirname "$0")/lib.sh"

need qemu-img dmsetup fio mkfs.ext4 fsck.ext4
DEV=/dev/mapper/dmmc
MNT=$WORK/mnt
CG=/sys/fs/cgroup
cleanup() {
	umount "$MNT" 2>/dev/null
	dmsetup remove dmmc 2>/dev/null
	rmdir "$CG/dmq-memcg" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

if [ ! -f "$CG/cgroup.controllers" ]; then
	mount -t cgroup2 none "$CG" 2>/dev/null
fi
grep -qw memory "$CG/cgroup.controllers" 2>/dev/null ||
	ktap_skip_all "no cgroup v2 memory controller"
echo +memory > "$CG/cgroup.subtree_control" 2>/dev/null
mkdir -p "$CG/dmq-memcg" && echo $((40 << 20)) > "$CG/dmq-memcg/memory.max" ||
	ktap_skip_all "cannot make a memory cgroup"

ktap_header
ktap_plan 4

img=$WORK/mc.qcow2
qemu-img create -q -f qcow2 -o cluster_size=4096 "$img" 1G
attach dmmc "$img" cache_mb 1 || { echo "Bail out! attach"; exit 1; }
mkfs.ext4 -q -F "$DEV" && mkdir -p "$MNT" && mount "$DEV" "$MNT" ||
	{ echo "Bail out! ext4 on the device"; exit 1; }

out=$( (echo $BASHPID > "$CG/dmq-memcg/cgroup.procs" &&
	exec fio --name=memcg --directory="$MNT" --rw=randwrite --bs=16k \
		--size=96M --nrfiles=4 --numjobs=2 --ioengine=psync \
		--verify=crc32c --verify_fatal=1 --do_verify=1 --verify_state_save=0 --randrepeat=1 \
		--fsync=256 --output-format=terse) 2>&1)
rc=$?
events=$(sed -n 's/^oom_kill //p' "$CG/dmq-memcg/memory.events")
if [ $rc = 0 ]; then
	ktap_ok "buffered writes in a 40 MiB cgroup verify (oom kills: ${events:-0})"
else
	ktap_fail "buffered writes in a 40 MiB cgroup verify" "exit $rc: $(tail -3 <<< "$out")"
fi
peak=$(cat "$CG/dmq-memcg/memory.peak" 2>/dev/null || echo "?")
echo "# cgroup memory peak: $peak bytes"
umount "$MNT"
if out=$(fsck.ext4 -fn "$DEV" 2>&1); then
	ktap_ok "fsck.ext4 clean"
else
	ktap_fail "fsck.ext4 clean" "$(tail -3 <<< "$out")"
fi
st=$(dmsetup status dmmc)
dmsetup remove dmmc
if out=$(qemu-img check "$img" 2>&1); then
	ktap_ok "qemu-img check clean"
else
	ktap_fail "qemu-img check clean" "$(tail -3 <<< "$out")"
fi
if [[ $st =~ errors\ 0\  ]]; then
	ktap_ok "no errors counted by the target"
else
	ktap_fail "no errors counted by the target" "$st"
fi
ktap_finish
