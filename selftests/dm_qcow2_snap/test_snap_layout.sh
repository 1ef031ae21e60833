#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Snapshots under load (see snap_live.sh) on other cluster layouts:
# extended L2 (subclusters) and 4 KiB clusters (many L2 tables).
. "$(dirname "$0")/snap_live.sh"

[ "$DQ_STANDIN" = nbd ] && ktap_skip_all "snapshots are dm-qcow2 messages"

ktap_header
ktap_plan 2
ktap_run "extended L2, 64 KiB clusters" live "extended_l2=on,cluster_size=65536"
ktap_run "4 KiB clusters" live "cluster_size=4096"
ktap_finish
