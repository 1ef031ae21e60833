#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# fuzz_long.sh: the long fuzz run of `make fuzz-long` (in the test VM; not
# part of make check). Replays the corpus first, then alternates chunks of
# fuzzed qcow2 images (qcow2_fuzz.py, judged against QEMU) and of
# vhost-blk requests (vblk_fuzz, alternately on brd and on dm-qcow2) and
# of vhost-user sessions against vhost-blkd (vu_fuzz: malformed and
# mutated messages, noise on running rings; after each chunk the daemon
# must be alive and serve a good client) until every count is reached or
# the time is up; a progress line after every chunk, a summary at the
# end. Every failing image or request case is added to corpus/; a failing
# vhost-user chunk prints the line that replays it.
#   FUZZ_IMAGES=N     images (default 100000)
#   FUZZ_REQUESTS=N   vhost-blk requests (default 1000000)
#   FUZZ_VU_SESSIONS=N  vhost-user sessions (default 20000)
#   FUZZ_SECONDS=S    stop starting chunks after S seconds (0: no limit)
#   FUZZ_FIRST=CASE   first image case, FUZZ_SEED=S first vhost-blk seed
#                     (default: fresh, printed)
#   FUZZ_IMAGE_CHUNK=N (default 200), FUZZ_REQUEST_CHUNK=N (default 20000),
#   FUZZ_VU_CHUNK=N (default 500)
set -u
. "$(dirname "$0")/lib.sh"

IMAGES=${FUZZ_IMAGES:-100000}
REQUESTS=${FUZZ_REQUESTS:-1000000}
LIMIT=${FUZZ_SECONDS:-0}
FIRST=${FUZZ_FIRST:-$(( $(od -An -N4 -tu4 /dev/urandom) % 1000000000 ))}
SEED=${FUZZ_SEED:-$(( $(od -An -N2 -tu2 /dev/urandom) % 60000 + 1 ))}
ICHUNK=${FUZZ_IMAGE_CHUNK:-200}
RCHUNK=${FUZZ_REQUEST_CHUNK:-20000}
VU_SESSIONS=${FUZZ_VU_SESSIONS:-20000}
VCHUNK=${FUZZ_VU_CHUNK:-500}
TOP=$(cd "$FUZZ_DIR/../.." && pwd)
WORK=$(mktemp -d /tmp/flong.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

echo "# fuzz-long: images $IMAGES from case $FIRST, requests $REQUESTS and vhost-user" \
	"sessions $VU_SESSIONS from seed $SEED," \
	"limit ${LIMIT}s (rerun: FUZZ_FIRST=$FIRST FUZZ_SEED=$SEED)"
start=$SECONDS
failures=0
declare -A tot=()
keys="images attempts refused attached qemu_refused judged regions equal dev_eio both_eio skipped diffs failed"
for k in $keys; do tot[$k]=0; done
reqs=0 broken=0 chunks_r=0
vus=0 vu_closed=0 vu_kicks=0 chunks_v=0
itime=0 rtime=0 vtime=0

# vu_chunk SEED SESSIONS: a fresh vhost-blkd (4 queues, a file on tmpfs)
# under vu_fuzz; then a good client must be served and SIGTERM must end
# the daemon. Output in $WORK/vuout.
vu_chunk() {
	local sock=$WORK/vu.sock pid rc=0 i
	truncate -s 64M "$WORK/vu.img"
	rm -f "$sock"
	"$TOP/tools/bin/vhost-blkd" --socket "$sock" --queues 4 "$WORK/vu.img" \
		>/dev/null 2>"$WORK/vu.log" &
	pid=$!
	for i in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
	"$TOP/selftests/vhost_blk/vu_fuzz" "$sock" "$pid" --sessions "$2" \
		--messages 20 --seed "$1" || rc=1
	"$TOP/tools/bin/vblk" verify "$sock" --queues 4 --size 8M >/dev/null ||
		{ echo "vhost-blkd does not serve a good client after the chunk"; rc=1; }
	kill "$pid" 2>/dev/null || { echo "vhost-blkd is gone"; rc=1; }
	wait "$pid" 2>/dev/null
	[ $rc = 0 ] || tail -5 "$WORK/vu.log"
	return $rc
}
if [ "$IMAGES" -gt 0 ]; then
	python3 "$FUZZ_DIR/qcow2_fuzz.py" seeds "$WORK/seeds" || exit 1
	qemu-img rebase -u -b "$WORK/seeds/backing-base.qcow2" -F qcow2 \
		"$WORK/seeds/backing.qcow2" || exit 1
	python3 "$FUZZ_DIR/qcow2_fuzz.py" corpus "$FUZZ_CORPUS" --work "$WORK" ||
		failures=$((failures + 1))
fi
if [ "$REQUESTS" -gt 0 ]; then
	vblk_replay || failures=$((failures + 1))
fi

time_left() { [ "$LIMIT" = 0 ] || [ $((SECONDS - start)) -lt "$LIMIT" ]; }

next=$FIRST
while time_left && { [ "${tot[images]}" -lt "$IMAGES" ] || [ "$reqs" -lt "$REQUESTS" ] ||
		     [ "$vus" -lt "$VU_SESSIONS" ]; }; do
	if [ "${tot[images]}" -lt "$IMAGES" ]; then
		t0=$SECONDS
		n=$((IMAGES - tot[images]))
		[ "$n" -gt "$ICHUNK" ] && n=$ICHUNK
		python3 "$FUZZ_DIR/qcow2_fuzz.py" run "$WORK/seeds" --first "$next" --iters "$n" \
			--work "$WORK" --save "$FUZZ_CORPUS" --timeout "${FUZZ_TIMEOUT:-60}" \
			> "$WORK/out" 2>&1
		rc=$?
		# what went wrong, with its details; the refused-clean reasons summed
		awk '/^# refused-clean/ { r = 1; next } /^#   [0-9]+ x / && r { next }
		     { r = 0 } /^# (DIFF|HANG|FAILED|case |corpus )/ || /^#   / || /saved to/' "$WORK/out"
		sed -n '/^# refused-clean/,/^# totals/s/^#   \([0-9]*\) x \(.*\) (.*$/\1 \2/p' "$WORK/out" \
			>> "$WORK/refused"
		line=$(grep '^# totals:' "$WORK/out")
		for k in $keys; do
			v=$(echo "$line" | sed -n "s/.* $k=\([0-9]*\).*/\1/p")
			tot[$k]=$((tot[$k] + ${v:-0}))
		done
		if [ "$rc" != 0 ]; then
			failures=$((failures + 1))
			cat "$WORK/out"
			# a hang leaves the device stuck: stop here
			grep -q '^# HANG' "$WORK/out" && break
		fi
		next=$((next + n))
		itime=$((itime + SECONDS - t0))
	fi
	if [ "$reqs" -lt "$REQUESTS" ] && time_left; then
		t0=$SECONDS
		n=$((REQUESTS - reqs))
		[ "$n" -gt "$RCHUNK" ] && n=$RCHUNK
		be=brd
		[ $((chunks_r % 2)) = 1 ] && be=qcow2
		s=$((SEED + chunks_r))
		vblk_on "$be" --iters "$n" --seed "$s" > "$WORK/vout" 2>&1
		rc=$?
		got=$(sed -n 's/^# vhost-blk fuzz: \([0-9]*\) requests.*/\1/p' "$WORK/vout")
		br=$(sed -n 's/.* queue broken \([0-9]*\) times.*/\1/p' "$WORK/vout")
		reqs=$((reqs + ${got:-0}))
		broken=$((broken + ${br:-0}))
		chunks_r=$((chunks_r + 1))
		if [ "$rc" != 0 ]; then
			failures=$((failures + 1))
			cat "$WORK/vout"
			vblk_save "$be" "$WORK/vout" "fuzz-long $(date -u +%F)"
		fi
		rtime=$((rtime + SECONDS - t0))
	fi
	if [ "$vus" -lt "$VU_SESSIONS" ] && time_left; then
		t0=$SECONDS
		n=$((VU_SESSIONS - vus))
		[ "$n" -gt "$VCHUNK" ] && n=$VCHUNK
		s=$((SEED + 100000 + chunks_v))
		vu_chunk "$s" "$n" > "$WORK/vuout" 2>&1
		rc=$?
		line=$(grep '^vu_fuzz: [0-9]* sessions' "$WORK/vuout")
		got=$(echo "$line" | sed -n 's/^vu_fuzz: \([0-9]*\) sessions.*/\1/p')
		vus=$((vus + ${got:-0}))
		v=$(echo "$line" | sed -n 's/.* \([0-9]*\) closed by the daemon.*/\1/p')
		vu_closed=$((vu_closed + ${v:-0}))
		v=$(echo "$line" | sed -n 's/.* \([0-9]*\) kicks.*/\1/p')
		vu_kicks=$((vu_kicks + ${v:-0}))
		chunks_v=$((chunks_v + 1))
		if [ "$rc" != 0 ]; then
			failures=$((failures + 1))
			cat "$WORK/vuout"
			echo "# replay: vu_fuzz SOCK PID --sessions $n --messages 20 --seed $s" \
				"(selftests/vhost_blk/test_vhost_blkd_fuzz.sh: VU_FUZZ_SEED=$s VU_FUZZ_SESSIONS=$n)"
		fi
		vtime=$((vtime + SECONDS - t0))
	fi
	t=$((SECONDS - start))
	echo "# progress ${t}s: images ${tot[images]} (attached ${tot[attached]}, judged ${tot[judged]}," \
		"regions ${tot[regions]}: equal ${tot[equal]}, EIO on device ${tot[dev_eio]}," \
		"EIO on both ${tot[both_eio]}, skipped ${tot[skipped]}, differing ${tot[diffs]})," \
		"requests $reqs (queue broken $broken), vhost-user sessions $vus, failures $failures"
done

t=$((SECONDS - start))
echo "# fuzz-long summary: ${t}s; images ${tot[images]} (cases $FIRST..$((next - 1)))," \
	"refused at create ${tot[refused]} of ${tot[attempts]} tables, attached ${tot[attached]}," \
	"opened by QEMU $((tot[images] - tot[qemu_refused]))," \
	"judged against QEMU ${tot[judged]}; regions compared ${tot[regions]}: equal ${tot[equal]}," \
	"EIO on device ${tot[dev_eio]}, EIO on both ${tot[both_eio]}, skipped ${tot[skipped]}," \
	"differing ${tot[diffs]}; requests $reqs in $chunks_r chunks from seed $SEED" \
	"(queue broken $broken); vhost-user sessions $vus in $chunks_v chunks" \
	"(closed by the daemon $vu_closed, kicks $vu_kicks); failures $failures"
if [ -s "$WORK/refused" ]; then
	echo "# refused-clean (the target refused an image QEMU checks consistent and reads without an error), by reason:"
	awk '{ n = $1; $1 = ""; c[substr($0, 2)] += n } END { for (r in c) printf "#   %d x %s\n", c[r], r }' \
		"$WORK/refused" | sort -k2 -rn
fi
echo "# rates: images $(( tot[images] * 3600 / (itime ? itime : 1) ))/h over ${itime}s," \
	"requests $(( reqs * 3600 / (rtime ? rtime : 1) ))/h over ${rtime}s," \
	"vhost-user sessions $(( vus * 3600 / (vtime ? vtime : 1) ))/h over ${vtime}s"
[ "$failures" = 0 ]
