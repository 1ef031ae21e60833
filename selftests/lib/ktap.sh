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

ktap_finish() {
	echo "# totals: pass:$ktap_npass fail:$ktap_nfail skip:$ktap_nskip"
	[ $ktap_nfail -gt 0 ] && exit $KSFT_FAIL
	[ $ktap_npass -eq 0 ] && [ $ktap_nskip -gt 0 ] && exit $KSFT_SKIP
	exit $KSFT_PASS
}
