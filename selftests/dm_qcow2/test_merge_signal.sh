#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Ctrl-C during qcow2-dm merge: a SIGINT while the data is copied stops
# the copy and puts the device back on its top image (never left
# suspended, same content, locked against other writers, no temporary
# overlay or state file left behind); a SIGINT during the
# pause waits for the device to run again and the merge completes. A
# qemu-img shim early in PATH sends the signal at the chosen commit (the
# first is the copy, the second runs while the device is suspended).
. "$(dirname "$0")/lib.sh"

[ "$DQ_STANDIN" = nbd ] && ktap_skip_all "tests qcow2-dm itself"
ktap_header
ktap_plan 9

base=$WORK/base.qcow2
top=$WORK/top.qcow2
ref=$WORK/ref.raw
shim=$WORK/shim
dname=$(dq_name)

qemu-img create -q -f qcow2 "$base" 64M
qemu-io -c "write -P 0x22 0 16M" "$base" >/dev/null
qemu-img create -q -f qcow2 -b "$base" -F qcow2 "$top"
qemu-io -c "write -P 0x33 16M 32M" "$top" >/dev/null
qemu-img convert -O raw "$top" "$ref"
base=$(readlink -f "$base")
top=$(readlink -f "$top")

mkdir -p "$shim"
cat > "$shim/qemu-img" <<EOT
#!/bin/bash
# the SHIM_AT-th "qemu-img commit" of this merge sends its parent SIGINT
if [ "\$1" = commit ]; then
	n=\$(( \$(cat "$shim/count" 2>/dev/null || echo 0) + 1 ))
	echo \$n > "$shim/count"
	[ "\$n" = "\$SHIM_AT" ] && kill -INT \$PPID && sleep 1
fi
exec $(command -v qemu-img) "\$@"
EOT
chmod +x "$shim/qemu-img"

# merge_at N: qcow2-dm merge with SIGINT at the N-th commit; its status
merge_at() {
	rm -f "$shim/count"
	PATH=$shim:$PATH SHIM_AT=$1 qcow2-dm merge "$dname" > "$WORK/merge.log" 2>&1
	echo $?
	sed 's/^/# /' "$WORK/merge.log" >&2
}

# running NAME: not left suspended (resumed here if it was, so that the
# test can go on)
running() {
	[ "$(dmsetup info -c --noheadings -o suspended "$dname")" = Active ] && return 0
	echo "$dname left suspended"
	dmsetup resume "$dname"
	return 1
}

top_image() { qcow2-dm info "$dname" | sed -n 's/^image: //p'; }

dq_attach "$top" "$dname" || ktap_print "attach failed"

rc=$(merge_at 1)
dq_step "SIGINT in the copy: merge says it stopped, exits 1" \
	sh -c "[ '$rc' = 1 ] && grep -q 'stopped by signal 2' '$WORK/merge.log'"
dq_step "the device is running" running
dq_step "it reads the same data" cmp "$DEV" "$ref"
now=$(top_image)
dq_step "it runs on the top image again, locked, nothing left behind" \
	sh -c "[ '$now' = '$top' ] && ! qemu-io -c 'write 0 4k' '$top' >/dev/null 2>&1 &&
	       [ -z \"\$(ls -A '$WORK' | grep -e '^\.top\.qcow2\.')\" ]"

rc=$(merge_at 2)
dq_step "SIGINT during the pause: the merge completes" test "$rc" = 0
dq_step "the device is running after it" running
dq_step "it runs on the base image alone, the data is intact" \
	sh -c "[ '$(top_image)' = '$base' ] && cmp '$DEV' '$ref'"
dq_step "no temporary overlay or state file left" \
	sh -c "[ -z \"\$(ls -A '$WORK' | grep -e '^\.top\.qcow2\.' -e '^\.base\.qcow2\.')\" ] &&
	       [ ! -e '${QCOW2_DM_RUNDIR:-/run/qcow2-dm}/$dname.state' ]"
dq_detach "$dname"
dq_step "the base image is clean and holds the data" \
	sh -c "qemu-img check -q '$base' && qemu-img compare -q -f qcow2 -F raw '$base' '$ref'"
ktap_finish
