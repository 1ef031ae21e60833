#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# libvblk's virtio-scsi completion code fed hostile responses (shorter
# than their header, sense_len past the buffer, residuals, each SCSI
# status) under ASan and UBSan: tools/libvblk/tests/scsi_resp, the unit
# test of `make -C tools/libvblk check`, run here so that make check (and
# CI) runs it. Exit status: the number of failed cases, 0 when none.
exec "$(dirname "$0")/../../tools/libvblk/tests/scsi_resp"
