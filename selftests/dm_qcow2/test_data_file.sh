#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# qcow2-dm with an image that has an external data file: attach resolves
# the file's name relative to the image's folder (not the caller's), names
# it in the table and locks it as QEMU would; the device reads what QEMU
# reads and writes what QEMU then reads; info shows the file; what the
# kernel cannot do (an external snapshot on top, a backing image with a
# data file) is refused before anything changes.
. "$(dirname "$0")/lib.sh"

[ "$DQ_STANDIN" = nbd ] && ktap_skip_all "tests qcow2-dm itself"
ktap_header
ktap_plan 10

dir=$WORK/imgs
img=$dir/d.qcow2
data=$dir/d.data
exp=$WORK/exp.raw
name=$(dq_name)
mkdir -p "$dir"

# A relative name in the header: qcow2-dm resolves it against the image's
# folder. QEMU 7.2 resolves it against its working directory: run it there.
qi() { (cd "$dir" && qemu-img "$@"); }
(cd "$dir" && qemu-img create -q -f qcow2 -o data_file=d.data d.qcow2 8M &&
 qemu-io -c 'write -P 0x3c 0 64k' -c 'write -P 0xc3 5M 68k' d.qcow2) >/dev/null
qi convert -O raw "$img" "$exp"

cd /
dq_attach "$img" "$name" || ktap_print "attach failed"
dq_step "attach names the data file by its resolved path" \
	sh -c "dmsetup table '$name' | grep -q ' data_file $data\$'"
dq_step "the device reads what qemu-img reads" cmp "$DEV" "$exp"
dq_step "info shows the data file" \
	sh -c "qcow2-dm info '$name' | grep -qx 'data_file: $data'"
dq_step "the data file is locked against other writers" \
	sh -c "! qemu-io -f raw -c 'write 0 4k' '$data' >/dev/null 2>&1"

head -c 200k /dev/urandom > "$WORK/w.bin"
dd if="$WORK/w.bin" of="$DEV" bs=1k seek=60 conv=notrunc,fsync status=none &&
dd if="$WORK/w.bin" of="$exp" bs=1k seek=60 conv=notrunc status=none
dq_step "snapshot --external refused, nothing created" \
	sh -c "! qcow2-dm snapshot '$name' --external '$WORK/o.qcow2' 2>/dev/null &&
	       test ! -e '$WORK/o.qcow2'"
dq_step "the device still reads what was written" cmp "$DEV" "$exp"
dq_detach "$name"
dq_step "after detach: image clean, content as written" \
	sh -c "cd '$dir' && qemu-img check -q '$img' &&
	       qemu-img compare -q '$img' '$exp'"

name=$(dq_name)
dq_attach "$img" "$name" --ro || ktap_print "ro attach failed"
dq_step "read-only attach: writes fail, data reads back" \
	sh -c "! dd if=/dev/zero of='$DEV' bs=4k count=1 oflag=direct status=none 2>/dev/null &&
	       cmp '$DEV' '$exp'"
dq_detach "$name"

# an overlay on the image: the kernel cannot open a backing image with a
# data file, attach says so
qi create -q -f qcow2 -b "$img" -F qcow2 "$WORK/top.qcow2"
dq_step "a backing image with a data file is refused" \
	sh -c "! qcow2-dm attach '$WORK/top.qcow2' '$(dq_name)' 2>'$WORK/err' &&
	       grep -q 'external data file' '$WORK/err'"
dq_step "attach --help tells about data files" \
	sh -c "qcow2-dm attach --help | grep -q 'data file'"

ktap_finish
