#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The harness's own judges (tools/vm/ktap-count, tools/vm/ktap-skips) on
# made-up KTAP: a program that reports fewer results than it planned
# fails, a skip missing from the allow-list fails, a listed one passes, a
# debug-only entry does not excuse the skip on a packaged kernel. Lines
# end in CR LF as they do on the guest's console.
. "$(dirname "$0")/../lib/ktap.sh"

count=$TOP/tools/vm/ktap-count
skips=$TOP/tools/vm/ktap-skips
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat > "$tmp/allow" <<'EOT'
s	test_a.sh	any	^listed \(	a listed case
s	test_w.sh	debug	^\(whole program\) 	only on the debug kernel
EOT
printf '%s\r\n' \
	"# selftests: s: test_a.sh" "# 1..3" "# ok 1 one" "# ok 2 listed # SKIP no tool" \
	"ok 1 selftests: s: test_a.sh" \
	"# selftests: s: test_b.sh" "# 1..2" "# ok 1 one" "# ok 2 unlisted # SKIP no tool" \
	"ok 2 selftests: s: test_b.sh" \
	"# selftests: s: test_w.sh" "# 1..0 # SKIP no memcg" \
	"ok 3 selftests: s: test_w.sh # SKIP" > "$tmp/k"

ktap_header
ktap_plan 5

out=$("$count" "$tmp/k")
echo "$out" | sed 's/^/# /'
if echo "$out" | grep -q 'test_a.sh (planned 3 results, reported 2)'; then
	ktap_ok "a program short of its plan fails"
else
	ktap_fail "a program short of its plan fails"
fi
if [ "$(echo "$out" | grep -c 'planned')" = 1 ]; then
	ktap_ok "programs that report their plan pass"
else
	ktap_fail "programs that report their plan pass"
fi

out=$("$skips" -v suite=s -v debug=0 "$tmp/allow" "$tmp/k")
echo "$out" | sed 's/^/# /'
if echo "$out" | grep -q '^NOT ALLOWED: test_b.sh: unlisted (no tool)'; then
	ktap_ok "an unlisted skip is reported"
else
	ktap_fail "an unlisted skip is reported"
fi
if echo "$out" | grep -q 'test_w.sh: (whole program) (no memcg)' &&
   ! echo "$out" | grep -q '^NOT ALLOWED: test_a.sh'; then
	ktap_ok "a listed skip passes, a debug-only entry does not apply"
else
	ktap_fail "a listed skip passes, a debug-only entry does not apply"
fi
out=$("$skips" -v suite=s -v debug=1 "$tmp/allow" "$tmp/k")
if [ "$out" = "NOT ALLOWED: test_b.sh: unlisted (no tool)" ]; then
	ktap_ok "on the debug kernel the debug-only entry applies"
else
	ktap_fail "on the debug kernel the debug-only entry applies" "$out"
fi
ktap_finish
