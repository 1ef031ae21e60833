#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Damage qcow2 images on purpose, for the hostile-image tests.

  qcow2patch.py IMG set OFFSET SIZE VALUE     write a big-endian integer
  qcow2patch.py IMG l2 GUEST_OFFSET VALUE     set the L2 entry of a guest offset
  qcow2patch.py IMG rt INDEX VALUE            set a refcount table entry
  qcow2patch.py IMG get FIELD                 print a header field
  qcow2patch.py IMG l2table GUEST_OFFSET      print the L2 table's host offset
  qcow2patch.py IMG rtentry INDEX             print a refcount table entry
"""
import struct
import sys

FIELDS = {"l1_size": (36, 4), "l1_table_offset": (40, 8),
          "refcount_table_offset": (48, 8), "cluster_bits": (20, 4),
          "refcount_table_clusters": (56, 4), "size": (24, 8)}


def rd(f, off, size):
    f.seek(off)
    return int.from_bytes(f.read(size), "big")


def wr(f, off, size, val):
    f.seek(off)
    f.write((int(val) & ((1 << (8 * size)) - 1)).to_bytes(size, "big"))


def main():
    img, op = sys.argv[1], sys.argv[2]
    with open(img, "r+b") as f:
        if op == "set":
            wr(f, int(sys.argv[3], 0), int(sys.argv[4]), int(sys.argv[5], 0))
        elif op == "get":
            off, size = FIELDS[sys.argv[3]]
            print(rd(f, off, size))
        elif op == "rt":
            rt = rd(f, 48, 8)
            wr(f, rt + 8 * int(sys.argv[3]), 8, int(sys.argv[4], 0))
        elif op == "rtentry":
            print(rd(f, rd(f, 48, 8) + 8 * int(sys.argv[3]), 8))
        elif op == "l2table":
            cb = rd(f, 20, 4)
            incompat = rd(f, 72, 8) if rd(f, 4, 4) >= 3 else 0
            per_l2 = (1 << cb) // (16 if incompat & 16 else 8)
            l1i = (int(sys.argv[3], 0) >> cb) // per_l2
            print(rd(f, rd(f, 40, 8) + 8 * l1i, 8) & 0x00fffffffffffe00)
        elif op == "l2":
            cb = rd(f, 20, 4)
            incompat = rd(f, 72, 8) if rd(f, 4, 4) >= 3 else 0
            esz = 16 if incompat & 16 else 8
            guest = int(sys.argv[3], 0)
            per_l2 = (1 << cb) // esz
            l1i, l2i = divmod(guest >> cb, per_l2)
            l2 = rd(f, rd(f, 40, 8) + 8 * l1i, 8) & 0x00fffffffffffe00
            if not l2:
                sys.exit("no L2 table for that offset")
            wr(f, l2 + esz * l2i, 8, int(sys.argv[4], 0))
        else:
            sys.exit(__doc__)


if __name__ == "__main__":
    main()
