#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# blktests' device tests against a dm-qcow2 device: block/003 (discards of
# every size up to 4 GiB), block/004 (a flush storm: 64 writers, fsync
# after each write), block/008 (CPU hot-plug under I/O), block/012
# (BLKROSET: a read-only device fails writes). blktests is not a Debian
# package and is never vendored: $BLKTESTS names a checkout (make
# blktests BLKTESTS=DIR), copied into the guest, since blktests writes
# its results into its own tree. The image lives on ext4 (direct I/O,
# inline I/O) and must check clean afterwards; a blktests result other
# than "passed" fails, "not run" included, with blktests' reason.
. "$(dirname "$0")/../dm_qcow2_core/lib.sh"

TESTS=${BLKTESTS_TESTS:-block/003 block/004 block/008 block/012}
MNT=$WORK/mnt
cleanup() {
	dmsetup remove dmbt 2>/dev/null
	ext4_on_loop_undo "$MNT"
	rm -rf "$WORK"
}
trap cleanup EXIT

ktap_header
ktap_plan $(( $(wc -w <<< "$TESTS") + 2 ))
if [ -z "${BLKTESTS:-}" ] || [ ! -x "$BLKTESTS/check" ]; then
	echo "Bail out! BLKTESTS='${BLKTESTS:-}' is not a blktests checkout (make blktests BLKTESTS=DIR)"
	exit 1
fi
need qemu-img dmsetup losetup mkfs.ext4 fio xfs_io
commit=$(git -C "$BLKTESTS" log -1 --format='%h %cs' 2>/dev/null)
ktap_print "blktests at ${commit:-unknown commit} ($BLKTESTS)"
cp -a "$BLKTESTS" "$WORK/blktests" || { echo "Bail out! copy failed"; exit 1; }

if ! ext4_on_loop 2G "$MNT"; then
	echo "Bail out! cannot make ext4 for the image"
	exit 1
fi
IMG=$MNT/bt.qcow2
qemu-img create -q -f qcow2 "$IMG" 1G
attach dmbt "$IMG" || { echo "Bail out! attach failed"; exit 1; }
ktap_print "device $(dmsetup table dmbt)"

cat > "$WORK/blktests/config" <<EOC
TEST_DEVS=(/dev/mapper/dmbt)
TIMEOUT=${BLKTESTS_TIMEOUT:-60}
EOC
# shellcheck disable=SC2086
(cd "$WORK/blktests" && ./check $TESTS) > "$WORK/out" 2>&1
cat "$WORK/out" | sed 's/^/# /'
for t in $TESTS; do
	line=$(grep -E "^$t( |$)" "$WORK/out" | grep -E '\[(passed|failed|not run)\]' | tail -1)
	case "$line" in
	*"[passed]"*) ktap_ok "blktests $t on dm-qcow2" ;;
	*"[not run]"*) ktap_fail "blktests $t on dm-qcow2" "not run: $(grep -A2 -E "^$t( |$)" "$WORK/out" | tail -2 | tr -s ' ' | tr '\n' ' ')" ;;
	*) ktap_fail "blktests $t on dm-qcow2" "${line:-no result}" ;;
	esac
done
st=$(dmsetup status dmbt)
ktap_print "status: $st"
detach dmbt
if out=$(qemu-img check "$IMG" 2>&1); then
	ktap_ok "image checks clean after blktests"
else
	ktap_fail "image checks clean after blktests" "$(tail -3 <<< "$out")"
fi
if [[ $st =~ errors\ 0\ .*write_error\ 0 ]]; then
	ktap_ok "no I/O errors counted (errors 0, write_error 0)"
else
	ktap_fail "no I/O errors counted" "$st"
fi
ktap_finish
