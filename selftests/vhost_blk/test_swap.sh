#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Backend swap and unset under load (see swap.c for what is asserted):
# between two block devices, and between a block device and a file.
. "$(dirname "$0")/common.sh"

ktap_header
ktap_plan 2
setup_brd && setup_tmpfs_file || ktap_print "setup failed"
have_vhost_blk || ktap_print "/dev/vhost-blk is missing: every case fails"
# ram1 stays a raw disk here; the file lives on tmpfs
ktap_run "swap brd <-> brd under load, 4 queues" \
	"$HERE/swap" /dev/ram0 /dev/ram1 --queues 4 --rounds 3
ktap_run "swap brd <-> tmpfs file under load, 2 queues" \
	"$HERE/swap" /dev/ram0 "$TMPFS_FILE" --queues 2 --rounds 2
ktap_finish
