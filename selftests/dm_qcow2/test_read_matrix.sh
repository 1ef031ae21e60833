#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Read matrix, layouts: qcow2 v2 and v3, clusters of 512 B to 2 MiB,
# refcount widths 1 to 64 bits, zero clusters kept allocated or unmapped;
# known data at known offsets, some straddling clusters. Through qcow2-dm
# the device must read back what `qemu-img convert -O raw` gives.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/read_common.sh"

# Each case builds $img; echo nothing on success.
case_v2_64k()     { mk "$img" 65536 compat=0.10 && fill "$img" 65536 qcow2 ""; }
case_v2_4k()      { mk "$img" 4096 compat=0.10 && fill "$img" 4096 qcow2 ""; }
case_v3_512()     { mk "$img" 512 compat=1.1 && fill "$img" 512; }
case_v3_4k()      { mk "$img" 4096 compat=1.1 && fill "$img" 4096; }
case_v3_64k()     { mk "$img" 65536 compat=1.1 && fill "$img" 65536; }
case_v3_2M()      { mk "$img" $((2 * M)) compat=1.1 && fill "$img" $((2 * M)); }
case_v3_64k_zero_keep() { mk "$img" 65536 && fill "$img" 65536 qcow2 ""; }
case_refcount() { mk "$img" 4096 "refcount_bits=$1" && fill "$img" 4096; }
case_refcount_1()  { case_refcount 1; }
case_refcount_2()  { case_refcount 2; }
case_refcount_4()  { case_refcount 4; }
case_refcount_8()  { case_refcount 8; }
case_refcount_16() { case_refcount 16; }
case_refcount_32() { case_refcount 32; }
case_refcount_64() { case_refcount 64; }

read_matrix
