#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Fuzzed qcow2 images against dm-qcow2 (see qcow2_fuzz.py): every case is
# attached, read whole, written, flushed and removed; refusals and I/O
# errors are fine, a kernel warning or a hang is not.
#   FUZZ_ITERS=N (default 25)  FUZZ_FIRST=CASE (default: a fresh one each
#   run, printed, so that CI fuzzes new cases every time)
#   FUZZ_CASE=CASE             one case only, verbose (reproducer)
. "$(dirname "$0")/../lib/ktap.sh"

HERE=$(cd "$(dirname "$0")" && pwd)
ITERS=${FUZZ_ITERS:-25}
FIRST=${FUZZ_FIRST:-$(( $(od -An -N4 -tu4 /dev/urandom) % 1000000000 ))}
WORK=$(mktemp -d /tmp/qfuzz.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

ktap_header
ktap_plan 3
ktap_print "cases $FIRST to $((FIRST + ITERS - 1)) (rerun: FUZZ_FIRST=$FIRST FUZZ_ITERS=$ITERS)"

seeds() {
	if [ -f "$HERE/seeds/.stamp" ]; then
		cp -a "$HERE/seeds" "$WORK/seeds"
	else
		python3 "$HERE/qcow2_fuzz.py" seeds "$WORK/seeds"
	fi
	# the backing seed names its base by the path it was made at
	qemu-img rebase -u -b "$WORK/seeds/backing-base.qcow2" -F qcow2 \
		"$WORK/seeds/backing.qcow2" &&
	qemu-img check -q "$WORK/seeds/backing.qcow2"
}
ktap_run "seed images" seeds

fuzz() {
	local args=(--iters "$ITERS" --first "$FIRST")
	[ -n "${FUZZ_CASE:-}" ] && args=(--case "$FUZZ_CASE")
	echo "python3 $HERE/qcow2_fuzz.py run SEEDS ${args[*]}"
	python3 "$HERE/qcow2_fuzz.py" run "$WORK/seeds" "${args[@]}" \
		--timeout "${FUZZ_TIMEOUT:-60}"
}
ktap_run "qcow2 image fuzz" fuzz

# the fuzzer itself: a device that stops answering is reported with its case
planted_hang() {
	local out
	out=$(python3 "$HERE/qcow2_fuzz.py" run "$WORK/seeds" --first 2 --iters 8 \
		--timeout 3 --plant hang) && { echo "$out"; echo "planted hang not reported"; return 1; }
	echo "$out" | grep "HANG"
	echo "$out" | grep -q "HANG: case [0-9]"
}
ktap_run "fuzzer reports a planted hang" planted_hang
ktap_finish
