# SPDX-License-Identifier: GPL-2.0
# Shared by test_vblk_fuzz.sh and fuzz_long.sh: the vhost-blk fuzzer on
# its two backends, and the corpus of vhost-blk cases that once failed.
FUZZ_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FUZZ_CORPUS=${FUZZ_CORPUS:-$FUZZ_DIR/corpus}
VBLK_CASES=$FUZZ_CORPUS/vblk.cases

# vblk_on BACKEND VBLK_FUZZ_ARGS...: vblk_fuzz on the RAM disk (brd) or on
# a fresh dm-qcow2 device (qcow2), whose image must check clean afterwards.
vblk_on() {
	local be=$1 img dm=vfuzz$$ rc
	shift
	case $be in
	brd)
		[ -b /dev/ram0 ] || modprobe brd rd_nr=2 rd_size=131072 || return 1
		"$FUZZ_DIR/vblk_fuzz" /dev/ram0 "$@"
		;;
	qcow2)
		img=$(mktemp /tmp/vfuzz.XXXXXX) || return 1
		if ! qemu-img create -q -f qcow2 "$img" 64M ||
		   ! dmsetup create "$dm" --table "0 $((64 << 11)) qcow2 $img"; then
			rm -f "$img"
			return 1
		fi
		"$FUZZ_DIR/vblk_fuzz" "/dev/mapper/$dm" "$@"
		rc=$?
		dmsetup remove "$dm" || rc=1
		if ! qemu-img check "$img"; then
			echo "qemu-img check of the backend image failed"
			rc=1
		fi
		rm -f "$img"
		return $rc
		;;
	*)
		echo "vblk_on: no backend '$be'"
		return 2
		;;
	esac
}

# vblk_save BACKEND OUTPUT_FILE NOTE: add the failing batch that vblk_fuzz
# named in its output to the corpus (replayed first by every later run).
vblk_save() {
	local args
	args=$(sed -n 's/^# FAILED in batch [0-9]*; reproduce: vblk_fuzz [^ ]* \(.*\) -v$/\1/p' "$2")
	[ -n "$args" ] || return 0
	echo "$1 $args # $3" >> "$VBLK_CASES"
	echo "saved to $VBLK_CASES: $1 $args"
}

# vblk_replay: every case of the corpus; prints how many, fails on any.
vblk_replay() {
	local be args n=0 bad=0
	[ -f "$VBLK_CASES" ] || { echo "no vhost-blk corpus"; return 0; }
	while read -r be args; do
		case $be in ''|'#'*) continue ;; esac
		args=${args%%#*}
		n=$((n + 1))
		# shellcheck disable=SC2086 # the arguments of one case
		vblk_on "$be" $args > /tmp/vblk-replay.$$ 2>&1 || {
			cat /tmp/vblk-replay.$$
			echo "corpus case failed: $be $args"
			bad=$((bad + 1))
		}
	done < "$VBLK_CASES"
	rm -f /tmp/vblk-replay.$$
	echo "vhost-blk corpus: $n cases replayed, $bad failed"
	[ "$bad" = 0 ]
}
