#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# make crash-long: the power-cut test of selftests/crash (lib.sh) round
# after round, each round a fresh recording (seed CRASH_SEED + round) of
# the next geometry of CRASH_GEOMETRIES (../crash/geometry.sh; c64k is
# test_power_cut.sh's recording, with online snapshot create and delete)
# with CRASH_THREADS writers,
# replayed to every flush/FUA point of its log plus CRASH_LONG_RANDOM (20) random
# points, until CRASH_LONG_POINTS points were tried or CRASH_LONG_SECONDS
# passed. One result: every point clean (leaks allowed), no byte lost.
. "$(dirname "$0")/../crash/lib.sh"
CRASH_IO=$(cd "$(dirname "$0")/../crash" && pwd)/crash_io
. "$(dirname "$0")/../crash/geometry.sh"

LONG_POINTS=${CRASH_LONG_POINTS:-10000}
LONG_SECONDS=${CRASH_LONG_SECONDS:-0}	# 0: no time limit
GEOS=${CRASH_GEOMETRIES:-c64k c4k c512 evict extl2 backing}
RANDOM_PTS=${CRASH_LONG_RANDOM:-20}

ktap_header
ktap_plan 1
ktap_print "seed $CRASH_SEED (rerun: CRASH_SEED=$CRASH_SEED), geometries $GEOS," \
	"$CRASH_THREADS writer threads, $GEO_OPS operations per phase, $CRASH_JOBS checking jobs," \
	"until $LONG_POINTS points or $LONG_SECONDS s (0: no limit)"
read -ra geos <<< "$GEOS"
round=0 tot=0 err=0 lost=0 leaks=0 clean=0 fl=0 rounds_failed=0 t0=$SECONDS
# the time limit also ends a round's checks between two points
[ "$LONG_SECONDS" != 0 ] && CR_DEADLINE=$(($(date +%s) + LONG_SECONDS))
while [ "$tot" -lt "$LONG_POINTS" ]; do
	if [ "$LONG_SECONDS" != 0 ] && [ $((SECONDS - t0)) -ge "$LONG_SECONDS" ]; then
		break
	fi
	GEO=${geos[round % ${#geos[@]}]}
	seed=$((CRASH_SEED + round))
	round=$((round + 1))
	cr_teardown
	cr_geometry "$GEO" && cr_setup ||
		{ ktap_print "round $round: setup failed"; rounds_failed=$((rounds_failed + 1)); break; }
	rm -rf "$W/hist" "$W/labels" "$W/list" "$W/points" "$W"/job*
	# c64k: test_power_cut.sh's recording, online snapshots included
	rec=geo_record
	[ "$GEO" = c64k ] && rec=cr_record
	if ! (CRASH_SEED=$seed $rec) > "$W/round.out" 2>&1; then
		sed 's/^/# round '"$round $GEO"': /' "$W/round.out"
		rounds_failed=$((rounds_failed + 1))
		continue
	fi
	CRASH_SEED=$seed CRASH_POINTS=0 CRASH_RANDOM=$RANDOM_PTS cr_replay_all > "$W/round.out" 2>&1 ||
		{ sed 's/^/# round '"$round $GEO"': /' "$W/round.out"; rounds_failed=$((rounds_failed + 1)); }
	tot=$((tot + cr_tried)) err=$((err + cr_errors)) lost=$((lost + cr_lost))
	leaks=$((leaks + cr_leaks)) clean=$((clean + cr_clean)) fl=$((fl + cr_nflush))
	ktap_print "round $round ($GEO, seed $seed): $(tail -n 1 "$W/round.out");" \
		"total $tot points, $err errors, $lost bytes lost, $((SECONDS - t0)) s"
done
ktap_print "crash points tried: $tot ($fl flush/FUA) in $round recordings of $GEOS;" \
	"clean $clean, leaks only $leaks, errors $err; bytes lost $lost;" \
	"rounds failed $rounds_failed; $((SECONDS - t0)) s"
if [ "$err" = 0 ] && [ "$lost" = 0 ] && [ "$rounds_failed" = 0 ] && [ "$tot" -gt 0 ]; then
	ktap_ok "$tot crash points, every image clean and every acknowledged byte there"
else
	ktap_fail "$tot crash points, every image clean and every acknowledged byte there"
fi
ktap_finish
