#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Smoke check of the benchmark harness (bench/run) inside the test VM, in
# one short host-only run of two repetitions where host-loop's setup is
# made to fail in the second: valid JSON with nonzero IOPS, bandwidth,
# latency and CPU per I/O for the host rows, a Markdown table, the failure
# reported with its error (never dropped) while the run goes on, and the
# configurations visited round robin. Speed itself is never judged.
. "$(dirname "$0")/../lib/ktap.sh"

bench=$TOP/bench/run
py=/usr/bin/python3
out=$(mktemp -d /tmp/bench-test.XXXXXX)
trap 'rm -rf "$out"' EXIT

ktap_header
ktap_plan 6

[ -x "$bench" ] || { ktap_fail "bench/run exists"; ktap_finish; }

"$bench" --no-such-option >/dev/null 2>&1
rc=$?
if [ "$rc" -eq 2 ]; then ktap_ok "unknown option refused (exit 2)"
else ktap_fail "unknown option refused (exit 2)" "exit $rc"; fi

if "$bench" --quick --reps 2 --runtime 1 --only host --size-mb 64 \
	--inject-failure host-loop:2 --out "$out" --stem t --no-plots \
	> "$out/log" 2>&1; then
	ktap_ok "bench/run --quick --reps 2 --only host exits 0"
else
	ktap_fail "bench/run --quick --reps 2 --only host exits 0" "$(tail -5 "$out/log")"
fi
sed 's/^/# /' "$out/log"

check_json() {
	"$py" - "$out/t.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["meta"]["schema"] == "bench-v1", r["meta"].get("schema")
names = [c["name"] for c in r["configs"]]
assert names == ["host-brd", "host-loop"], names
pts = [p["id"] for p in r["points"]]
assert pts == ["randread-4k-d128-j1", "randwrite-4k-d128-j1"], pts
assert len(r["summary"]) == 4, len(r["summary"])
for s in r["summary"]:
    where = "%s %s" % (s["config"], s["point"])
    want = ("ok", 2) if s["config"] == "host-brd" else ("partial", 1)
    assert (s["status"], s["n"]) == want, (where, s["status"], s["n"])
    assert s["attempts"] == 2, where
    assert s["iops"]["median"] > 0, where
    assert s["iops"]["min"] <= s["iops"]["median"] <= s["iops"]["max"], where
    assert s["bw_mib"]["median"] > 0, where
    assert 0 < s["clat_p50_us"]["median"] <= s["clat_p99_us"]["median"], where
    assert s["cpu_us_per_io"]["median"] > 0, where
    assert s["ctxt_per_io"]["median"] > 0, where
    # 4 KiB: bandwidth and IOPS must agree, up to the 128 I/Os in flight
    # at the end of a run (fio counts them in one, not the other), which
    # matter on a slow kernel (the debug one: ~250 IOPS on host-loop)
    rt = min(x["runtime_ms"] for x in r["runs"] if x["status"] == "ok" and
             (x["config"], x["point"]) == (s["config"], s["point"]))
    slack = 128 * 4096 / 1048576 / (rt / 1000.0)
    bw = s["iops"]["median"] * 4096 / 1048576
    assert abs(bw - s["bw_mib"]["median"]) <= 0.2 * bw + 0.1 + slack, (where, bw, slack)
for run in r["runs"]:
    if run["status"] == "ok":
        assert run["ios"] > 0 and run["runtime_ms"] > 0, run
print("ok")
PY
}
ktap_run "JSON valid, nonzero IOPS, bandwidth, latency, CPU/IO" check_json

check_failure() {
	"$py" - "$out/t.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
bad = [x for x in r["runs"] if x["status"] != "ok"]
assert [(x["config"], x["rep"]) for x in bad] == [("host-loop", 2)] * 2, bad
assert all("injected" in x["error"] for x in bad), bad
s = [x for x in r["summary"] if x["config"] == "host-loop"]
assert all(any("injected" in e for e in x["errors"]) for x in s), s
order = [(v["rep"], v["config"]) for v in r["visits"]]
# round robin, each repetition starting one configuration further along
assert order == [(1, "host-brd"), (1, "host-loop"),
                 (2, "host-loop"), (2, "host-brd")], order
print("ok")
PY
}
ktap_run "failed setup reported with its error, visits round robin" check_failure

if grep -q '^| host-brd | [0-9,]* \[[0-9,]*-[0-9,]*\] |' "$out/t.md" &&
   grep -q '^| host-loop | [0-9,]* \[' "$out/t.md" &&
   grep -q 'TCG-emulated guest' "$out/t.md"; then
	ktap_ok "Markdown table has the host rows"
else
	ktap_fail "Markdown table has the host rows" "$(head -30 "$out/t.md")"
fi

if grep -q '^- `host-loop` `randread-4k-d128-j1` (partial, 1 of 2 ok): .*injected' "$out/t.md"; then
	ktap_ok "Markdown lists the error"
else
	ktap_fail "Markdown lists the error" "$(grep -A5 '## Errors' "$out/t.md")"
fi
ktap_finish
