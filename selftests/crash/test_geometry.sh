#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Power cuts on images whose metadata the default geometry never stresses
# (geometry.sh; recorded and checked as in test_power_cut.sh, lib.sh):
# each geometry of CRASH_GEOMETRIES (default: two of c4k c512 evict extl2
# backing, by the seed; "all") is recorded and its log replayed to
# CRASH_GEO_POINTS flush/FUA
# points, CRASH_GEO_RANDOM random ones and its end (CRASH_GEO_OPS
# operations per phase).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/geometry.sh"

# make check stays cheap: two of the five each run, picked by the seed
# (a different pair as the seed changes; CRASH_GEOMETRIES=all for all)
ALL_GEOS=(c4k c512 evict extl2 backing)
GEOS=${CRASH_GEOMETRIES:-${ALL_GEOS[CRASH_SEED % 5]} ${ALL_GEOS[(CRASH_SEED / 5 % 4 + 1 + CRASH_SEED % 5) % 5]}}
[ "$GEOS" = all ] && GEOS=${ALL_GEOS[*]}
GEO_POINTS=${CRASH_GEO_POINTS:-4}
GEO_RANDOM=${CRASH_GEO_RANDOM:-1}

# the chosen points of the log (its end among them)
geo_replay() {
	CRASH_POINTS=$GEO_POINTS CRASH_RANDOM=$GEO_RANDOM cr_replay_all
}

ktap_header
set -- $GEOS
ktap_plan $((2 * $#))
ktap_print "seed $CRASH_SEED (rerun: CRASH_SEED=$CRASH_SEED CRASH_GEOMETRIES=\"$GEOS\")," \
	"$CRASH_THREADS writer threads, $GEO_OPS operations per phase," \
	"at most $GEO_POINTS points + $GEO_RANDOM random per geometry"
for GEO in $GEOS; do
	cr_teardown
	setup_rc=0
	cr_geometry "$GEO" || setup_rc=1
	[ $setup_rc = 0 ] && { cr_setup || setup_rc=$?; }
	if [ $setup_rc = 4 ]; then
		ktap_skip "$GEO: record" "dm-log-writes, dm-snapshot or brd missing"
		ktap_skip "$GEO: image and data at every crash point" "no log"
		continue
	fi
	if [ $setup_rc != 0 ]; then
		ktap_fail "$GEO: record" "setup"
		ktap_fail "$GEO: image and data at every crash point" "setup"
		continue
	fi
	rm -rf "$W/hist" "$W/labels" "$W/list" "$W/points" "$W"/job*
	ktap_print "$GEO: cluster $CRASH_CLUSTER, size $CRASH_SIZE${CRASH_CACHE_MB:+, cache_mb $CRASH_CACHE_MB}$CR_IMG_OPTS${CR_BACKING:+, backing file}"
	SECONDS=0
	nfail=$ktap_nfail
	ktap_run "$GEO: record" geo_record
	if [ "$ktap_nfail" = "$nfail" ]; then
		ktap_run "$GEO: image and data at every crash point" geo_replay
	else
		ktap_fail "$GEO: image and data at every crash point" "no recording"
	fi
done
ktap_finish
