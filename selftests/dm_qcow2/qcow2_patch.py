#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Damage a qcow2 image that qemu-img made, in one named way.

usage: qcow2_patch.py KIND IMAGE

Kinds (each prints nothing and exits 0 when the patch was applied, 2 when
the image lacks what the kind needs):
  bad-magic bad-version huge-l1 l1-past-eof refcount-past-eof
  l1-overlaps-refcount l1-overlaps-header refcount-overlaps-header
  missing-refblock unknown-incompat corrupt-bit dirty-bit encrypted
  bad-cluster-bits huge-refcount-table truncated compressed-past-eof
  l2-into-metadata l2-past-eof l1-entry-past-eof l2-unaligned
  drop-backing-fmt   (not damage: hides the backing format extension)
"""
import os
import struct
import sys

HDR = struct.Struct(">IIQIIQIIQQIIQ")  # the 72-byte v2 header
EXT_BACKING_FMT = 0xE2792ACA
OFFSET_MASK = 0x00FFFFFFFFFFFE00


class Image:
    def __init__(self, path):
        self.path = path
        self.f = open(path, "r+b")
        h = HDR.unpack(self.f.read(HDR.size))
        (self.magic, self.version, self.backing_off, self.backing_len,
         self.cluster_bits, self.size, self.crypt, self.l1_size, self.l1_off,
         self.rt_off, self.rt_clusters, self.nb_snap, self.snap_off) = h
        self.cs = 1 << self.cluster_bits
        self.incompat = 0
        self.hdr_len = 72
        self.extl2 = False
        if self.version >= 3:
            self.f.seek(72)
            self.incompat, _, _, _, self.hdr_len = struct.unpack(">QQQII", self.f.read(32))
            self.extl2 = bool(self.incompat & (1 << 4))

    def eof(self):
        return os.fstat(self.f.fileno()).st_size

    def put(self, off, fmt, *vals):
        self.f.seek(off)
        self.f.write(struct.pack(fmt, *vals))

    def get(self, off, fmt):
        self.f.seek(off)
        return struct.unpack(fmt, self.f.read(struct.calcsize(fmt)))

    def l1_entry(self, i):
        return self.get(self.l1_off + 8 * i, ">Q")[0]

    def first_l2(self):
        """(l1 index, L2 table offset) of the first allocated L2 table."""
        for i in range(self.l1_size):
            off = self.l1_entry(i) & OFFSET_MASK
            if off:
                return i, off
        return None, None

    def l2_entry_size(self):
        return 16 if self.extl2 else 8

    def find_l2(self, want_compressed):
        """Offset in the file of the first L2 entry of the wanted kind."""
        _, l2 = self.first_l2()
        if l2 is None:
            return None
        es = self.l2_entry_size()
        for j in range(self.cs // es):
            e = self.get(l2 + j * es, ">Q")[0]
            comp = bool(e & (1 << 62))
            if comp == want_compressed and (comp or e & OFFSET_MASK):
                return l2 + j * es
        return None


def kind_bad_magic(im):
    im.put(0, ">I", 0x514649FC)


def kind_bad_version(im):
    im.put(4, ">I", 4)


def kind_huge_l1(im):
    im.put(36, ">I", 0x7FFFFFFF)


def kind_l1_past_eof(im):
    im.put(40, ">Q", (im.eof() // im.cs + 16) * im.cs)


def kind_refcount_past_eof(im):
    im.put(48, ">Q", (im.eof() // im.cs + 16) * im.cs)


def kind_l1_overlaps_refcount(im):
    im.put(40, ">Q", im.rt_off)


def kind_l1_overlaps_header(im):
    im.put(40, ">Q", 0)


def kind_refcount_overlaps_header(im):
    im.put(48, ">Q", 0)


def kind_missing_refblock(im):
    # every refcount table entry cleared: no refcount block at all
    im.put(im.rt_off, ">%dQ" % (im.rt_clusters * im.cs // 8),
           *([0] * (im.rt_clusters * im.cs // 8)))


def need_v3(im):
    if im.version < 3:
        sys.exit(2)


def kind_unknown_incompat(im):
    need_v3(im)
    im.put(72, ">Q", im.incompat | (1 << 40))


def kind_corrupt_bit(im):
    need_v3(im)
    im.put(72, ">Q", im.incompat | (1 << 1))


def kind_dirty_bit(im):
    need_v3(im)
    im.put(72, ">Q", im.incompat | (1 << 0))


def kind_encrypted(im):
    im.put(32, ">I", 1)  # AES


def kind_bad_cluster_bits(im):
    im.put(20, ">I", 31)


def kind_huge_refcount_table(im):
    im.put(56, ">I", 0x00FFFFFF)


def kind_truncated(im):
    # keep metadata that the header points at, cut the data away
    im.f.truncate(max(im.l1_off, im.rt_off) + im.cs)


def kind_compressed_past_eof(im):
    at = im.find_l2(True)
    if at is None:
        sys.exit(2)
    e = im.get(at, ">Q")[0]
    x = 62 - (im.cluster_bits - 8)
    host = ((im.eof() // im.cs) + 64) * im.cs
    e = (e & ~((1 << x) - 1)) | (host & ((1 << x) - 1))
    im.put(at, ">Q", e)


def set_data_entry(im, host):
    at = im.find_l2(False)
    if at is None:
        sys.exit(2)
    e = im.get(at, ">Q")[0]
    im.put(at, ">Q", (e & ~OFFSET_MASK) | host)


def kind_l2_into_metadata(im):
    # the first data cluster now claims the L1 table's cluster
    set_data_entry(im, im.l1_off & ~(im.cs - 1))


def kind_l2_past_eof(im):
    set_data_entry(im, ((im.eof() // im.cs) + 64) * im.cs)


def kind_l2_unaligned(im):
    at = im.find_l2(False)
    if at is None or im.cs == 512:
        sys.exit(2)
    e = im.get(at, ">Q")[0]
    im.put(at, ">Q", e | 0x200)


def kind_l1_entry_past_eof(im):
    i, _ = im.first_l2()
    if i is None:
        sys.exit(2)
    e = im.l1_entry(i)
    host = ((im.eof() // im.cs) + 64) * im.cs
    im.put(im.l1_off + 8 * i, ">Q", (e & ~OFFSET_MASK) | host)


def kind_drop_backing_fmt(im):
    off = im.hdr_len
    while off + 8 <= im.cs:
        t, ln = im.get(off, ">II")
        if t == 0:
            break
        if t == EXT_BACKING_FMT:
            im.put(off, ">I", 0x0DEADBEE)  # unknown extensions are skipped
            return
        off += 8 + ((ln + 7) & ~7)
    sys.exit(2)


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(1)
    fn = globals().get("kind_" + sys.argv[1].replace("-", "_"))
    if not fn:
        print("qcow2_patch: unknown kind " + sys.argv[1], file=sys.stderr)
        sys.exit(1)
    im = Image(sys.argv[2])
    if im.magic != 0x514649FB:
        print("qcow2_patch: not a qcow2 image", file=sys.stderr)
        sys.exit(1)
    fn(im)
    im.f.close()


if __name__ == "__main__":
    main()
