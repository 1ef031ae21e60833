# SPDX-License-Identifier: GPL-2.0
# KTAP output helpers for shell selftests (kselftest conventions).
#
#   . "$(dirname "$0")/../lib/ktap.sh"
#   ktap_header; ktap_plan 3
#   ktap_ok "name"        ktap_fail "name" ["why"]     ktap_skip "name" "why"
#   ktap_run "name" CMD...   pass/fail/skip (exit 4) by CMD's exit status
#   ktap_finish              exit 1 on any failure, 4 when all skipped
#
# A test may also call ktap_skip_all "why" before its plan.
#
# Independent cases may run side by side (the test VM has two vCPUs and a
# case mostly waits on one process at a time):
#   ktap_par CMD...   run CMD in the background, at most KTAP_JOBS at once
#                     (default: the online CPUs, at most 2); CMD sees
#                     KTAP_SLOT (0..KTAP_JOBS-1, unique among the cases
#                     running) for its device names and scratch files, and
#                     reports with ktap_ok/ktap_fail/ktap_skip as usual
#   ktap_par_wait     wait for every case, then print their output in the
#                     order they were started, numbered in sequence
# Cases that read the shared kernel log (klog_mark/klog_new) must not.

KSFT_PASS=0
KSFT_FAIL=1
KSFT_SKIP=4

ktap_n=0
ktap_npass=0
ktap_nfail=0
ktap_nskip=0

ktap_header() { echo "TAP version 13"; }
ktap_plan() { echo "1..$1"; }
ktap_print() { echo "# $*"; }

ktap_ok() {
	ktap_n=$((ktap_n + 1)); ktap_npass=$((ktap_npass + 1))
	echo "ok $ktap_n $1"
}

ktap_fail() {
	ktap_n=$((ktap_n + 1)); ktap_nfail=$((ktap_nfail + 1))
	[ -n "${2:-}" ] && echo "# $1: $2"
	echo "not ok $ktap_n $1"
}

ktap_skip() {
	ktap_n=$((ktap_n + 1)); ktap_nskip=$((ktap_nskip + 1))
	echo "ok $ktap_n $1 # SKIP ${2:-}"
}

ktap_skip_all() {
	ktap_header
	echo "1..0 # SKIP $1"
	exit $KSFT_SKIP
}

# Run CMD, indenting its output as KTAP diagnostics; its exit status decides.
ktap_run() {
	local name=$1 rc
	shift
	"$@" 2>&1 | sed 's/^/# /'
	rc=${PIPESTATUS[0]}
	case $rc in
	0) ktap_ok "$name" ;;
	4) ktap_skip "$name" "exit 4" ;;
	*) ktap_fail "$name" "exit status $rc" ;;
	esac
}

ktap_par_jobs=${KTAP_JOBS:-$(nproc 2>/dev/null || echo 1)}
[ "$ktap_par_jobs" -gt 2 ] 2>/dev/null && ktap_par_jobs=2
ktap_par_dir=
ktap_par_n=0
ktap_par_pid=()		# the case running in each slot

# Set ktap_par_free to a slot no case runs in, waiting for one if need be.
ktap_par_slot() {
	local s
	while :; do
		for ((s = 0; s < ktap_par_jobs; s++)); do
			if [ -z "${ktap_par_pid[s]:-}" ] ||
			   ! kill -0 "${ktap_par_pid[s]}" 2>/dev/null; then
				ktap_par_free=$s
				return
			fi
		done
		wait -n "${ktap_par_pid[@]}" 2>/dev/null
	done
}

ktap_par() {
	[ -n "$ktap_par_dir" ] || ktap_par_dir=$(mktemp -d)
	ktap_par_slot
	ktap_par_n=$((ktap_par_n + 1))
	(
		ktap_n=0 ktap_npass=0 ktap_nfail=0 ktap_nskip=0
		KTAP_SLOT=$ktap_par_free
		"$@"
	) > "$ktap_par_dir/$ktap_par_n" 2>&1 &
	ktap_par_pid[ktap_par_free]=$!
}

# Print one case's output, numbering its results in the whole test's order.
ktap_par_emit() {
	local line re='^(not )?ok [0-9]+ (.*)$'
	while IFS= read -r line; do
		if [[ $line =~ $re ]]; then
			ktap_n=$((ktap_n + 1))
			if [ -n "${BASH_REMATCH[1]}" ]; then
				ktap_nfail=$((ktap_nfail + 1))
			elif [[ ${BASH_REMATCH[2]} == *" # SKIP"* ]]; then
				ktap_nskip=$((ktap_nskip + 1))
			else
				ktap_npass=$((ktap_npass + 1))
			fi
			echo "${BASH_REMATCH[1]}ok $ktap_n ${BASH_REMATCH[2]}"
		else
			echo "$line"
		fi
	done < "$1"
}

ktap_par_wait() {
	local i
	[ ${#ktap_par_pid[@]} -gt 0 ] && wait "${ktap_par_pid[@]}"
	for ((i = 1; i <= ktap_par_n; i++))
	do
		ktap_par_emit "$ktap_par_dir/$i"
	done
	[ -n "$ktap_par_dir" ] && rm -rf "$ktap_par_dir"
	ktap_par_dir= ktap_par_n=0 ktap_par_pid=()
}

ktap_finish() {
	echo "# totals: pass:$ktap_npass fail:$ktap_nfail skip:$ktap_nskip"
	[ $ktap_nfail -gt 0 ] && exit $KSFT_FAIL
	[ $ktap_npass -eq 0 ] && [ $ktap_nskip -gt 0 ] && exit $KSFT_SKIP
	exit $KSFT_PASS
}
