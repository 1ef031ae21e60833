#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The records a discard needs come from a mempool (review finding: the I/O
# path must be able to make progress when allocations fail). With
# failslab failing every allocation from the records' slab cache
# (qcow2_deferred), files are deleted and trimmed and new ones written on
# ext4 on the device: every discard and write succeeds from the pool's
# reserve, the failures injected are counted, the data verifies, fsck and
# qemu-img check are clean and the target counted no error. Needs
# CONFIG_FAILSLAB and the cache marked for it at boot
# (slub_debug=A,qcow2_deferred, as tools/vm/run --debug boots): the debug
# kernel (make check KERNEL=debug); Debian's kernels have no failslab
# (selftests/skips.allow).
. "$(dirname "$0")/lib.sh"

need qemu-img dmsetup mkfs.ext4 fsck.ext4 fstrim sha256sum
DEV=/dev/mapper/dmfs
MNT=$WORK/mnt
FS=/sys/kernel/debug/failslab
CACHE=/sys/kernel/slab/qcow2_deferred

[ -d /sys/kernel/debug/failslab ] ||
	mount -t debugfs none /sys/kernel/debug 2>/dev/null
[ -d $FS ] || ktap_skip_all "no failslab (CONFIG_FAILSLAB: the debug kernel)"

failslab_off() {
	echo 0 > $FS/probability
	echo N > $FS/cache-filter
}
cleanup() {
	failslab_off 2>/dev/null
	umount "$MNT" 2>/dev/null
	dmsetup remove dmfs 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

ktap_header
ktap_plan 6

# the cache's failslab mark is read-only at run time: set at boot
if [ "$(cat $CACHE/failslab 2>/dev/null)" = 1 ]; then
	ktap_ok "qcow2_deferred is marked for failslab"
else
	ktap_fail "qcow2_deferred is marked for failslab" \
		"boot with slub_debug=A,qcow2_deferred (tools/vm/run --debug does)"
fi

img=$WORK/fs.qcow2
qemu-img create -q -f qcow2 -o cluster_size=4096 "$img" 256M
attach dmfs "$img" || { echo "Bail out! attach"; exit 1; }
mkfs.ext4 -q -F -E nodiscard "$DEV" && mkdir -p "$MNT" && mount "$DEV" "$MNT" ||
	{ echo "Bail out! ext4 on the device"; exit 1; }
for i in 1 2 3 4; do
	head -c 24M /dev/urandom > "$MNT/f$i"
done
sync
(cd "$MNT" && sha256sum f2 f4) > "$WORK/keep.sum"

# every allocation from qcow2_deferred fails, whoever asks, sleeping or not
echo Y > $FS/cache-filter
echo N > $FS/ignore-gfp-wait
echo 0 > $FS/verbose
echo 1 > $FS/interval
echo 1000000 > $FS/times
echo 100 > $FS/probability

rc=0
rm "$MNT/f1" "$MNT/f3" && sync && fstrim "$MNT" || rc=1
for i in 5 6; do
	head -c 24M /dev/urandom > "$MNT/f$i" || rc=1
done
(cd "$MNT" && sha256sum f5 f6) > "$WORK/new.sum"
sync && rm "$MNT/f5" && fstrim "$MNT" && sync || rc=1
injected=$((1000000 - $(cat $FS/times)))
failslab_off
if [ $rc = 0 ] && [ $injected -gt 0 ]; then
	ktap_ok "deletes, trims and writes with every record allocation failing ($injected failures injected)"
else
	ktap_fail "deletes, trims and writes with every record allocation failing" \
		"exit status $rc, $injected failures injected"
fi
echo 3 > /proc/sys/vm/drop_caches
if (cd "$MNT" && sha256sum -c --quiet "$WORK/keep.sum" &&
    grep " f6$" "$WORK/new.sum" | sha256sum -c --quiet); then
	ktap_ok "the data verifies"
else
	ktap_fail "the data verifies"
fi
umount "$MNT"
if out=$(fsck.ext4 -fn "$DEV" 2>&1); then
	ktap_ok "fsck.ext4 clean"
else
	ktap_fail "fsck.ext4 clean" "$(tail -3 <<< "$out")"
fi
st=$(dmsetup status dmfs)
dmsetup remove dmfs
if [[ $st =~ errors\ 0\  ]]; then
	ktap_ok "no errors counted by the target"
else
	ktap_fail "no errors counted by the target" "$st"
fi
if out=$(qemu-img check "$img" 2>&1); then
	ktap_ok "qemu-img check clean"
else
	ktap_fail "qemu-img check clean" "$(tail -3 <<< "$out")"
fi
ktap_finish
