#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Power cuts: record every write under a dm-qcow2 image during a mixed
# workload of CRASH_THREADS writers, replay to flush/FUA points and random
# points between them, and check the image and the data at each, in
# CRASH_JOBS parallel jobs (see lib.sh).
. "$(dirname "$0")/lib.sh"

ktap_header
ktap_plan 3
setup_rc=0
cr_setup || setup_rc=$?
if [ $setup_rc = 4 ]; then
	ktap_skip "record a mixed workload" "dm-log-writes, dm-snapshot or brd missing"
	ktap_skip "image and data at every crash point" "no log"
	ktap_skip "the recorded image is clean at the end" "no log"
	ktap_finish
fi
[ $setup_rc = 0 ] || { ktap_fail "setup" "RAM disks"; ktap_finish; }
ktap_print "seed $CRASH_SEED (rerun: CRASH_SEED=$CRASH_SEED), $CRASH_OPS operations per phase" \
	"from $CRASH_THREADS threads, cluster $CRASH_CLUSTER, size $CRASH_SIZE," \
	"at most ${CRASH_POINTS/#0/all} points + $CRASH_RANDOM random, $CRASH_JOBS checking jobs"
ktap_run "record a mixed workload" cr_record
ktap_run "image and data at every crash point" cr_replay_all
ktap_run "the recorded image is clean at the end" cr_final_clean
ktap_finish
