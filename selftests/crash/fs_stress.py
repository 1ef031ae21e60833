#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""fs_stress: a file system workload with an oracle, for power cuts of an
ext4 that lives on a dm-qcow2 device (the generic/482 idea: replay the
block log to a point, let the file system recover, check it).

  fs_stress.py work DIR OPSDIR --lw LWDEV [--seed S] [--procs N] [--ops N]
  fs_stress.py check DIR OPSDIR LIST POINT

work: N processes, each in DIR/pP, run OPS operations: create a file
(sizes from 1 byte to 96 KiB, written in one to three pieces), append to
one of its own files, fsync or fdatasync it and its directory, remove or
rename one, make and remove directories of small files, syncfs. Each
process logs what it does to OPSDIR/opsP before doing it. After a file
and its directory were synced it puts the mark "d.P.K.SIZE" in the
dm-log-writes log LWDEV; before a file is removed or renamed, the mark
"x.P.K".

check: DIR holds the file system recovered from the log replayed to
POINT (LIST: `lwlog list` of the log). Every file whose "d" mark is in the
log before POINT and whose "x" mark is not must exist with at least that
size and those bytes exact; every other file of the workload that exists
may be shorter than its last size, and past its synced size each byte
is its own or zero (a block not yet written, or written before the rest
of its page); no other byte may differ (another file's data, garbage) and
no file may be longer. Prints a
summary line; exit 0 when all holds, 1 otherwise, 2 on usage errors.
"""
import argparse
import os
import random
import subprocess
import sys

BLOCK = 4096


def content(p, k, start, length):
    """Bytes [start, start + length) of file K of process P."""
    out = bytearray()
    blk = start // BLOCK
    while len(out) < length:
        tag = b"p%d.f%d.b%d;" % (p, k, blk)
        block = (tag * (BLOCK // len(tag) + 1))[:BLOCK]
        off = (start + len(out)) - blk * BLOCK
        out += block[off:off + length - len(out)]
        blk += 1
    return bytes(out)


def mark(lw, name):
    subprocess.run(["dmsetup", "message", lw, "0", "mark", name], check=True)


def fsync_path(path, data_only=False):
    fd = os.open(path, os.O_RDONLY)
    try:
        (os.fdatasync if data_only else os.fsync)(fd)
    finally:
        os.close(fd)


class Proc:
    def __init__(self, args, p):
        self.p = p
        self.lw = args.lw
        self.rng = random.Random(args.seed * 1000 + p)
        self.dir = os.path.join(args.dir, "p%d" % p)
        self.ops = open(os.path.join(args.opsdir, "ops%d" % p), "w",
                        buffering=1)
        self.live = {}          # k -> size of the files not removed
        self.next = 0

    def log(self, line):
        self.ops.write(line + "\n")
        self.ops.flush()

    def path(self, k):
        return os.path.join(self.dir, "f%d" % k)

    def write(self, k, start, length):
        with open(self.path(k), "r+b" if start else "wb") as f:
            f.seek(start)
            pos, end = start, start + length
            while pos < end:
                n = min(end - pos, self.rng.randint(1, 40000))
                f.write(content(self.p, k, pos, n))
                pos += n

    def sync(self, k):
        data_only = self.rng.random() < 0.3
        fsync_path(self.path(k), data_only)
        fsync_path(self.dir)
        mark(self.lw, "d.%d.%d.%d" % (self.p, k, self.live[k]))

    def create(self):
        k = self.next
        self.next += 1
        size = self.rng.choice([1, 512, 4095, 4096, 12288, 65536, 98304,
                                self.rng.randint(1, 98304)])
        self.log("C %d %d" % (k, size))
        self.write(k, 0, size)
        self.live[k] = size
        if self.rng.random() < 0.6:
            self.sync(k)

    def append(self):
        k = self.rng.choice(sorted(self.live))
        add = self.rng.randint(1, 20000)
        self.log("A %d %d" % (k, self.live[k] + add))
        self.write(k, self.live[k], add)
        self.live[k] += add
        if self.rng.random() < 0.5:
            self.sync(k)

    def remove(self):
        k = self.rng.choice(sorted(self.live))
        mark(self.lw, "x.%d.%d" % (self.p, k))
        if self.rng.random() < 0.5:
            os.rename(self.path(k), os.path.join(self.dir, "r%d" % k))
        else:
            os.unlink(self.path(k))
        del self.live[k]
        if self.rng.random() < 0.5:
            fsync_path(self.dir)

    def churn(self):
        """Directories of small files, made and removed: metadata only."""
        d = os.path.join(self.dir, "d%d" % self.rng.randint(0, 3))
        if os.path.isdir(d):
            for name in os.listdir(d):
                os.unlink(os.path.join(d, name))
            os.rmdir(d)
            return
        os.mkdir(d)
        for i in range(self.rng.randint(1, 12)):
            with open(os.path.join(d, "s%d" % i), "wb") as f:
                f.write(os.urandom(self.rng.randint(0, 3000)))

    def run(self, nops):
        os.mkdir(self.dir)
        fsync_path(os.path.dirname(self.dir))
        for _ in range(nops):
            r = self.rng.random()
            if r < 0.45 or not self.live:
                self.create()
            elif r < 0.62:
                self.append()
            elif r < 0.77:
                self.remove()
            elif r < 0.95:
                self.churn()
            else:
                os.sync()


def cmd_work(args):
    pids = []
    for p in range(args.procs):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                Proc(args, p).run(args.ops)
            except Exception as e:      # reported, the parent fails
                print("fs_stress: process %d: %s" % (p, e), file=sys.stderr)
                code = 1
            os._exit(code)
        pids.append(pid)
    bad = 0
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        bad += status != 0
    print("fs_stress: %d processes, %d operations each, seed %d%s" %
          (args.procs, args.ops, args.seed,
           ", %d failed" % bad if bad else ""))
    return 1 if bad else 0


def marks_before(path, point):
    """The names of the marks among log entries 0 .. POINT-1."""
    names = []
    with open(path) as f:
        for line in f:
            w = line.split()
            if len(w) < 5:
                continue
            if int(w[0]) >= point:
                break
            if "M" in w[1]:
                names.append(w[4])
    return names


def load_ops(opsdir):
    """(p, k) -> the largest size the file ever had."""
    top = {}
    for name in os.listdir(opsdir):
        if not name.startswith("ops"):
            continue
        p = int(name[3:])
        with open(os.path.join(opsdir, name)) as f:
            for line in f:
                w = line.split()
                if len(w) == 3 and w[0] in ("C", "A"):
                    k = int(w[1])
                    top[(p, k)] = max(top.get((p, k), 0), int(w[2]))
    return top


def what(data):
    """What a wrong block holds: whose bytes (the first tag in it), zeros."""
    zeros = data.count(0)
    for i in range(0, min(len(data), 4096)):
        if data[i:i + 1] == b"p" and b";" in data[i:i + 24]:
            tag = data[i:data.index(b";", i)]
            if tag.count(b".") == 2:
                return "holds %s at %d, %d zero bytes" % (
                    tag.decode(errors="replace"), i, zeros)
    return "holds %s..., %d zero bytes" % (data[:16].hex(), zeros)


def check_file(path, p, k, durable, top):
    """None when the file is legal, else why not."""
    size = os.path.getsize(path)
    if size > top:
        return "%d bytes, never more than %d were written" % (size, top)
    if size < durable:
        return "%d bytes, %d were synced" % (size, durable)
    with open(path, "rb") as f:
        data = f.read()
    want = content(p, k, 0, size)
    if data[:durable] != want[:durable]:
        return "synced bytes differ in the first %d" % durable
    # Past the synced size each byte is the file's own or zero: a block
    # not yet written reads zeros (unwritten extent), and a block that
    # was written once and then overwritten (the rest of a page written
    # later, an append into the last block) may hold the earlier write:
    # ordered mode orders only newly allocated blocks before the commit.
    off = durable
    while off < size:
        end = min(size, (off // BLOCK + 1) * BLOCK)
        got = data[off:end]
        if got != want[off:end] and \
           any(g and g != w for g, w in zip(got, want[off:end])):
            return "bytes differ in [%d, %d): %s; size %d, synced %d, " \
                "largest %d" % (off, end, what(got), size, durable, top)
        off = end
    return None


def cmd_check(args):
    top = load_ops(args.opsdir)
    durable, gone = {}, set()
    for m in marks_before(args.list, args.point):
        w = m.split(".")
        if w[0] == "d" and len(w) == 4:
            key = (int(w[1]), int(w[2]))
            durable[key] = max(durable.get(key, 0), int(w[3]))
        elif w[0] == "x" and len(w) == 3:
            gone.add((int(w[1]), int(w[2])))
    errors, seen = [], 0
    for (p, k), size in sorted(top.items()):
        must = durable.get((p, k), 0) if (p, k) not in gone else 0
        d = os.path.join(args.dir, "p%d" % p)
        found = False
        for name in ("f%d" % k, "r%d" % k):
            path = os.path.join(d, name)
            if not os.path.exists(path):
                continue
            found = True
            seen += 1
            why = check_file(path, p, k, must if name[0] == "f" else 0,
                             size)
            if why:
                errors.append("%s: %s" % (path, why))
        if must and not found and (p, k) in durable:
            errors.append("p%d/f%d: missing, synced with %d bytes" %
                          (p, k, must))
    for e in errors[:20]:
        print("fs_stress: " + e)
    print("fs_stress: point %d: %d synced files of %d, %d present, "
          "%d wrong" % (args.point, sum(1 for key in durable
                                         if key not in gone),
                        len(top), seen, len(errors)))
    return 1 if errors else 0


def main():
    ap = argparse.ArgumentParser(
        description="File system workload with an oracle for power cuts.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("work", help="run the workload")
    w.add_argument("dir")
    w.add_argument("opsdir")
    w.add_argument("--lw", required=True, help="dm-log-writes device name")
    w.add_argument("--seed", type=int, default=1)
    w.add_argument("--procs", type=int, default=4)
    w.add_argument("--ops", type=int, default=40)
    c = sub.add_parser("check", help="check a recovered file system")
    c.add_argument("dir")
    c.add_argument("opsdir")
    c.add_argument("list")
    c.add_argument("point", type=int)
    args = ap.parse_args()
    return cmd_work(args) if args.cmd == "work" else cmd_check(args)


if __name__ == "__main__":
    sys.exit(main())
