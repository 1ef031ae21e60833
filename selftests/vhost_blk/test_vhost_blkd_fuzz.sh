#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# vhost-blkd under a hostile front-end: vu_fuzz sends malformed, unknown
# and mutated vhost-user messages, memory tables that do not fit, fds of
# the wrong kind, and kicks rings full of noise, with a fresh seed each
# run (printed: VU_FUZZ_SEED=S reproduces one). The daemon must close each
# bad connection with a log line and stay alive, the kernel must not warn
# (the harness checks its log), and a good client must be served after.
. "$(dirname "$0")/common.sh"

ktap_header
ktap_plan 4
have_vhost_blk || ktap_print "no /dev/vhost-blk"
setup_tmpfs_file || ktap_print "tmpfs file setup failed"

BLKD=$TOP/tools/bin/vhost-blkd
SOCK=$WORK/vud-fuzz.sock
LOG=$WORK/vud-fuzz.log
SESSIONS=${VU_FUZZ_SESSIONS:-200}
seed_arg=()
[ -n "${VU_FUZZ_SEED:-}" ] && seed_arg=(--seed "$VU_FUZZ_SEED")

rm -f "$SOCK"
"$BLKD" --socket "$SOCK" --queues 4 "$TMPFS_FILE" >/dev/null 2>"$LOG" &
PID=$!
trap 'kill $PID 2>/dev/null' EXIT
for i in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.1; done

ktap_run "vu_fuzz: $SESSIONS sessions, the daemon survives and closes each" \
	./vu_fuzz "$SOCK" $PID --sessions "$SESSIONS" --messages 20 "${seed_arg[@]}"

# What the daemon said while refusing: each kind of bad input named.
reasons() {
	local r n rc=0
	for r in "payload of" "is not supported" "fds" \
		 "not an eventfd\|not a file that can be shared" "SET_MEM_TABLE" \
		 "connection closed"; do
		n=$(grep -c "$r" "$LOG")
		echo "log lines with '$r': $n"
		[ "$n" -gt 0 ] || rc=1
	done
	# most sessions send a bad header (4 in 5: a payload size past the
	# limit or bad flags): a quarter closed on an error is far below what
	# a working daemon does, and none at all is a daemon that never refuses
	n=$(grep -c "connection closed after [0-9]* messages (error)" "$LOG")
	echo "sessions closed on an error: $n of $SESSIONS"
	[ "$n" -ge $((SESSIONS / 4)) ] || rc=1
	n=$(grep -vc "^vhost-blkd $SOCK: " "$LOG")
	[ "$n" -eq 0 ] || { echo "$n log lines do not name the socket"; rc=1; }
	return $rc
}
ktap_run "refusals are logged with their reason and the socket" reasons

ktap_run "a good client is served after the fuzzing" \
	"$VBLK" verify "$SOCK" --queues 4 --size 8M
alive() {
	kill -0 $PID || { echo "vhost-blkd is gone"; tail "$LOG"; return 1; }
	kill $PID && wait_gone $PID 10
}
ktap_run "the daemon is alive and exits on SIGTERM" alive
ktap_finish
