#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# qcow2-dm attach/detach/list/info behaviour and its QEMU-compatible image
# lock: while attached, `qemu-img info -U` works but qemu-io cannot write;
# attach refuses an image that qemu-io or qemu-storage-daemon has open for
# writing; detach leaves the image clean and unlocked.
. "$(dirname "$0")/lib.sh"

[ "$DQ_STANDIN" = nbd ] && ktap_skip_all "tests qcow2-dm itself"
SIZE=$((16 << 20))
img=$WORK/t.qcow2
qemu-img create -q -f qcow2 "$img" $SIZE
qemu-io -c "write -P 0x42 0 1M" "$img" >/dev/null

fails_with() {		# fails_with PATTERN CMD...: CMD fails, stderr matches
	local pat=$1 out
	shift
	if out=$("$@" 2>&1); then
		echo "unexpected success: $*"; echo "$out"; return 1
	fi
	echo "$out"
	echo "$out" | grep -Eqi "$pat" || { echo "message does not match /$pat/"; return 1; }
}

help() {
	local c
	qcow2-dm --help | grep -q "usage: qcow2-dm" || return 1
	for c in attach detach list info; do
		qcow2-dm $c --help | grep -q "usage: qcow2-dm $c" || { echo "$c --help"; return 1; }
	done
	fails_with "unknown command" qcow2-dm frobnicate
}

bad_input() {
	head -c 1M /dev/urandom > "$WORK/junk.img"
	printf 'QFI\xfb\0\0\0\7' > "$WORK/v7.qcow2"; truncate -s 64k "$WORK/v7.qcow2"
	fails_with "not a qcow2 image" qcow2-dm attach "$WORK/junk.img" &&
	fails_with "version 7" qcow2-dm attach "$WORK/v7.qcow2" &&
	fails_with "No such file" qcow2-dm attach "$WORK/none.qcow2" &&
	fails_with "invalid device name" qcow2-dm attach "$img" "a/b" &&
	fails_with "cache-mb" qcow2-dm attach "$img" x --cache-mb lots &&
	fails_with "no such device|not a qcow2" qcow2-dm detach nosuchdev &&
	fails_with "no such device|not a qcow2" qcow2-dm info nosuchdev
}

dirty() {
	local d=$WORK/dirty.qcow2
	qemu-img create -q -f qcow2 -o lazy_refcounts=on "$d" $SIZE &&
	python3 "$(dirname "$0")/qcow2_patch.py" dirty-bit "$d" &&
	fails_with "qemu-img check -r all" qcow2-dm attach "$d"
}

chains() {
	qemu-img create -q -f qcow2 "$WORK/l1.qcow2" $SIZE &&
	qemu-img create -q -f qcow2 -b l1.qcow2 -F qcow2 "$WORK/l2.qcow2" &&
	qemu-img rebase -u -b l2.qcow2 -F qcow2 "$WORK/l1.qcow2" &&
	fails_with "loops" qcow2-dm attach "$WORK/l2.qcow2" || return 1
	local i prev=
	for i in $(seq 0 17); do
		qemu-img create -q -f qcow2 ${prev:+-b "$prev" -F qcow2} "$WORK/c$i.qcow2" $SIZE || return 1
		prev=c$i.qcow2
	done
	fails_with "deeper than" qcow2-dm attach "$WORK/c17.qcow2" &&
	qemu-img create -q -f qcow2 -b "$WORK/gone.qcow2" -F qcow2 -u "$WORK/orphan.qcow2" $SIZE &&
	fails_with "gone.qcow2" qcow2-dm attach "$WORK/orphan.qcow2"
}

attach_cycle() {
	local name=dq$$-cycle dev out pid rc=0
	dev=$(qcow2-dm attach "$img" "$name") || return 1
	[ "$dev" = "/dev/mapper/$name" ] || { echo "printed '$dev'"; rc=1; }
	[ -b "$dev" ] || { echo "$dev is not a block device"; rc=1; }
	[ "$(blockdev --getsize64 "$dev")" = $SIZE ] || { echo "wrong size"; rc=1; }
	out=$(dmsetup info -c --noheadings -o uuid "$name")
	[ "$out" = "QCOW2-$name" ] || { echo "DM UUID '$out', not QCOW2-$name"; rc=1; }
	out=$(qcow2-dm list)
	echo "$out"
	echo "$out" | grep -q "^$name /dev/mapper/$name $(readlink -f "$img") rw [0-9]" ||
		{ echo "list does not show the device"; rc=1; }
	out=$(qcow2-dm info "$name") || { echo "info failed"; rc=1; }
	echo "$out"
	for f in "image: $(readlink -f "$img")" "version: 3" "cluster_size: 65536" \
		 "mode: rw" "errors: 0"; do
		echo "$out" | grep -qx "$f" || { echo "info lacks '$f'"; rc=1; }
	done
	echo "$out" | grep -Eq '^allocated: [1-9][0-9]*$' || { echo "allocated not counted"; rc=1; }
	echo "$out" | grep -Eq '^free: [0-9]+$' || rc=1
	pid=$(cat /run/qcow2-dm/$name.pid) && kill -0 "$pid" || { echo "no lock holder"; rc=1; }
	fails_with "already exists" qcow2-dm attach "$img" "$name" || rc=1
	# the same image twice: our own lock refuses it
	fails_with "in use" qcow2-dm attach "$img" "dq$$-twice" || rc=1
	cmp -n 1M "$dev" <(python3 -c "import sys; sys.stdout.buffer.write(b'\x42' * 1048576)") ||
		{ echo "device data wrong"; rc=1; }
	qcow2-dm detach "$name" || return 1
	[ ! -e "$dev" ] || { echo "$dev still there"; rc=1; }
	qcow2-dm list | grep -q "^$name " && { echo "still listed"; rc=1; }
	[ ! -e /run/qcow2-dm/$name.pid ] || { echo "pid file left"; rc=1; }
	kill -0 "$pid" 2>/dev/null && ! grep -q Z "/proc/$pid/stat" && { echo "holder still running"; rc=1; }
	dq_check_clean "$img" || rc=1
	return $rc
}

# qcow2-dm talks to device-mapper through libdevmapper: a dmsetup that
# fails and leaves a mark, first on PATH and as $DMSETUP, changes nothing.
no_dmsetup() {
	local name=dq$$-nodm bin=$WORK/fakebin mark=$WORK/dmsetup-ran rc=0
	mkdir -p "$bin"
	printf '#!/bin/sh\ntouch %s\nexit 1\n' "$mark" > "$bin/dmsetup"
	chmod +x "$bin/dmsetup"
	(
		export PATH=$bin:$PATH DMSETUP=$bin/dmsetup
		qcow2-dm attach "$img" "$name" >/dev/null || exit 1
		qcow2-dm list | grep -q "^$name " || { echo "not listed"; exit 1; }
		qcow2-dm info "$name" | grep -qx "mode: rw" || { echo "info"; exit 1; }
		qcow2-dm info --json "$name" >/dev/null || exit 1
		qcow2-dm detach "$name"
	) || rc=1
	[ ! -e /dev/mapper/$name ] || { echo "node left"; rc=1; }
	dmsetup info "$name" >/dev/null 2>&1 && { echo "device left"; dmsetup remove "$name"; rc=1; }
	[ ! -e "$mark" ] || { echo "qcow2-dm ran dmsetup"; rc=1; }
	return $rc
}

lock_while_attached() {
	local name=dq$$-lock rc=0
	qcow2-dm attach "$img" "$name" >/dev/null || return 1
	qemu-img info -U "$img" >/dev/null || { echo "qemu-img info -U refused"; rc=1; }
	fails_with "lock" qemu-io -c "write 0 4k" "$img" || rc=1
	fails_with "lock" qemu-img check "$img" || rc=1
	fails_with "lock" qemu-img resize "$img" +1M || rc=1
	qcow2-dm detach "$name" || return 1
	qemu-io -c "write -P 0x42 0 4k" "$img" >/dev/null || { echo "write after detach refused"; rc=1; }
	return $rc
}

lock_ro() {
	local name=dq$$-ro rc=0 out
	qcow2-dm attach "$img" "$name" --ro --cache-mb 8 >/dev/null || return 1
	out=$(qcow2-dm info "$name")
	echo "$out" | grep -qx "mode: ro" || { echo "info does not say ro"; rc=1; }
	echo "$out" | grep -qx "cache_mb: 8" || { echo "cache_mb not in the table"; rc=1; }
	qcow2-dm list | grep -q "^$name .* ro " || { echo "list does not say ro"; rc=1; }
	qemu-img info "$img" >/dev/null || { echo "reader refused by a ro attach"; rc=1; }
	fails_with "lock" qemu-io -c "write 0 4k" "$img" || rc=1
	if out=$(dd if=/dev/zero of=/dev/mapper/$name bs=4k count=1 oflag=direct 2>&1); then
		echo "write to a read-only device succeeded"; rc=1
	fi
	# two read-only attaches of one image may coexist
	qcow2-dm attach "$img" "dq$$-ro2" --ro >/dev/null || { echo "second ro attach refused"; rc=1; }
	qcow2-dm detach "dq$$-ro2" >/dev/null 2>&1
	qcow2-dm detach "$name" || rc=1
	return $rc
}

wait_locked() {		# until some process holds a lock on the file
	local ino i
	ino=$(stat -c %i "$1")
	for i in $(seq 100); do
		grep -q ":$ino " /proc/locks && return 0
		sleep 0.1
	done
	echo "no lock appeared on $1"
	return 1
}

refused_when_qemu_writes() {
	local rc=0 pid
	qemu-io -c "sleep 60000" "$img" >/dev/null 2>&1 &
	pid=$!
	wait_locked "$img" || rc=1
	fails_with "in use" qcow2-dm attach "$img" "dq$$-busy" || rc=1
	kill "$pid"; wait "$pid" 2>/dev/null
	return $rc
}

refused_when_qsd_exports() {
	local rc=0 pid
	command -v qemu-storage-daemon >/dev/null || return 4
	qemu-storage-daemon \
		--blockdev driver=file,filename="$img",node-name=f \
		--blockdev driver=qcow2,file=f,node-name=q \
		--nbd-server addr.type=unix,addr.path="$WORK/qsd.sock" \
		--export type=nbd,id=e,node-name=q,writable=on >/dev/null 2>&1 &
	pid=$!
	wait_locked "$img" || rc=1
	fails_with "in use" qcow2-dm attach "$img" "dq$$-qsd" || rc=1
	kill "$pid"; wait "$pid" 2>/dev/null
	return $rc
}

busy_detach() {
	local name=dq$$-busy2 rc=0
	qcow2-dm attach "$img" "$name" >/dev/null || return 1
	exec 7<"/dev/mapper/$name"
	fails_with "busy" qcow2-dm detach "$name" || rc=1
	[ -b "/dev/mapper/$name" ] || { echo "device removed while open"; rc=1; }
	fails_with "lock" qemu-io -c "write 0 4k" "$img" || { echo "lock dropped by failed detach"; rc=1; }
	exec 7<&-
	qcow2-dm detach "$name" || rc=1
	dq_check_clean "$img" || rc=1
	return $rc
}

chain_attach() {
	local d=$WORK/ch name=dq$$-chain out rc=0
	mkdir -p "$d/sub"
	qemu-img create -q -f raw "$d/base.raw" $SIZE &&
	qemu-io -f raw -c "write -P 0x10 0 4M" "$d/base.raw" >/dev/null &&
	qemu-img create -q -f qcow2 -b base.raw -F raw "$d/mid.qcow2" &&
	qemu-io -c "write -P 0x20 1M 1M" "$d/mid.qcow2" >/dev/null &&
	qemu-img create -q -f qcow2 -b ../mid.qcow2 -F qcow2 "$d/sub/top.qcow2" &&
	python3 "$(dirname "$0")/qcow2_patch.py" drop-backing-fmt "$d/sub/top.qcow2" &&
	qemu-io -c "write -P 0x30 1536k 1M" "$d/sub/top.qcow2" >/dev/null &&
	qemu-img convert -O raw "$d/sub/top.qcow2" "$d/want.raw" || return 1
	qcow2-dm attach "$d/sub/top.qcow2" "$name" >/dev/null || return 1
	out=$(qcow2-dm info "$name")
	echo "$out"
	[ "$(echo "$out" | grep '^backing: ')" = "backing: qcow2 $d/mid.qcow2
backing: raw $d/base.raw" ] || { echo "chain not passed in order"; rc=1; }
	cmp "/dev/mapper/$name" "$d/want.raw" || rc=1
	fails_with "lock" qemu-io -f raw -c "write 0 4k" "$d/base.raw" || { echo "backing file writable"; rc=1; }
	qemu-img info "$d/base.raw" >/dev/null || { echo "backing file not readable by others"; rc=1; }
	qcow2-dm detach "$name" || rc=1
	dq_check_clean "$d/sub/top.qcow2" || rc=1
	return $rc
}

exits_with() {		# exits_with STATUS CMD...: CMD exits with STATUS
	local want=$1 rc=0
	shift
	"$@" >/dev/null 2>&1 || rc=$?
	[ $rc -eq "$want" ] || { echo "'$*' exited $rc, not $want"; return 1; }
}

# The documented exit statuses: 2 usage, 3 not found, 4 busy, 1 failed.
exit_codes() {
	local name=dq$$-codes rc=0 pid want
	want=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' "$TOP/dkms.conf")
	[ "$(qcow2-dm --version)" = "qcow2-dm $want" ] ||
		{ echo "--version says '$(qcow2-dm --version)', dkms.conf $want"; rc=1; }
	exits_with 0 qcow2-dm --help || rc=1
	exits_with 2 qcow2-dm || rc=1
	exits_with 2 qcow2-dm frobnicate || rc=1
	exits_with 2 qcow2-dm list --frob || rc=1
	exits_with 2 qcow2-dm info || rc=1
	exits_with 2 qcow2-dm attach "$img" "a/b" || rc=1
	exits_with 3 qcow2-dm info nosuchdev || rc=1
	exits_with 3 qcow2-dm info --json nosuchdev || rc=1
	exits_with 3 qcow2-dm detach nosuchdev || rc=1
	exits_with 3 qcow2-dm merge nosuchdev || rc=1
	exits_with 3 qcow2-dm attach "$WORK/none.qcow2" || rc=1
	head -c 64k /dev/urandom > "$WORK/junk2.img"
	exits_with 1 qcow2-dm attach "$WORK/junk2.img" || rc=1
	qcow2-dm attach "$img" "$name" >/dev/null || return 1
	exits_with 4 qcow2-dm attach "$img" "$name" || rc=1	# name taken
	exits_with 4 qcow2-dm attach "$img" "dq$$-c2" || rc=1	# image locked
	exec 7<"/dev/mapper/$name"
	exits_with 4 qcow2-dm detach "$name" || rc=1		# device open
	exec 7<&-
	qcow2-dm detach "$name" || rc=1
	qemu-io -c "sleep 60000" "$img" >/dev/null 2>&1 &
	pid=$!
	wait_locked "$img" || rc=1
	exits_with 4 qcow2-dm attach "$img" "dq$$-c3" || rc=1	# QEMU has it
	kill "$pid"; wait "$pid" 2>/dev/null
	return $rc
}

# info --json and list --json, parsed by python3's json module and
# compared with what the test set up.
json_output() {
	local d=$WORK/js name=dq$$-json ro=dq$$-jsro rc=0 holder
	mkdir -p "$d"
	qemu-img create -q -f raw "$d/base.raw" $SIZE &&
	qemu-img create -q -f qcow2 -b base.raw -F raw "$d/mid.qcow2" &&
	qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 "$d/top\"q\"é.qcow2" &&
	qemu-img create -q -f qcow2 "$d/other.qcow2" $((SIZE * 2)) || return 1
	qcow2-dm attach "$d/top\"q\"é.qcow2" "$name" >/dev/null || return 1
	qcow2-dm attach "$d/other.qcow2" "$ro" --ro --cache-mb 4 >/dev/null || rc=1
	qcow2-dm bitmap "$name" add bm1 --granularity 65536 >/dev/null || rc=1
	dd if=/dev/zero of="/dev/mapper/$name" bs=64k count=2 oflag=direct 2>/dev/null || rc=1
	holder=$(cat "/run/qcow2-dm/$name.pid") || rc=1
	qcow2-dm info --json "$name" > "$d/info.json" || rc=1
	qcow2-dm list --json > "$d/list.json" || rc=1
	cat "$d/info.json" "$d/list.json"
	python3 - "$d" "$name" "$ro" $SIZE "$holder" <<'PY' || rc=1
import json, os, sys
d, name, ro, size, holder = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
bad = []
def check(what, got, want):
    if got != want:
        bad.append("%s: %r, expected %r" % (what, got, want))
info = json.load(open(d + "/info.json"))
top = os.path.realpath(d + '/top"q"é.qcow2')
check("name", info["name"], name)
check("device", info["device"], "/dev/mapper/" + name)
check("image", info["image"], top)
check("chain", [(f["path"], f["format"]) for f in info["chain"]],
      [(top, "qcow2"), (os.path.realpath(d + "/mid.qcow2"), "qcow2"),
       (os.path.realpath(d + "/base.raw"), "raw")])
check("size", info["size"], size)
check("read_only", info["read_only"], False)
check("data_file", info["data_file"], None)
st = info["status"]
check("version", st["version"], 3)
check("cluster_size", st["cluster_size"], 65536)
check("mode", st["mode"], "rw")
check("errors", st["errors"], 0)
check("allocated counts the write", st["allocated"] >= 2, True)
for k in ("free", "cache_hits", "cache_misses", "flushes", "locked_flushes",
          "deferred_frees", "write_error", "no_space", "no_space_queued",
          "inline_ios"):
    check(k + " is a count", isinstance(st.get(k), int), True)
check("bitmaps", [(b["name"], b["state"], b["granularity"]) for b in info["bitmaps"]],
      [("bm1", "tracked", 65536)])
check("bitmap dirty bytes", info["bitmaps"][0].get("dirty"), 131072)
check("holder", info["holder"], holder)
check("holder alive", os.path.exists("/proc/%d" % holder), True)
devs = {o["name"]: o for o in json.load(open(d + "/list.json"))}
check("list has both", sorted(n for n in devs if n in (name, ro)), sorted([name, ro]))
def nostatus(o):
    return {k: v for k, v in (o or {}).items() if k != "status"}
check("list object = info object", nostatus(devs.get(name)), nostatus(info))
o = devs.get(ro, {})
check("ro read_only", o.get("read_only"), True)
check("ro cache_mb", o.get("cache_mb"), 4)
check("ro size", o.get("size"), 2 * size)
check("ro mode", o.get("status", {}).get("mode"), "ro")
for b in bad:
    print(b)
sys.exit(1 if bad else 0)
PY
	qcow2-dm detach "$ro" || rc=1
	qcow2-dm detach "$name" || rc=1
	qcow2-dm list --json | python3 -c '
import json, sys
left = [o["name"] for o in json.load(sys.stdin) if o["name"] in sys.argv[1:]]
sys.exit(1 if left else 0)' "$name" "$ro" || { echo "detached devices still listed"; rc=1; }
	return $rc
}

# /etc/qcow2-dm/tab (here $QCOW2_DM_TAB): attach --tab takes the image
# and options of its line; the generator makes one unit per line that is
# not noauto; the unit file passes systemd-analyze verify.
tab_attach() {
	local d=$WORK/tab name=dq$$-tab rc=0 out gen=$WORK/gen unit
	mkdir -p "$d"
	qemu-img create -q -f qcow2 "$d/a.qcow2" $SIZE || return 1
	cat > "$d/tab" <<EOT
# a comment
$name	$d/a.qcow2	ro,cache-mb=8
dq$$-auto  $d/a.qcow2  -
dq$$-off  $d/a.qcow2  noauto
dq$$-bad  $d/a.qcow2  frob
EOT
	export QCOW2_DM_TAB=$d/tab
	qcow2-dm attach --tab "$name" >/dev/null || { echo "attach --tab failed"; rc=1; }
	out=$(qcow2-dm info "$name")
	echo "$out" | grep -qx "mode: ro" || { echo "tab option ro not applied"; rc=1; }
	echo "$out" | grep -qx "cache_mb: 8" || { echo "tab option cache-mb not applied"; rc=1; }
	echo "$out" | grep -qx "image: $(readlink -f "$d/a.qcow2")" || rc=1
	qcow2-dm detach "$name" || rc=1
	exits_with 3 qcow2-dm attach --tab dq$$-none || rc=1
	exits_with 1 qcow2-dm attach --tab dq$$-bad || rc=1
	exits_with 2 qcow2-dm attach --tab "$name" extra || rc=1
	QCOW2_DM_TAB=$d/missing exits_with 3 qcow2-dm attach --tab "$name" || rc=1

	sh "$TOP/tools/host/qcow2-dm-generator" "$gen" || { echo "generator failed"; rc=1; }
	unset QCOW2_DM_TAB
	ls -R "$gen"
	for unit in "$name" dq$$-auto dq$$-bad; do
		[ -L "$gen/multi-user.target.wants/qcow2-dm@$unit.service" ] ||
			{ echo "no unit wanted for $unit"; rc=1; }
		grep -qx "RequiresMountsFor=$d" "$gen/qcow2-dm@$unit.service.d/50-image.conf" ||
			{ echo "no mount dependency for $unit"; rc=1; }
	done
	[ ! -e "$gen/multi-user.target.wants/qcow2-dm@dq$$-off.service" ] ||
		{ echo "noauto line made a unit"; rc=1; }
	[ "$(ls "$gen/multi-user.target.wants" | wc -l)" = 3 ] || { echo "wrong unit count"; rc=1; }
	if command -v systemd-analyze >/dev/null; then
		mkdir -p "$d/units"
		sed "s|/usr/sbin/qcow2-dm|$TOP/tools/qcow2-dm/qcow2-dm|" \
			"$TOP/tools/host/qcow2-dm@.service" > "$d/units/qcow2-dm@.service"
		SYSTEMD_UNIT_PATH=$d/units: systemd-analyze verify --man=no \
			"$d/units/qcow2-dm@$name.service" || { echo "unit does not verify"; rc=1; }
	fi
	return $rc
}

ktap_header
ktap_plan 15
ktap_run "--help on every command" help
ktap_run "bad input refused with clear messages" bad_input
ktap_run "dirty image refused with the repair command" dirty
ktap_run "backing chain loops, depth, missing files" chains
ktap_run "attach, list, info, detach" attach_cycle
ktap_run "device-mapper without dmsetup" no_dmsetup
ktap_run "QEMU cannot write an attached image" lock_while_attached
ktap_run "read-only attach" lock_ro
ktap_run "attach refused while qemu-io writes" refused_when_qemu_writes
ktap_run "attach refused while qemu-storage-daemon exports" refused_when_qsd_exports
ktap_run "busy device is not detached" busy_detach
ktap_run "backing chain passed explicitly" chain_attach
ktap_run "exit statuses and --version" exit_codes
ktap_run "info --json and list --json" json_output
ktap_run "attach --tab and the boot generator" tab_attach
ktap_finish
