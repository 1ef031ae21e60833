#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Fuzzed qcow2 images against dm-qcow2 (see qcow2_fuzz.py): every case is
# read by QEMU and attached; what the device reads must be what QEMU reads
# (or EIO), region by region (the judge, qcow2_fuzz.py); then the case is
# written, flushed and removed. Refusals are fine; a silent difference, a
# kernel warning or a hang is not, and the case is saved to corpus/,
# whose cases every run replays first.
#   FUZZ_ITERS=N (default 25)  FUZZ_FIRST=CASE (default: a fresh one each
#   run, printed, so that CI fuzzes new cases every time)
#   FUZZ_CASE=CASE             one case only, verbose (reproducer)
. "$(dirname "$0")/../lib/ktap.sh"

HERE=$(cd "$(dirname "$0")" && pwd)
ITERS=${FUZZ_ITERS:-25}
FIRST=${FUZZ_FIRST:-$(( $(od -An -N4 -tu4 /dev/urandom) % 1000000000 ))}
CORPUS=${FUZZ_CORPUS:-$HERE/corpus}
WORK=$(mktemp -d /tmp/qfuzz.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
FUZZ=(python3 "$HERE/qcow2_fuzz.py")

ktap_header
ktap_plan 6
ktap_print "cases $FIRST to $((FIRST + ITERS - 1)) (rerun: FUZZ_FIRST=$FIRST FUZZ_ITERS=$ITERS)"

seeds() {
	if [ -f "$HERE/seeds/.stamp" ]; then
		cp -a "$HERE/seeds" "$WORK/seeds"
	else
		"${FUZZ[@]}" seeds "$WORK/seeds"
	fi
	# the backing seed names its base by the path it was made at
	qemu-img rebase -u -b "$WORK/seeds/backing-base.qcow2" -F qcow2 \
		"$WORK/seeds/backing.qcow2" &&
	qemu-img check -q "$WORK/seeds/backing.qcow2"
}
ktap_run "seed images" seeds

ktap_run "qcow2 corpus replay" "${FUZZ[@]}" corpus "$CORPUS" --work "$WORK"

# The judge on the seeds themselves: every one attaches and every region
# reads exactly as QEMU reads it (no EIO, no difference, nothing skipped).
pristine() {
	local out
	out=$("${FUZZ[@]}" run "$WORK/seeds" --pristine --work "$WORK") || { echo "$out"; return 1; }
	echo "$out" | grep '^# \(qcow2 fuzz\|judge\|refused\)'
	echo "$out" | grep -q "^# judge: QEMU opened \([0-9]*\) of \1 images; \1 judged" ||
		{ echo "not every seed was judged"; return 1; }
	echo "$out" | grep -q "regions compared \([1-9][0-9]*\): equal \1, EIO on device 0, EIO on both 0, differing 0; 0 skipped" ||
		{ echo "a seed does not read as QEMU reads it"; return 1; }
}
ktap_run "judge: the unmutated seeds read as QEMU reads them" pristine

fuzz() {
	local args=(--iters "$ITERS" --first "$FIRST")
	[ -n "${FUZZ_CASE:-}" ] && args=(--case "$FUZZ_CASE")
	echo "qcow2_fuzz.py run SEEDS ${args[*]} --save $CORPUS"
	"${FUZZ[@]}" run "$WORK/seeds" "${args[@]}" --work "$WORK" --save "$CORPUS" \
		--timeout "${FUZZ_TIMEOUT:-60}"
}
ktap_run "qcow2 image fuzz, judged against QEMU" fuzz

# the fuzzer itself: a device that stops answering is reported with its case
planted_hang() {
	local out
	out=$("${FUZZ[@]}" run "$WORK/seeds" --first 2 --iters 8 --no-judge --work "$WORK" \
		--timeout 3 --plant hang) && { echo "$out"; echo "planted hang not reported"; return 1; }
	echo "$out" | grep "HANG"
	echo "$out" | grep -q "HANG: case [0-9]"
}
ktap_run "fuzzer reports a planted hang" planted_hang

# the judge itself: one wrong byte read from the device is a failure
planted_diff() {
	local out
	out=$("${FUZZ[@]}" run "$WORK/seeds" --pristine --iters 1 --work "$WORK" \
		--plant diff) && { echo "$out"; echo "planted difference not reported"; return 1; }
	echo "$out" | grep -A1 "DIFF"
	echo "$out" | grep -q "bytes differ"
}
ktap_run "judge reports a planted wrong byte" planted_diff
ktap_finish
