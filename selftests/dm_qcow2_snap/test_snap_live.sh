#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Snapshots under load (see snap_live.sh): v3, v2, and compressed
# clusters shared by the snapshots.
. "$(dirname "$0")/snap_live.sh"

[ "$DQ_STANDIN" = nbd ] && ktap_skip_all "snapshots are dm-qcow2 messages"

ktap_header
ktap_plan 3
ktap_run "v3, 64 KiB clusters" live "compat=1.1,cluster_size=65536"
ktap_run "v2 (compat=0.10)" live "compat=0.10"
ktap_run "compressed clusters shared by the snapshots" live "cluster_size=65536" -c
ktap_finish
