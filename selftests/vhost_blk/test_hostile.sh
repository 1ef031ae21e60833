#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Malformed guest requests (see hostile.c for every case and the answer it
# must get), on a block device and on a file backend; then a flood of
# refused requests must not flood the kernel log (rate-limited).
. "$(dirname "$0")/common.sh"

ktap_header
ktap_plan 3
setup_brd && setup_ext4_file || ktap_print "setup failed"
have_vhost_blk || ktap_print "/dev/vhost-blk is missing: every case fails"

ktap_run "hostile requests, brd backend" "$HERE/hostile" /dev/ram0
ktap_run "hostile requests, file backend" "$HERE/hostile" "$EXT4_FILE"

flood() {
	local before after n
	before=$(dmesg | wc -l)
	"$HERE/hostile" /dev/ram0 --flood 2000 || return 1
	after=$(dmesg | wc -l)
	n=$((after - before))
	echo "kernel log grew by $n lines for 2000 refused requests"
	[ $n -lt 200 ]
}
ktap_run "refusals are rate-limited in the kernel log" flood
teardown_ext4
ktap_finish
