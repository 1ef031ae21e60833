#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""qcow2 image fuzzer for the dm-qcow2 target.

Seed images come from qemu-img / qemu-io (every layout the target may meet,
external data files too: a case gets a fresh copy of its seed's data file);
each fuzz case copies one seed and damages it in 1..4 ways chosen by a
deterministic PRNG seeded with the case number, so any case can be rebuilt
from its number alone. In the test VM every case is first read by QEMU,
then attached with `dmsetup create` (table length from the damaged header,
and from the seed's real size); the device's reads are judged against
QEMU's (the judge: its comment below, Documentation/reliability.md), a
few blocks are written and flushed, and the device is removed. Refusal at create and I/O errors are fine; a silent
difference from QEMU, a kernel warning, an oops or a hang (per-command
timeout) is not, and such a case is saved (--save, the corpus).

  qcow2_fuzz.py seeds DIR                 make the seed images in DIR
  qcow2_fuzz.py mutate DIR CASE OUT       write case CASE's image to OUT
  qcow2_fuzz.py run DIR [--iters N] [--first CASE] [--timeout S]
                        [--save CORPUS]   fuzz cases FIRST..FIRST+N-1
  qcow2_fuzz.py run DIR --case CASE       one case (reproducer)
  qcow2_fuzz.py run DIR --pristine        the seeds unmutated, judged
  qcow2_fuzz.py corpus CORPUS --work DIR  replay the saved cases

`run` prints one line per case that found something, and a summary; exit
status 1 when a case differed from QEMU, hung or the kernel logged a
warning.
"""
import argparse
import os
import random
import shutil
import struct
import subprocess
import sys
import time

HDR = struct.Struct(">IIQIIQIIQQIIQ")  # the 72-byte v2 header
OFFSET_MASK = 0x00FFFFFFFFFFFE00
EXT_BACKING_FMT = 0xE2792ACA
EXT_FEATURES = 0x6803F857
EXT_BITMAPS = 0x23852875
MIB = 1 << 20

# name, create options, qemu-io writes (c: compressed), virtual size,
# extra steps. Sizes stay small so that reading the whole device is cheap.
SEEDS = [
    ("v2", "compat=0.10,cluster_size=65536", "w:0:128k w:1M:64k", 8 * MIB),
    ("v3", "cluster_size=65536", "w:0:192k w:3M:64k w:7M:64k", 8 * MIB),
    ("small-cluster", "cluster_size=4096", "w:0:64k w:2M:8k", 4 * MIB),
    ("tiny-cluster", "cluster_size=512", "w:0:16k", 2 * MIB),
    ("large-cluster", "cluster_size=2097152", "w:0:64k w:6M:2M", 16 * MIB),
    ("extl2", "cluster_size=65536,extended_l2=on", "w:0:8k w:64k:4k w:1M:64k", 8 * MIB),
    ("deflate", "cluster_size=65536", "c:0:64k c:128k:64k w:1M:64k", 8 * MIB),
    ("zstd", "cluster_size=65536,compression_type=zstd", "c:0:64k c:2M:64k w:64k:64k", 8 * MIB),
    ("zstd-extl2", "cluster_size=65536,compression_type=zstd,extended_l2=on",
     "c:0:64k w:1M:4k", 8 * MIB),
    ("snapshots", "cluster_size=65536", "w:0:128k snap:s1 w:0:64k w:2M:64k snap:s2 w:64k:64k", 8 * MIB),
    ("bitmaps", "cluster_size=65536", "bitmap:b0 bitmap:b1 w:0:128k w:4M:64k", 8 * MIB),
    ("backing", "cluster_size=65536", "w:1M:64k", 8 * MIB),
    ("prealloc", "cluster_size=65536,preallocation=metadata", "w:0:64k", 8 * MIB),
    # "@" stands for the seed's external data file, SEED.data
    ("datafile", "cluster_size=65536,data_file=@", "w:0:128k w:1M:64k", 8 * MIB),
    ("datafile-raw", "cluster_size=65536,data_file=@,data_file_raw=on", "w:0:64k w:2M:64k",
     8 * MIB),
    ("datafile-extl2", "cluster_size=65536,extended_l2=on,data_file=@", "w:0:8k w:1M:64k",
     8 * MIB),
    # z: zeroed with the host cluster kept (QEMU's "zero, allocated"): the
    # data under the zero flag or zero subcluster bit is not zero
    ("zero-flag", "cluster_size=65536", "w:0:192k z:64k:64k w:1M:128k z:1M:64k", 8 * MIB),
    ("extl2-zero", "cluster_size=65536,extended_l2=on",
     "w:0:64k z:8k:8k w:2M:64k z:2M:2k z:3M:64k", 8 * MIB),
]
for _bits in (1, 2, 4, 8, 32, 64):
    SEEDS.append(("refcount%d" % _bits, "cluster_size=65536,refcount_bits=%d" % _bits,
                  "w:0:128k w:5M:64k", 8 * MIB))

PATTERN_BASE = 0x40


def sh(*cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def make_seeds(d):
    d = os.path.abspath(d)
    os.makedirs(d, exist_ok=True)
    base = os.path.join(d, "backing-base.qcow2")
    sh("qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=65536", base, str(8 * MIB))
    sh("qemu-io", "-c", "write -P 0x11 0 2M", base)
    for n, (name, opts, steps, size) in enumerate(SEEDS):
        img = os.path.join(d, name + ".qcow2")
        opts = opts.replace("@", os.path.join(d, name + ".data"))
        cmd = ["qemu-img", "create", "-q", "-f", "qcow2", "-o", opts]
        if name == "backing":
            cmd += ["-b", base, "-F", "qcow2"]
        sh(*(cmd + [img, str(size)]))
        for i, st in enumerate(steps.split()):
            kind, arg = st.split(":", 1)
            pat = PATTERN_BASE + n + i
            if kind in ("w", "c"):
                off, ln = arg.split(":")
                sh("qemu-io", "-c", "write %s-P 0x%x %s %s" % ("-c " if kind == "c" else "", pat, off, ln), img)
            elif kind == "z":
                off, ln = arg.split(":")
                sh("qemu-io", "-c", "write -z %s %s" % (off, ln), img)
            elif kind == "snap":
                sh("qemu-img", "snapshot", "-c", arg, img)
            elif kind == "bitmap":
                sh("qemu-img", "bitmap", "--add", img, arg)
    return [s[0] for s in SEEDS]


class Img:
    """A qcow2 file opened for patching, with its metadata located."""

    FIELDS = ["magic", "version", "backing_off", "backing_len", "cluster_bits",
              "size", "crypt", "l1_size", "l1_off", "rt_off", "rt_clusters",
              "nb_snap", "snap_off"]

    def __init__(self, path):
        self.path = path
        self.f = open(path, "r+b")
        self.reload()

    def reload(self):
        self.f.seek(0)
        h = HDR.unpack(self.f.read(HDR.size))
        self.h = dict(zip(self.FIELDS, h))
        self.cb = self.h["cluster_bits"]
        self.cs = 1 << min(max(self.cb, 9), 21)
        self.v3 = self.h["version"] >= 3
        self.incompat = 0
        self.hdr_len = 72
        if self.v3:
            self.incompat, _, _, self.rc_order, self.hdr_len = self.get(72, ">QQQII")
        self.extl2 = bool(self.incompat & (1 << 4))

    def eof(self):
        return os.fstat(self.f.fileno()).st_size

    def put(self, off, fmt, *vals):
        self.f.seek(off)
        self.f.write(struct.pack(fmt, *vals))

    def get(self, off, fmt):
        self.f.seek(off)
        b = self.f.read(struct.calcsize(fmt))
        if len(b) < struct.calcsize(fmt):
            b = b.ljust(struct.calcsize(fmt), b"\0")
        return struct.unpack(fmt, b)

    def q(self, off):
        return self.get(off, ">Q")[0]

    # metadata locations -------------------------------------------------
    def l1_entries(self, limit=4096):
        n = min(self.h["l1_size"], limit)
        return [self.h["l1_off"] + 8 * i for i in range(n)]

    def l2_tables(self):
        out = []
        for p in self.l1_entries():
            off = self.q(p) & OFFSET_MASK
            if off and off < self.eof():
                out.append(off)
        return out

    def l2_entries(self, want=None):
        """File offsets of L2 entries; want: None, 'alloc', 'compressed'."""
        es = 16 if self.extl2 else 8
        out = []
        n = min(self.cs // es, 4096)
        for t in self.l2_tables()[:8]:
            self.f.seek(t)
            raw = self.f.read(n * es).ljust(n * es, b"\0")
            for j in range(n):
                e = struct.unpack_from(">Q", raw, j * es)[0]
                comp = bool(e & (1 << 62))
                if want is None or (want == "compressed" and comp) or \
                   (want == "alloc" and not comp and e & OFFSET_MASK):
                    out.append(t + j * es)
        return out

    def rt_entries(self):
        n = min(self.h["rt_clusters"] * self.cs // 8, 4096)
        return [self.h["rt_off"] + 8 * i for i in range(n)
                if self.h["rt_off"] + 8 * i < self.eof()]

    def refblocks(self):
        return [self.q(p) & ~0x1FF & ((1 << 63) - 1) for p in self.rt_entries()
                if self.q(p)]

    def extensions(self):
        """(offset of the type field, type, length) of each header extension."""
        out = []
        if not self.v3:
            p = 72
        else:
            p = self.hdr_len
        end = min(self.cs, 65536, self.eof())
        while p + 8 <= end and len(out) < 32:
            t, ln = self.get(p, ">II")
            if t == 0:
                break
            out.append((p, t, ln))
            p += 8 + ((ln + 7) & ~7)
        return out

    def snapshots(self):
        """File offsets of snapshot table entries."""
        out = []
        p = self.h["snap_off"]
        for _ in range(min(self.h["nb_snap"], 16)):
            if p + 40 > self.eof():
                break
            out.append(p)
            _, _, id_len, name_len, _, _, _, _, extra = self.get(p, ">QIHHIIQII")
            p += 40 + extra + id_len + name_len
            p = (p + 7) & ~7
        return out

    def bitmap_ext(self):
        for p, t, ln in self.extensions():
            if t == EXT_BITMAPS:
                return p + 8
        return None


def interesting(rng, img, bits=64):
    """A value chosen to hurt: boundaries, EOF, metadata offsets, odd."""
    cs = img.cs
    eof = img.eof()
    meta = [0, img.h["l1_off"], img.h["rt_off"], img.h["snap_off"]] + img.l2_tables()[:4] + \
        img.refblocks()[:4]
    choices = [
        lambda: 0, lambda: 1, lambda: (1 << bits) - 1, lambda: 1 << (bits - 1),
        lambda: rng.getrandbits(bits),
        lambda: eof, lambda: eof + cs, lambda: (eof + cs) & ~(cs - 1),
        lambda: 1 << rng.randrange(bits),
        lambda: rng.choice(meta),
        lambda: rng.choice(meta) + rng.choice([0x200, 8, 1, cs // 2]),
        lambda: (1 << 55) - cs, lambda: (1 << 56) - 512,
        lambda: rng.randrange(0, max(eof, 1)),
    ]
    return rng.choice(choices)() & ((1 << bits) - 1)


def mutate_entry(rng, img, p, kind):
    """Damage the 64-bit table entry at file offset p."""
    e = img.q(p)
    cs = img.cs
    eof = img.eof()
    meta = [0, img.h["l1_off"], img.h["rt_off"]] + img.l2_tables()[:4] + img.refblocks()[:4]
    how = rng.randrange(9)
    flags = e & ~OFFSET_MASK
    if how == 0:
        e = flags | (((eof + cs * rng.randrange(1, 64)) & ~(cs - 1)) & OFFSET_MASK)
        what = "past EOF"
    elif how == 1:
        e = flags | (rng.choice(meta) & OFFSET_MASK)
        what = "into metadata"
    elif how == 2:
        e = (e & ~OFFSET_MASK) | (((e & OFFSET_MASK) + rng.choice([512, 4096, cs // 2, 8])) & OFFSET_MASK)
        what = "odd alignment"
    elif how == 3:
        e ^= 1 << rng.randrange(64)
        what = "bit flip"
    elif how == 4:
        e |= rng.choice([1 << 62, 1 << 63, 1, 0x1FE, 1 << 56, 0x00FF000000000000])
        what = "flag/reserved bits"
    elif how == 5:
        e = 0
        what = "zeroed"
    elif how == 6:
        e = (1 << 64) - 1
        what = "all ones"
    elif how == 7:
        e = flags | ((1 << 55) & OFFSET_MASK) | 0x200
        what = "offset near 2^55"
    else:
        e = rng.getrandbits(64)
        what = "random"
    img.put(p, ">Q", e)
    return "%s entry @0x%x %s" % (kind, p, what)


# mutators: each returns a description or None when the image lacks the part
def m_header_field(rng, img):
    fields = [(4, ">I", "version", 32), (8, ">Q", "backing_off", 64), (16, ">I", "backing_len", 32),
              (20, ">I", "cluster_bits", 32), (24, ">Q", "size", 64), (32, ">I", "crypt", 32),
              (36, ">I", "l1_size", 32), (40, ">Q", "l1_off", 64), (48, ">Q", "rt_off", 64),
              (56, ">I", "rt_clusters", 32), (60, ">I", "nb_snap", 32), (64, ">Q", "snap_off", 64)]
    if img.v3:
        fields += [(96, ">I", "refcount_order", 32), (100, ">I", "header_length", 32)]
        if img.hdr_len > 104:
            fields += [(104, ">B", "compression_type", 8)]
    off, fmt, name, bits = rng.choice(fields)
    old = img.get(off, fmt)[0]
    how = rng.randrange(4)
    if how == 0:
        v = interesting(rng, img, bits)
    elif how == 1:
        v = old ^ (1 << rng.randrange(bits))
    elif how == 2:
        v = (old + rng.choice([-1, 1, -8, 8, 512, 1 << 16])) % (1 << bits)
    else:
        v = rng.choice([0, 1, 2, 3, 4, 7, 8, 9, 12, 16, 20, 21, 22, 30, 31, 32, 63, 64, 104, 112, 0xFFFF])
    img.put(off, fmt, v & ((1 << bits) - 1))
    return "header %s 0x%x -> 0x%x" % (name, old, v & ((1 << bits) - 1))


def m_feature_bits(rng, img):
    if not img.v3:
        img.put(4, ">I", 3)      # turn it into a v3 header over v2 contents
        return "v2 header claims version 3"
    off = rng.choice([72, 80, 88])
    old = img.q(off)
    bit = rng.choice([0, 1, 2, 3, 4, 5, rng.randrange(64)])
    img.put(off, ">Q", old ^ (1 << bit))
    return "feature word @%d bit %d toggled" % (off, bit)


def m_extension(rng, img):
    exts = img.extensions()
    if not exts or rng.randrange(4) == 0:
        p = exts[-1][0] + 8 + ((exts[-1][2] + 7) & ~7) if exts else (img.hdr_len if img.v3 else 72)
        t = rng.choice([EXT_BACKING_FMT, EXT_FEATURES, EXT_BITMAPS, 0x0537BE77, 0x44415441,
                        rng.getrandbits(32)])
        ln = rng.choice([0, 1, 7, 8, 24, 0xFFFF, 0xFFFFFFFF, rng.getrandbits(16)])
        img.put(p, ">II", t, ln)
        img.put(p + 8, ">QQQ", rng.getrandbits(64), rng.getrandbits(64), rng.getrandbits(64))
        return "extension 0x%x len %d added @0x%x" % (t, ln, p)
    p, t, ln = rng.choice(exts)
    how = rng.randrange(3)
    if how == 0:
        nl = rng.choice([0, 1, 3, 0xFFFF, 0xFFFFFFFF, ln + 8, ln - 1 if ln else 9, img.cs])
        img.put(p + 4, ">I", nl & 0xFFFFFFFF)
        return "extension 0x%x length %d -> %d" % (t, ln, nl & 0xFFFFFFFF)
    if how == 1:
        nt = rng.choice([EXT_BACKING_FMT, EXT_FEATURES, EXT_BITMAPS, 0, rng.getrandbits(32)])
        img.put(p, ">I", nt)
        return "extension 0x%x type -> 0x%x" % (t, nt)
    if ln == 0:
        return None
    q = p + 8 + rng.randrange(min(ln, 4096))
    img.put(q, ">B", rng.getrandbits(8))
    return "extension 0x%x byte @0x%x" % (t, q)


def m_l1(rng, img):
    e = img.l1_entries()
    if not e:
        return None
    used = [p for p in e if img.q(p)]
    p = rng.choice(used) if used and rng.randrange(4) else rng.choice(e)
    return mutate_entry(rng, img, p, "L1")


def m_l2(rng, img):
    e = img.l2_entries("alloc") or img.l2_entries()
    if not e:
        return None
    p = rng.choice(e)
    if img.extl2 and rng.randrange(3) == 0:
        q = p + 8
        old = img.q(q)
        v = rng.choice([old ^ (1 << rng.randrange(64)), (1 << 64) - 1,
                        old | (old << 32), rng.getrandbits(64)]) & ((1 << 64) - 1)
        img.put(q, ">Q", v)
        return "extended L2 bitmap @0x%x 0x%x -> 0x%x" % (q, old, v)
    return mutate_entry(rng, img, p, "L2")


def m_compressed(rng, img):
    e = img.l2_entries("compressed")
    if not e:
        return None
    p = rng.choice(e)
    v = img.q(p)
    x = 62 - (img.cb - 8) if 9 <= img.cb <= 21 else 54
    off = v & ((1 << x) - 1)
    nsec = (v >> x) & ((1 << (62 - x)) - 1)
    how = rng.randrange(6)
    if how == 0:
        nsec = (1 << (62 - x)) - 1
        what = "max sectors"
    elif how == 1:
        off = img.eof() + rng.choice([0, 1, 512, img.cs])
        what = "offset past EOF"
    elif how == 2:
        off = img.eof() - rng.choice([1, 100, 511])
        what = "data runs past EOF"
    elif how == 3:
        off = rng.choice([0, img.h["l1_off"], img.h["rt_off"]] + img.l2_tables()[:2]) + rng.randrange(512)
        what = "offset into metadata"
    elif how == 4:
        # same offset, garbage inside the compressed stream
        img.put(off + rng.randrange(64), ">B", rng.getrandbits(8))
        return "compressed data byte flipped (entry @0x%x)" % p
    else:
        nsec = 0
        off += rng.randrange(1, 512)
        what = "zero sectors, odd offset"
    v = (v & (3 << 62)) | ((nsec & ((1 << (62 - x)) - 1)) << x) | (off & ((1 << x) - 1))
    img.put(p, ">Q", v)
    return "compressed descriptor @0x%x %s" % (p, what)


def m_refcount(rng, img):
    rt = img.rt_entries()
    if not rt:
        return None
    if rng.randrange(2):
        return mutate_entry(rng, img, rng.choice(rt[:8]), "refcount table")
    rbs = [b for b in img.refblocks() if b and b < img.eof()]
    if not rbs:
        return None
    b = rng.choice(rbs)
    p = b + rng.randrange(min(img.cs, 512))
    v = rng.choice([0, 0xFF, rng.getrandbits(8)])
    img.put(p, ">B", v)
    return "refcount block byte @0x%x = 0x%x" % (p, v)


def m_snapshot(rng, img):
    snaps = img.snapshots()
    if not snaps:
        return None
    p = rng.choice(snaps)
    fields = [(0, ">Q", "l1_off", 64), (8, ">I", "l1_size", 32), (12, ">H", "id_len", 16),
              (14, ">H", "name_len", 16), (32, ">I", "vm_state_size", 32),
              (36, ">I", "extra_size", 32), (40, ">Q", "extra:vm_state_size", 64),
              (48, ">Q", "extra:disk_size", 64)]
    off, fmt, name, bits = rng.choice(fields)
    v = interesting(rng, img, bits)
    img.put(p + off, fmt, v)
    return "snapshot @0x%x %s = 0x%x" % (p, name, v)


def m_bitmap(rng, img):
    b = img.bitmap_ext()
    if b is None:
        return None
    nb, _, dsize, doff = img.get(b, ">IIQQ")
    how = rng.randrange(4)
    if how == 0:
        off, fmt, name, bits = rng.choice([(0, ">I", "nb_bitmaps", 32), (8, ">Q", "dir_size", 64),
                                           (16, ">Q", "dir_offset", 64)])
        v = interesting(rng, img, bits)
        img.put(b + off, fmt, v)
        return "bitmaps extension %s = 0x%x" % (name, v)
    if doff >= img.eof() or not dsize:
        return None
    if how == 1:
        # directory entry: table offset, table size, flags, type, gran, name
        off, fmt, name, bits = rng.choice([(0, ">Q", "table_off", 64), (8, ">I", "table_size", 32),
                                           (12, ">I", "flags", 32), (16, ">B", "type", 8),
                                           (17, ">B", "granularity", 8), (18, ">H", "name_size", 16),
                                           (20, ">I", "extra_size", 32)])
        v = interesting(rng, img, bits)
        img.put(doff + off, fmt, v)
        return "bitmap directory %s = 0x%x" % (name, v)
    if how == 2:
        toff = img.q(doff) & OFFSET_MASK
        if not toff or toff >= img.eof():
            return None
        return mutate_entry(rng, img, toff, "bitmap table")
    p = doff + rng.randrange(min(dsize, 4096))
    img.put(p, ">B", rng.getrandbits(8))
    return "bitmap directory byte @0x%x" % p


def m_truncate(rng, img):
    eof = img.eof()
    n = rng.choice([rng.randrange(eof), eof - rng.randrange(1, img.cs + 1),
                    (eof // 2) & ~(img.cs - 1), eof - 1, 72, 4096])
    n = max(0, min(n, eof))
    img.f.truncate(n)
    return "truncated %d -> %d" % (eof, n)


def m_bytes(rng, img):
    hot = [0, img.h["l1_off"], img.h["rt_off"]] + img.l2_tables()[:2] + img.refblocks()[:2]
    base = rng.choice(hot)
    n = rng.randrange(1, 9)
    for _ in range(n):
        p = base + rng.randrange(min(img.cs, 1024))
        if p < img.eof():
            img.put(p, ">B", rng.getrandbits(8))
    return "%d random bytes near 0x%x" % (n, base)


MUTATORS = [(m_header_field, 5), (m_feature_bits, 2), (m_extension, 2), (m_l1, 4),
            (m_l2, 5), (m_compressed, 3), (m_refcount, 3), (m_snapshot, 2),
            (m_bitmap, 2), (m_truncate, 1), (m_bytes, 2)]


def case_rng(case):
    return random.Random(0x9C0F2 * 1000003 + case)


def mutate(seed_dir, case, out):
    """Build case CASE's image at OUT; return (seed name, [what was done])."""
    rng = case_rng(case)
    names = [s[0] for s in SEEDS]
    name = names[rng.randrange(len(names))]
    shutil.copyfile(os.path.join(seed_dir, name + ".qcow2"), out)
    img = Img(out)
    done = []
    want = rng.choice([1, 1, 1, 2, 2, 3, 4])
    tries = 0
    while len(done) < want and tries < 20:
        tries += 1
        fn = rng.choices([m[0] for m in MUTATORS], [m[1] for m in MUTATORS])[0]
        try:
            d = fn(rng, img)
        except (struct.error, ValueError, OverflowError, OSError):
            d = None
        if d:
            done.append(d)
            img.f.flush()
            try:
                img.reload()
            except struct.error:
                break   # truncated inside the header: a case as it is
    img.f.close()
    return name, done


# ---- running cases in the VM -------------------------------------------

class Kmsg:
    """New kernel log records since the last call (from /dev/kmsg)."""

    BAD = ("WARNING:", "BUG:", "Oops", "Call Trace", "KASAN", "UBSAN", "general protection",
           "INFO: task", "lockdep", "possible circular", "RCU stall", "list_add corruption",
           "list_del corruption", "kernel BUG")

    def __init__(self):
        self.fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
        os.lseek(self.fd, 0, os.SEEK_END)

    def new(self):
        out = []
        while True:
            try:
                rec = os.read(self.fd, 8192)
            except BlockingIOError:
                break
            except OSError:     # EPIPE: records overwritten, go on
                continue
            if not rec:
                break
            out.append(rec.decode(errors="replace").split(";", 1)[-1].rstrip())
        return out

    def bad(self, lines):
        return [ln for ln in lines if any(b in ln for b in self.BAD)]


class Hang(Exception):
    pass


CMD_TIME = {}
PLANT = None    # "hang": self-test of the hang detection


def run_cmd(cmd, timeout):
    """Run cmd; (rc, output). A command still running after timeout means
    the device hung: raise Hang without waiting for the (maybe unkillable)
    process."""
    t0 = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        raise Hang(" ".join(cmd))
    k = " ".join(cmd[:2]) if cmd[0] == "dmsetup" else cmd[0]
    CMD_TIME[k] = CMD_TIME.get(k, 0) + time.time() - t0
    return p.returncode, out.decode(errors="replace")


def header_sectors(path):
    try:
        with open(path, "rb") as f:
            h = f.read(32)
        return struct.unpack(">Q", h[24:32])[0] // 512 if len(h) == 32 else 0
    except OSError:
        return 0


def exercise(dev_name, sectors, st, timeout):
    """Read the device (whole when small: first 16 MiB and last 1 MiB
    otherwise), write and flush a few blocks. Errors are counted, not
    judged."""
    dev = "/dev/mapper/" + dev_name
    size = sectors * 512
    reads = [(0, min(size, 16 * MIB))]
    if size > 16 * MIB:
        reads.append((size - MIB, MIB))
    for off, ln in reads:
        bs = MIB if off % MIB == 0 and ln % MIB == 0 else 512
        rc, _ = run_cmd(["dd", "if=" + dev, "of=/dev/null", "bs=%d" % bs, "iflag=direct",
                         "skip=%d" % (off // bs), "count=%d" % (ln // bs)], timeout)
        if rc:
            st["read_errors"] += 1
    for off in sorted({0, (size // 2) & ~4095, max(size - 4096, 0) & ~4095}):
        if off + 4096 > size:
            continue
        rc, _ = run_cmd(["dd", "if=/dev/zero", "of=" + dev, "bs=4096", "count=1",
                         "seek=%d" % (off // 4096), "oflag=direct", "conv=notrunc"], timeout)
        if rc:
            st["write_errors"] += 1
    if PLANT == "hang":
        run_cmd(["sleep", str(timeout + 5)], timeout)   # a device that never answers
    rc, _ = run_cmd(["blockdev", "--flushbufs", dev], timeout)
    if rc:
        st["flush_errors"] += 1


# ---- the judge: QEMU's reading of the same image ------------------------
#
# Before the image is attached, QEMU opens it read-only with the same
# external data file and backing file the table names. When QEMU cannot
# open it (qemu-img info fails), the case is not judged. Otherwise
# `qemu-img check` classes it: consistent (exit 0, or 3: leaked clusters
# only) or corrupt (any other exit; QEMU still reads it). The first
# JUDGE_MAX bytes of the virtual disk (all of it for every seed) are read
# by QEMU and, through the attached device before anything is written to
# it, with O_DIRECT, in regions of REGION bytes, each on its own so that an
# error in one hides no other. Per region:
#   QEMU bytes, device bytes     equal: fine; different: FAIL
#   QEMU bytes, device EIO       fine (the target may refuse what it
#                                cannot serve safely)
#   QEMU error, device EIO       fine
#   QEMU error, device bytes     FAIL: the device made up data QEMU
#                                could not read (a compressed stream QEMU
#                                rejects, an entry QEMU calls corrupt)
# The same rule holds for consistent and corrupt images: QEMU opened
# read-only never marks an image corrupt, it fails the requests that meet
# damage, so each region's outcome is its own. A region either side
# could not judge (another errno, a short read) is counted as skipped.
# A table the target refuses for an image QEMU calls consistent and reads
# without an error is counted with the target's reason (refused-clean):
# reported, not failed; each such reason is weighed against the qcow2
# specification by hand (Documentation/reliability.md).

REGION = 64 << 10
JUDGE_MAX = 16 * MIB
QEMU_TIMEOUT = 120


def qemu_spec(c, backing=True):
    """The case as QEMU opens it: json: filename with the same data file
    and backing file as the table."""
    import json
    spec = {"driver": "qcow2", "file": {"driver": "file", "filename": c["img"]}}
    if c["data"]:
        spec["data-file"] = {"driver": "file", "filename": c["data"]}
    if c["backing"] and backing:
        spec["backing"] = {"driver": "qcow2",
                           "file": {"driver": "file", "filename": c["backing"]}}
    return "json:" + json.dumps(spec, separators=(",", ":"))


def qemu_run(cmd):
    """(rc, output) of a QEMU tool; rc None when it ran out of time."""
    t0 = time.time()
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=QEMU_TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, "timed out"
    finally:
        CMD_TIME[cmd[0]] = CMD_TIME.get(cmd[0], 0) + time.time() - t0
    return p.returncode, p.stdout.decode(errors="replace")


def qemu_check(c):
    """qemu-img check's exit status: 0 clean, 3 leaks only, 2 corrupt."""
    rc, _ = qemu_run(["qemu-img", "check", qemu_spec(c, backing=False)])
    return rc


def regions_of(length):
    out = []
    for off in range(0, length, REGION):
        ln = min(REGION, length - off) & ~511
        if ln:
            out.append((off, ln))
    return out


def qemu_view(c, work, st):
    """QEMU's reading of the case: None (QEMU cannot open it) or a dict:
    size, regions [(off, len)], status (str, '.' read, 'E' error, '-' not
    judged), data (bytes). The virtual size is the header's, as QEMU's."""
    spec = qemu_spec(c)
    size = header_sectors(c["img"]) * 512
    v = {"size": size, "regions": regions_of(min(size, JUDGE_MAX))}
    n = len(v["regions"])
    raw = os.path.join(work, "qemu.raw")
    if not n:
        v.update(status="", data=b"")
        return v
    length = v["regions"][-1][0] + v["regions"][-1][1]
    rc, out = qemu_run(["qemu-img", "dd", "-O", "raw", "bs=%d" % REGION,
                        "count=%d" % n, "if=" + spec, "of=" + raw])
    if rc == 0:
        with open(raw, "rb") as f:
            data = f.read(length)
        os.unlink(raw)
        v.update(status="." * n, data=data.ljust(length, b"\0"))
        return v
    # some region failed: each on its own (qemu-io), then the readable
    # runs of regions with qemu-img dd
    cmd = ["qemu-io", "-r", spec]
    for off, ln in v["regions"]:
        cmd += ["-c", "read %d %d" % (off, ln)]
    rc, out = qemu_run(cmd)
    status = []
    if rc is not None:
        for line in out.splitlines():
            if line.startswith("read ") and " bytes at offset " in line:
                status.append(".")
            elif line.startswith("read failed: Input/output error"):
                status.append("E")
            elif line.startswith("read failed"):
                status.append("-")
    if len(status) != n:
        st["qemu_refused"] += 1
        return None
    data = bytearray(length)
    i = 0
    while i < n:
        if status[i] != ".":
            i += 1
            continue
        j = i
        while j < n and status[j] == ".":
            j += 1
        rc, _ = qemu_run(["qemu-img", "dd", "-O", "raw", "bs=%d" % REGION,
                          "skip=%d" % i, "count=%d" % (j - i), "if=" + spec, "of=" + raw])
        if rc == 0:
            with open(raw, "rb") as f:
                b = f.read(length - i * REGION)
            data[i * REGION:i * REGION + len(b)] = b
        else:
            status[i:j] = "-" * (j - i)
        if os.path.exists(raw):
            os.unlink(raw)
        i = j
    v.update(status="".join(status), data=bytes(data))
    return v


def read_regions(dev, length, plant_diff=False):
    """Read DEV in regions with O_DIRECT, each on its own: (status, data),
    status one character a region ('.' read, 'E' EIO, '-' other), data
    with zeros where a read failed."""
    import mmap
    fd = os.open(dev, os.O_RDONLY | os.O_DIRECT)
    buf = mmap.mmap(-1, REGION)
    status = []
    out = []
    try:
        for off, ln in regions_of(length):
            mv = memoryview(buf)[:ln]
            try:
                n = os.preadv(fd, [mv], off)
                s = "." if n == ln else "-"
            except OSError as e:
                s = "E" if e.errno == 5 else "-"
            data = bytes(mv) if s == "." else bytes(ln)
            if s == "." and plant_diff and "." not in status:
                data = bytes([data[0] ^ 0x5A]) + data[1:]   # self-test: a wrong byte
            out.append(data)
            status.append(s)
            del mv
    finally:
        os.close(fd)
    return "".join(status), b"".join(out)


def read_regions_timed(dev, length, timeout):
    """read_regions() in a thread: a device that stops answering raises
    Hang (the thread stays blocked; the run ends there)."""
    import threading
    res = {}

    def work():
        try:
            res["r"] = read_regions(dev, length, PLANT == "diff")
        except OSError as e:
            res["e"] = e
    t0 = time.time()
    t = threading.Thread(target=work, daemon=True)
    t.start()
    t.join(timeout)
    CMD_TIME["device reads"] = CMD_TIME.get("device reads", 0) + time.time() - t0
    if t.is_alive():
        raise Hang("O_DIRECT reads of " + dev)
    if "e" in res:
        return "", str(res["e"])
    return res["r"]


def judge(c, dev, sectors, qv, st, timeout, work):
    """Compare the device's regions with QEMU's; a list of findings."""
    length = min(sectors * 512, qv["size"], JUDGE_MAX)
    regs = regions_of(length)
    if not regs:
        return []
    dstat, ddata = read_regions_timed(dev, length, timeout)
    if len(dstat) != len(regs):
        print("# %s: reading the device failed: %s" % (c["label"], ddata))
        st["skipped"] += len(regs)
        return []
    st["judged"] += 1
    found = []
    for i, (off, ln) in enumerate(regs):
        q, d = qv["status"][i], dstat[i]
        if q == "-" or d == "-":
            st["skipped"] += 1
            continue
        st["regions"] += 1
        if q == "." and d == ".":
            a, b = qv["data"][off:off + ln], ddata[off:off + ln]
            if a == b:
                st["equal"] += 1
                continue
            k = next(j for j in range(ln) if a[j] != b[j])
            nd = sum(1 for j in range(ln) if a[j] != b[j])
            found.append("region @0x%x: %d bytes differ, first at 0x%x: QEMU %s, device %s"
                         % (off, nd, off + k, a[k:k + 8].hex(), b[k:k + 8].hex()))
        elif q == "." and d == "E":
            st["dev_eio"] += 1
        elif q == "E" and d == "E":
            st["both_eio"] += 1
        else:
            found.append("region @0x%x: QEMU fails to read it, the device returned data" % off)
    st["diffs"] += len(found)
    return found


# ---- running cases in the VM -------------------------------------------

def case_of(seed_dir, work, case):
    """Build case CASE's image (and a fresh copy of its data file)."""
    img = os.path.join(work, "case.qcow2")
    t0 = time.time()
    if case < 0:
        # the pristine seeds: case -1 - N is seed N unmutated
        name = SEEDS[-1 - case][0]
        shutil.copyfile(os.path.join(seed_dir, name + ".qcow2"), img)
        done = ["unmutated"]
    else:
        name, done = mutate(seed_dir, case, img)
    CMD_TIME["mutate"] = CMD_TIME.get("mutate", 0) + time.time() - t0
    c = {"label": "case %d" % case, "case": case, "seed": name, "done": done, "img": img,
         "data": None, "backing": None,
         "seed_size": [s[3] for s in SEEDS if s[0] == name][0]}
    if name == "backing":
        c["backing"] = os.path.join(seed_dir, "backing-base.qcow2")
    elif os.path.exists(os.path.join(seed_dir, name + ".data")):
        # the data file is only data (written by the case): a fresh copy
        c["data"] = os.path.join(work, "case.data")
        shutil.copyfile(os.path.join(seed_dir, name + ".data"), c["data"])
    return c


def save_case(c, seed_dir, save, why):
    """Keep a failing case in the corpus: its image as built (xz), the
    data file or backing file it ran with, and what it found."""
    import json
    import lzma
    if not save:
        return
    os.makedirs(save, exist_ok=True)
    base = os.path.join(save, "%s-%d" % (c["seed"], c["case"]))
    # the image as it was before the target saw it
    tmp = base + ".tmp"
    if c["case"] >= 0:
        mutate(seed_dir, c["case"], tmp)
    else:
        shutil.copyfile(os.path.join(seed_dir, c["seed"] + ".qcow2"), tmp)
    files = {"image": tmp}
    if c["data"]:
        files["data_file"] = os.path.join(seed_dir, c["seed"] + ".data")
    if c["backing"]:
        files["backing"] = c["backing"]
    info = {"case": c["case"], "seed": c["seed"], "mutations": c["done"], "found": why,
            "seed_size": c["seed_size"], "date": time.strftime("%Y-%m-%d", time.gmtime())}
    for k, p in files.items():
        with open(p, "rb") as f, lzma.open(base + "." + k + ".xz", "wb") as o:
            o.write(f.read())
        info[k] = os.path.basename(base + "." + k + ".xz")
    os.unlink(tmp)
    with open(base + ".json", "w") as f:
        json.dump(info, f, indent=1)
        f.write("\n")
    print("# %s saved to %s.json" % (c["label"], base))


REFUSAL = "device-mapper: table: "


def refusal_reason(lines):
    for ln in lines:
        if REFUSAL in ln and "qcow2: " in ln:
            r = ln.split("qcow2: ", 1)[1]
            return r.rsplit(" (-", 1)[0] if r.endswith(")") else r
    return "unknown (no reason in the kernel log)"


def run_case(c, st, timeout, kmsg, verbose, work, seed_dir=None, save=None):
    img = c["img"]
    name = c["seed"]
    extra = ""
    if c["backing"]:
        extra = " 3 backing qcow2 " + c["backing"]
    elif c["data"]:
        extra = " 2 data_file " + c["data"]
    st["images"] += 1
    st["seeds"].setdefault(name, [0, 0])[0] += 1
    qv = qemu_view(c, work, st) if JUDGE else None
    reads_clean = qv is not None and "E" not in qv["status"] and "-" not in qv["status"]
    tried = set()
    written = False
    lines = []
    found = []
    for sectors in (header_sectors(img), c["seed_size"] // 512):
        if sectors == 0 or sectors >= (1 << 55) or sectors in tried:
            continue
        first = not tried
        tried.add(sectors)
        dm = "fuzz%d" % os.getpid()
        table = "0 %d qcow2 %s%s" % (sectors, img, extra)
        st["attempts"] += 1
        rc, out = run_cmd(["dmsetup", "create", dm, "--table", table], timeout)
        if rc:
            st["refused"] += 1
            new = kmsg.new()
            lines += new
            if first and reads_clean and qemu_check(c) in (0, 3):
                r = refusal_reason(new)
                st["refused_clean"].setdefault(r, []).append(c["label"])
            continue
        st["attached"] += 1
        st["seeds"][name][1] += 1
        try:
            if qv is not None and not written:
                found = judge(c, "/dev/mapper/" + dm, sectors, qv, st, timeout, work)
            written = True
            if c["case"] is None or c["case"] >= 0:
                exercise(dm, sectors, st, timeout)
        finally:
            rc, out = run_cmd(["dmsetup", "remove", dm], timeout)
            if rc:
                st["remove_errors"] += 1
                print("# %s: dmsetup remove failed: %s" % (c["label"], out.strip()))
    if verbose:
        print("# %s seed %s: %s; QEMU regions: %s" % (c["label"], name, "; ".join(c["done"]),
              "cannot open" if qv is None else qv["status"] or "none"))
    lines += kmsg.new()
    bad = kmsg.bad(lines)
    why = []
    if found:
        st["diff_cases"].append(c["label"])
        print("# DIFF: %s (seed %s: %s; qemu-img check exit %s):"
              % (c["label"], name, "; ".join(c["done"]), qemu_check(c)))
        for f in found[:8]:
            print("#   " + f)
        why.append("differs from QEMU: " + "; ".join(found[:4]))
    if bad:
        st["warnings"].append(c["label"])
        print("# %s (seed %s: %s) kernel log:" % (c["label"], name, "; ".join(c["done"])))
        for ln in bad[:20]:
            print("#   " + ln)
        why.append("kernel log: " + "; ".join(bad[:4]))
    if why and seed_dir:
        save_case(c, seed_dir, save, " / ".join(why))
    os.unlink(img)
    if c["data"] and os.path.exists(c["data"]):
        os.unlink(c["data"])


JUDGE = True
COUNTS = ["images", "attempts", "refused", "attached", "qemu_refused", "judged",
          "regions", "equal", "dev_eio", "both_eio",
          "skipped", "diffs", "read_errors", "write_errors", "flush_errors", "remove_errors"]


def new_stats():
    st = dict((k, 0) for k in COUNTS)
    st.update(warnings=[], seeds={}, refused_clean={}, diff_cases=[])
    return st


def summary(st, dt, label):
    print("# %s: %d images (%d tables tried): %d refused at create, %d attached; "
          "%d read errors, %d write errors, %d flush errors; %.0f s"
          % (label, st["images"], st["attempts"], st["refused"], st["attached"],
             st["read_errors"], st["write_errors"], st["flush_errors"], dt))
    print("# judge: QEMU opened %d of %d images; %d judged; regions compared %d: equal %d, "
          "EIO on device %d, EIO on both %d, differing %d; %d skipped"
          % (st["images"] - st["qemu_refused"], st["images"], st["judged"],
             st["regions"], st["equal"],
             st["dev_eio"], st["both_eio"], st["diffs"], st["skipped"]))
    n = sum(len(v) for v in st["refused_clean"].values())
    print("# refused-clean (target refused an image QEMU checks consistent and reads "
          "without an error): %d" % n)
    for r, cases in sorted(st["refused_clean"].items(), key=lambda kv: -len(kv[1])):
        print("#   %d x %s (%s%s)" % (len(cases), r, ", ".join(cases[:4]),
                                    ", ..." if len(cases) > 4 else ""))
    print("# totals: " + " ".join("%s=%d" % (k, st[k]) for k in COUNTS) +
          " failed=%d" % len(set(st["warnings"] + st["diff_cases"])))


def verdict(st, hung):
    failed = sorted(set(st["warnings"] + st["diff_cases"] + ([hung] if hung else [])))
    for c in failed:
        print("# FAILED: %s" % c)
    if st["remove_errors"]:
        print("# %d devices could not be removed" % st["remove_errors"])
    return 1 if failed or st["remove_errors"] else 0


def cmd_run(a):
    st = new_stats()
    work = a.work or a.dir
    kmsg = Kmsg()
    if a.pristine:
        cases = [-1 - i for i in range(len(SEEDS))][:a.iters if a.iters else None]
    elif a.case is not None:
        cases = [a.case]
    else:
        cases = range(a.first, a.first + a.iters)
    t0 = time.time()
    hung = None
    for n in cases:
        c = case_of(a.dir, work, n)
        try:
            run_case(c, st, a.timeout, kmsg, a.verbose or a.case is not None, work,
                     a.dir, a.save)
        except Hang as e:
            hung = c["label"]
            print("# HANG: %s (seed %s: %s): '%s' still running after %d s"
                  % (hung, c["seed"], "; ".join(c["done"]), e, a.timeout))
            save_case(c, a.dir, a.save, "hang: " + str(e))
            break
    summary(st, time.time() - t0, "qcow2 fuzz")
    print("# seeds (images/attached): " +
          " ".join("%s=%d/%d" % (k, v[0], v[1]) for k, v in sorted(st["seeds"].items())))
    print("# time: " + " ".join("%s=%.1fs" % kv for kv in sorted(CMD_TIME.items())))
    print("# cases %d..%d" % (cases[0], cases[-1]) if len(cases) else "# no cases")
    if st["warnings"] or st["diff_cases"] or hung:
        print("# reproduce one: %s run SEED_DIR --case N   (seeds: %s seeds SEED_DIR)"
              % (sys.argv[0], sys.argv[0]))
    return verdict(st, hung)


def cmd_corpus(a):
    """Replay every saved case of the corpus directory."""
    import json
    import lzma
    import glob
    st = new_stats()
    kmsg = Kmsg()
    t0 = time.time()
    hung = None
    files = sorted(glob.glob(os.path.join(a.dir, "*.json")))
    for p in files:
        with open(p) as f:
            info = json.load(f)
        label = "corpus " + os.path.basename(p)[:-5]
        paths = {}
        for k in ("image", "data_file", "backing"):
            if k in info:
                paths[k] = os.path.join(a.work, "corpus." + k)
                with lzma.open(os.path.join(a.dir, info[k])) as i, open(paths[k], "wb") as o:
                    o.write(i.read())
        c = {"label": label, "case": None, "seed": info["seed"], "done": info["mutations"],
             "img": paths["image"], "data": paths.get("data_file"),
             "backing": paths.get("backing"), "seed_size": info["seed_size"]}
        try:
            run_case(c, st, a.timeout, kmsg, a.verbose, a.work)
        except Hang as e:
            hung = label
            print("# HANG: %s: '%s' still running after %d s" % (label, e, a.timeout))
            break
        finally:
            for q in paths.values():
                if os.path.exists(q):
                    os.unlink(q)
    summary(st, time.time() - t0, "qcow2 corpus (%d cases)" % len(files))
    return verdict(st, hung)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sp = ap.add_subparsers(dest="cmd", required=True)
    p = sp.add_parser("seeds", help="make the seed images")
    p.add_argument("dir")
    p = sp.add_parser("mutate", help="write one case's image")
    p.add_argument("dir")
    p.add_argument("case", type=int)
    p.add_argument("out")
    p = sp.add_parser("run", help="fuzz the dm-qcow2 target (in the test VM)")
    p.add_argument("dir")
    p.add_argument("--iters", type=int, default=100)
    p.add_argument("--first", type=int, default=0)
    p.add_argument("--case", type=int)
    p.add_argument("--pristine", action="store_true",
                   help="the seed images unmutated (the first ITERS of them)")
    p.add_argument("--timeout", type=int, default=60, help="seconds per command")
    p.add_argument("--work", help="where case images go (default: DIR)")
    p.add_argument("--save", help="keep failing cases here (the corpus)")
    p.add_argument("--no-judge", action="store_true", help="do not compare with QEMU")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--plant", choices=["hang", "diff"],
                   help="self-test: plant a hang in every attached case, or a wrong byte "
                   "in the device's first readable region")
    p = sp.add_parser("corpus", help="replay the saved failing cases of DIR")
    p.add_argument("dir")
    p.add_argument("--work", required=True)
    p.add_argument("--timeout", type=int, default=60, help="seconds per command")
    p.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    if a.cmd == "seeds":
        make_seeds(a.dir)
        return 0
    if a.cmd == "mutate":
        name, done = mutate(a.dir, a.case, a.out)
        print("seed %s: %s" % (name, "; ".join(done)))
        return 0
    if a.cmd == "corpus":
        if not os.path.isdir(a.dir):
            print("# no qcow2 corpus")
            return 0
        return cmd_corpus(a)
    global PLANT, JUDGE
    PLANT = a.plant
    JUDGE = not a.no_judge
    return cmd_run(a)


if __name__ == "__main__":
    sys.exit(main())
