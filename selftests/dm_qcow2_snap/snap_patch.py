#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Damage the snapshot table of a qcow2 image, in one named way.

usage: snap_patch.py KIND IMAGE   (the image needs at least one snapshot)

Kinds:
  too-many          nb_snapshots 65537
  table-past-eof    snapshots_offset past the end of the file
  table-unaligned   snapshots_offset not cluster aligned
  table-over-l1     snapshots_offset at the active L1 table
  count-past-eof    nb_snapshots larger than what the file can hold
  extra-huge        first entry: extra_data_size 0x10000
  l1-past-eof       first entry: L1 table past the end of the file
  l1-unaligned      first entry: L1 table offset not cluster aligned
  l1-over-header    first entry: L1 table at offset 0
  l1-over-refcount  first entry: L1 table at the refcount table
  l1-huge           first entry: l1_size 0x1000000
  l2-over-refblock  first entry's first L2 table: entry 0 names the first
                    refcount block (for snapshot delete, not open)
  l2-over-active-l2 first entry's first L2 table: entry 1 names the active
                    image's first L2 table
"""
import os
import struct
import sys


def main():
    kind, path = sys.argv[1], sys.argv[2]
    with open(path, "r+b") as f:
        h = f.read(72)
        cbits = struct.unpack(">I", h[20:24])[0]
        cs = 1 << cbits
        l1_off = struct.unpack(">Q", h[40:48])[0]
        rt_off = struct.unpack(">Q", h[48:56])[0]
        nb, soff = struct.unpack(">IQ", h[60:72])
        if not nb:
            return 2
        eof = os.fstat(f.fileno()).st_size

        def put(off, fmt, *v):
            f.seek(off)
            f.write(struct.pack(fmt, *v))
        patches = {
            "too-many": (60, ">I", 65537),
            "table-past-eof": (64, ">Q", (eof // cs + 16) * cs),
            "table-unaligned": (64, ">Q", soff + 512),
            "table-over-l1": (64, ">Q", l1_off),
            "count-past-eof": (60, ">I", 60000),
            "extra-huge": (soff + 36, ">I", 0x10000),
            "l1-past-eof": (soff, ">Q", (eof // cs + 16) * cs),
            "l1-unaligned": (soff, ">Q", cs + 512),
            "l1-over-header": (soff, ">Q", 0),
            "l1-over-refcount": (soff, ">Q", rt_off),
            "l1-huge": (soff + 8, ">I", 0x1000000),
        }
        if kind.startswith("l2-over-"):
            f.seek(soff)
            sl1 = struct.unpack(">Q", f.read(8))[0]
            f.seek(sl1)
            t0 = struct.unpack(">Q", f.read(8))[0] & 0x00fffffffffffe00
            f.seek(rt_off)
            rb0 = struct.unpack(">Q", f.read(8))[0] & ~0x1ff
            f.seek(l1_off)
            al2 = struct.unpack(">Q", f.read(8))[0] & 0x00fffffffffffe00
            if not t0 or t0 == al2:
                return 2
            patches[kind] = {"l2-over-refblock": (t0, ">Q", rb0),
                             "l2-over-active-l2": (t0 + 8, ">Q", al2)}[kind]
        if kind not in patches:
            print(__doc__, file=sys.stderr)
            return 1
        put(*patches[kind])
    return 0


if __name__ == "__main__":
    sys.exit(main())
