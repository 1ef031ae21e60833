#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# A stop signal sent to qcow2-dm backup alone (kill PID, as an operator or
# a service manager sends it; not a terminal's Ctrl-C, which reaches the
# whole process group) ends the copy at once: qemu-img is told, OUT is
# removed, the temporary overlay is merged back and the device runs on
# its image with the writes made meanwhile. A qemu-img shim early in PATH
# plays a long copy: it sends qcow2-dm SIGTERM, then would sleep 20 s and
# leave a mark before copying; the mark must never appear.
. "$(dirname "$0")/lib.sh"

[ "$DQ_STANDIN" = nbd ] && ktap_skip_all "tests qcow2-dm itself"
ktap_header
ktap_plan 6

img=$WORK/disk.qcow2
out=$WORK/out.qcow2
ref=$WORK/ref.raw
shim=$WORK/shim
dname=$(dq_name)

qemu-img create -q -f qcow2 "$img" 32M
qemu-io -c "write -P 0x44 0 8M" "$img" >/dev/null
img=$(readlink -f "$img")

mkdir -p "$shim"
cat > "$shim/qemu-img" <<EOT
#!/bin/bash
if [ "\$1" = convert ]; then
	kill -TERM \$PPID
	sleep 20
	touch "$shim/copied"
fi
exec $(command -v qemu-img) "\$@"
EOT
chmod +x "$shim/qemu-img"

dq_attach "$img" "$dname" || ktap_print "attach failed"
t0=$SECONDS
PATH=$shim:$PATH qcow2-dm backup "$dname" "$out" > "$WORK/backup.log" 2>&1
rc=$?
took=$((SECONDS - t0))
sed 's/^/# /' "$WORK/backup.log"
ktap_print "backup exit $rc after ${took}s"

dq_step "SIGTERM to qcow2-dm alone: backup says it stopped, exits 1" \
	sh -c "[ '$rc' = 1 ] && grep -q 'stopped by signal 15' '$WORK/backup.log'"
dq_step "the copy was stopped, not run to its end" test ! -e "$shim/copied"
dq_step "OUT was removed" test ! -e "$out"
# the device is back on its image, which takes the writes
write_back() {
	dd if=/dev/urandom of="$WORK/w.bin" bs=64k count=16 status=none &&
	dd if="$WORK/w.bin" of="$DEV" bs=64k seek=32 oflag=direct status=none &&
	[ "$(qcow2-dm info "$dname" | sed -n 's/^image: //p')" = "$img" ]
}
dq_step "the device runs on its image again and takes writes" write_back
dq_step "no temporary overlay or state file left" \
	sh -c "[ -z \"\$(ls -A '$WORK' | grep -e '^\.disk\.qcow2\.')\" ] &&
	       [ ! -e '${QCOW2_DM_RUNDIR:-/run/qcow2-dm}/$dname.state' ]"
dq_detach "$dname"
check_data() {
	qemu-img check -q "$img" || return 1
	local v
	v=$(qemu-io -c "read -P 0x44 0 2M" -c "read -P 0x44 3M 5M" "$img") || return 1
	echo "$v" | grep -q "verification failed" && { echo "$v"; return 1; }
	qemu-img convert -O raw "$img" "$ref" &&
		dd if="$ref" bs=64k skip=32 count=16 status=none | cmp - "$WORK/w.bin"
}
dq_step "the image is clean and holds the data and the new writes" check_data
ktap_finish
