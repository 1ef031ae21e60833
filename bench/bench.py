#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""bench.py: the guest side and the report side of `make bench`.

  bench.py guest  [options]   run the matrix inside the test VM, write raw JSON
  bench.py report RAW.json    add statistics and ratios, write JSON, Markdown
                              and PNG plots

bench/run is the front end (it boots the VM and calls both); see
Documentation/benchmarks.rst for the method.
"""
import argparse
import fnmatch
import json
import math
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

TOP = os.environ.get("TOP") or os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))
ENGINE = os.path.join(TOP, "tools/fio-vblk/fio-vblk.so")
VHOST_BLKD = os.path.join(TOP, "tools/bin/vhost-blkd")
LIO_VHOST_SCSI = os.path.join(TOP, "tools/vm/lio-vhost-scsi")
SCHEMA = "bench-v1"

# CPU per I/O is busy guest CPU time (all CPUs, every process and kernel
# thread) over fio's measured window, divided by the I/Os of that window.
CPU_DEFINITION = (
    "guest-wide busy CPU time from /proc/stat (user+nice+system+irq+softirq"
    "+steal, all vCPUs, every process and kernel thread: fio, the driver, "
    "kernel workers, qemu-nbd / qemu-storage-daemon) over fio's measured "
    "window (ramp excluded), divided by the I/Os completed in that window")
# Context switches per I/O: the 'ctxt' line of /proc/stat (every CPU) over
# the same window, divided by the same I/Os: each thread hop of a request
# (a wakeup of a worker, of the completion side, of fio) shows here.
CTXT_DEFINITION = (
    "guest-wide context switches from /proc/stat 'ctxt' over fio's measured "
    "window, divided by the I/Os completed in that window")


# ---------------------------------------------------------------- workloads

class Point:
    """One fio workload."""

    def __init__(self, rw, bs, iodepth, jobs, fsync=0):
        self.rw, self.bs, self.iodepth, self.jobs = rw, bs, iodepth, jobs
        self.fsync = fsync      # a flush every N writes of each job
        self.id = "%s-%s-d%d-j%d" % (rw, bs, iodepth, jobs)
        if fsync:
            self.id += "-fsync%d" % fsync

    @property
    def writes(self):
        return "write" in self.rw

    @property
    def ddir(self):
        return "write" if self.writes else "read"

    @property
    def random(self):
        return self.rw.startswith("rand")

    def as_dict(self):
        return {"id": self.id, "rw": self.rw, "bs": self.bs,
                "iodepth": self.iodepth, "jobs": self.jobs,
                "fsync": self.fsync}


def make_points(depths, jobs_list, seq_depth):
    pts = []
    for rw in ("randread", "randwrite"):
        for j in jobs_list:
            for d in depths:
                pts.append(Point(rw, "4k", d, j))
    for rw in ("read", "write"):
        pts.append(Point(rw, "64k", seq_depth, 1))
    return pts


POINT_SETS = {
    # 4 KiB random at depth 1 and 128 with 1 job, depth 128 with 2 jobs,
    # and 64 KiB sequential: what a full run on a 2-core TCG host affords.
    # and a flush-heavy one: 2 jobs at depth 16, a flush every 32 writes.
    "default": lambda: [p for p in make_points([1, 128], [1, 2], 16)
                        if not (p.jobs == 2 and p.iodepth == 1)] +
    [Point("randwrite", "4k", 16, 2, fsync=32)],
    # every combination of depth {1,128} x jobs {1,2}
    "all": lambda: make_points([1, 128], [1, 2], 16),
    "quick": lambda: [Point("randread", "4k", 128, 1),
                      Point("randwrite", "4k", 128, 1)],
}


# ----------------------------------------------------------------- helpers

T0 = time.time()


def log(msg):
    print("bench: [%4ds] %s" % (time.time() - T0, msg), flush=True)


class SetupError(Exception):
    """A configuration could not be set up; status is 'missing' or 'failed'."""

    def __init__(self, msg, status="failed"):
        super().__init__(msg)
        self.status = status


def sh(cmd, check=True, timeout=120, what=None):
    """Run CMD (a list); return stdout. On failure raise SetupError with
    the command's own last words."""
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, timeout=timeout)
    except FileNotFoundError:
        raise SetupError("%s: not installed" % cmd[0], "missing")
    except subprocess.TimeoutExpired:
        raise SetupError("%s: timed out after %ds" % (what or cmd[0], timeout))
    if check and p.returncode != 0:
        err = (p.stderr.strip() or p.stdout.strip()).splitlines()
        raise SetupError("%s: exit %d: %s" % (
            what or " ".join(cmd[:3]), p.returncode,
            " | ".join(err[-3:]) if err else "no output"))
    return p.stdout


def wait_for(pred, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return
        time.sleep(0.05)
    raise SetupError("%s: not ready after %.0fs" % (what, timeout))


def read_int(path, default=0):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return default


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    # a zombie child still answers kill 0
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


# ----------------------------------------------------------- CPU sampling

class CpuSampler(threading.Thread):
    """Samples the 'cpu' line of /proc/stat every interval seconds with a
    wall-clock stamp; busy() interpolates between samples."""

    FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq",
              "steal")

    def __init__(self, interval=0.1):
        super().__init__(daemon=True)
        self.interval = interval
        self.samples = []
        self.stop_ev = threading.Event()
        self.hz = os.sysconf("SC_CLK_TCK")

    def snap(self):
        ctxt = 0
        with open("/proc/stat") as f:
            vals = [int(x) for x in f.readline().split()[1:9]]
            for line in f:
                if line.startswith("ctxt "):
                    ctxt = int(line.split()[1])
                    break
        v = dict(zip(self.FIELDS, vals))
        usr = (v["user"] + v["nice"]) / self.hz
        ker = (v["system"] + v["irq"] + v["softirq"] + v["steal"]) / self.hz
        self.samples.append((time.time(), usr, ker, ctxt))

    def run(self):
        while not self.stop_ev.is_set():
            self.snap()
            self.stop_ev.wait(self.interval)

    def stop(self):
        self.stop_ev.set()
        self.join()
        self.snap()

    def at(self, t):
        s = self.samples
        if not s or t < s[0][0] or t > s[-1][0]:
            return None
        for a, b in zip(s, s[1:]):
            if a[0] <= t <= b[0]:
                f = 0.0 if b[0] == a[0] else (t - a[0]) / (b[0] - a[0])
                return tuple(x + f * (y - x) for x, y in zip(a[1:], b[1:]))
        return s[-1][1:]

    def busy(self, t0, t1):
        """(user seconds, kernel seconds, context switches) between t0
        and t1, or None."""
        a, b = self.at(t0), self.at(t1)
        if a is None or b is None:
            return None
        return tuple(y - x for x, y in zip(a, b))


# --------------------------------------------------------------- the stage

class Stage:
    """What every configuration stands on: two brd disks, ext4 on the
    second, a raw file and qcow2 images on it. Built lazily, once."""

    def __init__(self, args):
        self.args = args
        self.work = args.workdir
        self.size_mb = args.size_mb
        self.fs = os.path.join(self.work, "fs")
        self.raw_dev = "/dev/ram0"
        self.fs_dev = "/dev/ram1"
        self.raw_img = os.path.join(self.fs, "raw.img")
        self.alloc_img = os.path.join(self.fs, "alloc.qcow2")
        self.fresh_img = os.path.join(self.fs, "fresh.qcow2")
        self.qsd_sock = os.path.join(self.work, "qsd.sock")
        self.done = set()
        self.failed = {}

    def need(self, what):
        if what in self.failed:
            raise SetupError("%s: %s" % (what, self.failed[what]))
        if what in self.done:
            return
        try:
            getattr(self, "make_" + what)()
        except SetupError as e:
            self.failed[what] = str(e)
            raise
        self.done.add(what)

    def make_brd(self):
        os.makedirs(self.work, exist_ok=True)
        if os.path.exists("/sys/module/brd"):
            sh(["rmmod", "brd"], what="rmmod brd (already loaded)")
        # ram1 carries ext4 with the raw file and two images
        kib = self.size_mb * 1024 * 4
        sh(["modprobe", "brd", "rd_nr=2", "rd_size=%d" % kib])
        wait_for(lambda: os.path.exists(self.fs_dev), 10, "brd devices")
        # write every page the benchmark touches so brd reads are real
        sh(["dd", "if=/dev/zero", "of=" + self.raw_dev, "bs=1M",
            "count=%d" % self.size_mb, "oflag=direct"], what="dd ram0")

    def make_fs(self):
        self.need("brd")
        sh(["mkfs.ext4", "-q", "-F", "-E",
            "lazy_itable_init=0,lazy_journal_init=0", self.fs_dev])
        os.makedirs(self.fs, exist_ok=True)
        sh(["mount", "-o", "noatime", self.fs_dev, self.fs])

    def make_raw_img(self):
        self.need("fs")
        sh(["dd", "if=/dev/zero", "of=" + self.raw_img, "bs=1M",
            "count=%d" % self.size_mb, "oflag=direct", "conv=fsync"],
           what="dd raw.img")

    def make_alloc_img(self):
        self.need("fs")
        # every cluster allocated and written: no allocating writes later
        sh(["qemu-img", "create", "-q", "-f", "qcow2", "-o",
            "preallocation=full,cluster_size=65536", self.alloc_img,
            "%dM" % self.size_mb], timeout=300)
        sh(["sync"])
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")

    def new_fresh_img(self):
        self.need("fs")
        if os.path.exists(self.fresh_img):
            os.unlink(self.fresh_img)
        sh(["qemu-img", "create", "-q", "-f", "qcow2", "-o",
            "cluster_size=65536", self.fresh_img, "%dM" % self.size_mb])

    def make_nbd(self):
        if not os.path.exists("/sys/module/nbd"):
            sh(["modprobe", "nbd", "nbds_max=2"], what="modprobe nbd")
        wait_for(lambda: os.path.exists("/dev/nbd0"), 10, "/dev/nbd0")
        if not shutil.which("qemu-nbd"):
            raise SetupError("qemu-nbd: not installed", "missing")

    def make_dmq(self):
        out = sh(["dmsetup", "targets"], what="dmsetup targets")
        if not re.search(r"^qcow2\s", out, re.M):
            raise SetupError("dm-qcow2: target qcow2 not registered "
                             "(module not loaded?)", "missing")
        if not shutil.which("qcow2-dm"):
            raise SetupError("qcow2-dm: not built (make tools)", "missing")

    def make_vhost(self):
        if not os.path.exists("/dev/vhost-blk"):
            raise SetupError("/dev/vhost-blk: missing (vhost_blk not loaded)",
                             "missing")
        self.need("engine")

    def make_vscsi(self):
        p = subprocess.run([LIO_VHOST_SCSI, "modules"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, universal_newlines=True)
        if p.returncode:
            raise SetupError("vhost-scsi/LIO: %s" % p.stdout.strip(),
                             "missing" if p.returncode == 4 else "failed")
        self.need("engine")

    def make_engine(self):
        if not os.path.exists(ENGINE):
            raise SetupError("fio engine %s not built (make tools)" %
                             os.path.relpath(ENGINE, TOP), "missing")

    def make_vud(self):
        if not os.access(VHOST_BLKD, os.X_OK):
            raise SetupError("%s: not built (make tools)" %
                             os.path.relpath(VHOST_BLKD, TOP), "missing")
        self.need("vhost")

    def make_qsd(self):
        if not shutil.which("qemu-storage-daemon"):
            raise SetupError("qemu-storage-daemon: not installed", "missing")
        self.need("engine")

    def teardown(self):
        if "fs" in self.done:
            subprocess.run(["umount", self.fs], stderr=subprocess.DEVNULL)


# --------------------------------------------------------- configurations

class Config:
    """A row of the table. setup() returns fio options of the target;
    fresh configs get a new image for every point and run only writes."""
    name = group = desc = ""
    needs = ()
    fresh = False
    workers = None

    def __init__(self, stage):
        self.stage = stage
        self.inject = None

    def check(self, rep):
        if self.inject is not None and (self.inject == 0 or
                                        self.inject == rep):
            raise SetupError("injected failure (--inject-failure %s)" %
                             self.name)
        for n in self.needs:
            self.stage.need(n)

    def setup(self):
        return {}

    def teardown(self):
        pass

    def fio_opts(self, point):
        return {}

    def wants(self, point):
        return point.writes if self.fresh else True

    def info(self):
        return {"name": self.name, "group": self.group, "desc": self.desc,
                "fresh": self.fresh}


class KernelDev(Config):
    """fio with libaio and O_DIRECT on a block device of the guest."""

    def fio_opts(self, point):
        return {"filename": self.dev, "ioengine": "libaio", "direct": 1}


class HostBrd(KernelDev):
    name, group = "host-brd", "host"
    desc = "fio (libaio, O_DIRECT) on the raw brd device"
    needs = ("brd",)

    def setup(self):
        self.dev = self.stage.raw_dev


class HostLoop(KernelDev):
    name, group = "host-loop", "host"
    desc = "fio on a loop device (direct I/O) over a raw file on ext4 on brd"
    needs = ("raw_img",)

    def setup(self):
        self.dev = sh(["losetup", "--direct-io=on", "--find", "--show",
                       self.stage.raw_img]).strip()
        dio = read_int("/sys/block/%s/loop/dio" % os.path.basename(self.dev))
        if dio != 1:
            self.teardown()
            raise SetupError("%s: direct I/O not enabled" % self.dev)

    def teardown(self):
        if getattr(self, "dev", None):
            sh(["losetup", "-d", self.dev], check=False)
            self.dev = None


class DmQcow2(KernelDev):
    name, group = "dmq-alloc", "dm-qcow2"
    desc = "fio on dm-qcow2 over a fully allocated qcow2 image on ext4 on brd"
    needs = ("dmq", "alloc_img")
    dmname = "bench-dmq"

    def image(self):
        return self.stage.alloc_img

    no_inline_io = False

    def setup(self):
        if self.fresh:
            self.stage.new_fresh_img()
        out = sh(["qcow2-dm", "attach", self.image(), self.dmname],
                 what="qcow2-dm attach")
        self.dev = out.strip().splitlines()[-1] if out.strip() else \
            "/dev/mapper/" + self.dmname
        wait_for(lambda: os.path.exists(self.dev), 10, self.dev)
        if self.no_inline_io:
            self.reload_with("no_inline_io")

    def reload_with(self, arg):
        """Add a table argument: suspend (the metadata is written back),
        reload, resume, as qcow2-dm's live operations switch tables."""
        t = sh(["dmsetup", "table", self.dmname]).split()
        if len(t) == 4:
            t.append("0")
        t[4] = str(int(t[4]) + 1)
        t.append(arg)
        sh(["dmsetup", "suspend", self.dmname])
        sh(["dmsetup", "reload", self.dmname, "--table", " ".join(t)])
        sh(["dmsetup", "resume", self.dmname])

    def teardown(self):
        if getattr(self, "dev", None):
            sh(["qcow2-dm", "detach", self.dmname], check=False)
            self.dev = None


class DmQcow2Wq(DmQcow2):
    name = "dmq-wq"
    desc = ("dmq-alloc with no_inline_io: every request through the "
            "target's workers (the path before inline I/O)")
    no_inline_io = True


class DmQcow2Fresh(DmQcow2):
    name = "dmq-fresh"
    desc = "fio on dm-qcow2 over a new, empty qcow2 image (allocating writes)"
    needs = ("dmq", "fs")
    fresh = True

    def image(self):
        return self.stage.fresh_img


class Nbd(KernelDev):
    name, group = "nbd-alloc", "qemu-nbd"
    desc = ("fio on /dev/nbd0 of qemu-nbd --cache=none --aio=native over the "
            "allocated image")
    needs = ("nbd", "alloc_img")
    nbd = "/dev/nbd0"

    def image(self):
        return self.stage.alloc_img

    def setup(self):
        if self.fresh:
            self.stage.new_fresh_img()
        self.pidfile = os.path.join(self.stage.work, "qemu-nbd.pid")
        sh(["qemu-nbd", "--cache=none", "--aio=native", "-f", "qcow2",
            "--pid-file", self.pidfile, "-c", self.nbd, self.image()],
           what="qemu-nbd -c")
        self.dev = self.nbd
        base = os.path.basename(self.nbd)
        wait_for(lambda: read_int("/sys/block/%s/size" % base) > 0, 15,
                 "%s size" % self.nbd)

    def teardown(self):
        if not getattr(self, "dev", None):
            return
        sh(["qemu-nbd", "-d", self.nbd], check=False)
        pid = read_int(self.pidfile, 0)
        if pid:
            try:
                wait_for(lambda: not pid_alive(pid), 15, "qemu-nbd exit")
            except SetupError:
                os.kill(pid, signal.SIGKILL)
        self.dev = None


class NbdFresh(Nbd):
    name = "nbd-fresh"
    desc = "qemu-nbd (same options) over a new, empty qcow2 image"
    needs = ("nbd", "fs")
    fresh = True

    def image(self):
        return self.stage.fresh_img


class VhostRaw(Config):
    """The userspace virtio-blk driver (fio-vblk engine) on /dev/vhost-blk;
    one virtqueue per fio job, one vhost-blk worker per queue."""
    name, group = "vhost-raw", "vhost-blk"
    desc = ("fio-vblk driver -> /dev/vhost-blk -> the raw brd device "
            "(a queue and a worker per job)")
    needs = ("vhost", "brd")

    def setup(self):
        self.backend = self.stage.raw_dev

    def fio_opts(self, point):
        # vblk_queues explicit: the engine's default reads numjobs of
        # whichever job opens the device first, and fio's clones say 1
        return {"ioengine": "external:" + ENGINE, "filename": self.backend,
                "vblk_queues": point.jobs, "vblk_workers": point.jobs}


class OnDmq:
    """A configuration stacked on dm-qcow2 over the allocated image: its
    setup attaches the image first (dmq_up), its teardown detaches it
    last (dmq_down). dmq_class says how (DmQcow2Wq: no_inline_io)."""
    dmq_class = DmQcow2

    def dmq_up(self):
        self.dmq = self.dmq_class(self.stage)
        self.dmq.setup()
        return self.dmq.dev

    def dmq_down(self):
        if getattr(self, "dmq", None):
            self.dmq.teardown()
            self.dmq = None


class VhostDmq(OnDmq, VhostRaw):
    name = "vhost-dmq"
    desc = ("fio-vblk driver -> /dev/vhost-blk -> dm-qcow2 over the "
            "allocated image")
    needs = ("vhost", "dmq", "alloc_img")

    def setup(self):
        self.backend = self.dmq_up()

    def teardown(self):
        self.dmq_down()


class VhostDmqWq(VhostDmq):
    name = "vhost-dmq-wq"
    desc = "vhost-dmq with no_inline_io (the path before inline I/O)"
    dmq_class = DmQcow2Wq


class VhostDmqPoll(VhostDmq):
    name = "vhost-dmq-poll"
    desc = ("vhost-dmq with polling on both sides: the vhost-blk worker "
            "busy-polls each ring (VHOST_SET_VRING_BUSYLOOP_TIMEOUT 50 us) "
            "and the driver spins 50 us on the used ring before it sleeps")

    def fio_opts(self, point):
        opts = super().fio_opts(point)
        opts.update({"vblk_busyloop": 50, "vblk_poll": 50})
        return opts


class ScsiRaw(Config):
    """The in-kernel peer vhost-blk is measured against: the same driver
    in its virtio-scsi mode on /dev/vhost-scsi, LIO's vhost fabric and
    iblock backstore in front of the same device (tools/vm/lio-vhost-scsi).
    A queue per job; vhost-scsi serves them all from one vhost worker."""
    name, group = "scsi-raw", "vhost-scsi"
    desc = ("fio-vblk driver (virtio-scsi) -> /dev/vhost-scsi -> LIO "
            "iblock -> the raw brd device (a queue per job)")
    needs = ("vscsi", "brd")
    lio_name = "bench-scsi-raw"

    def device(self):
        return self.stage.raw_dev

    def setup(self):
        self.exported = True
        try:
            out = sh([LIO_VHOST_SCSI, "create", self.lio_name, self.device()],
                     what="lio-vhost-scsi create")
        except SetupError:
            self.teardown()
            raise
        self.backend = out.strip().splitlines()[-1]

    def teardown(self):
        if getattr(self, "exported", False):
            sh([LIO_VHOST_SCSI, "remove", self.lio_name], check=False)
            self.exported = False

    def fio_opts(self, point):
        # fio splits filename at ':': the target goes in vblk_backend
        return {"ioengine": "external:" + ENGINE, "filename": self.lio_name,
                "vblk_backend": self.backend, "vblk_vhost_scsi": 1,
                "vblk_queues": point.jobs}


class ScsiDmq(OnDmq, ScsiRaw):
    name = "scsi-dmq"
    desc = ("fio-vblk driver (virtio-scsi) -> /dev/vhost-scsi -> LIO "
            "iblock -> dm-qcow2 over the allocated image (as vhost-dmq)")
    needs = ("vscsi", "dmq", "alloc_img")
    lio_name = "bench-scsi-dmq"

    def device(self):
        return self.dmq.dev

    def setup(self):
        self.dmq_up()
        super().setup()

    def teardown(self):
        super().teardown()
        self.dmq_down()


class QsdRaw(Config):
    """The same driver over vhost-user to qemu-storage-daemon: QEMU's
    userspace virtio-blk path, one iothread (QEMU 7.2)."""
    name, group = "qsd-raw", "qemu-storage-daemon"
    desc = ("fio-vblk driver -> vhost-user-blk of qemu-storage-daemon "
            "(cache.direct, aio=native, 1 iothread) -> the raw brd device")
    needs = ("qsd", "brd")
    daemon = "qemu-storage-daemon"

    def command(self, sock):
        cmd = ["qemu-storage-daemon"]
        for b in self.blockdevs():
            cmd += ["--blockdev", b]
        return cmd + ["--object", "iothread,id=iot0",
                      "--export", "type=vhost-user-blk,id=exp0,"
                      "node-name=disk,addr.type=unix,addr.path=%s,"
                      "writable=on,num-queues=%d,iothread=iot0" %
                      (sock, self.stage.args.max_jobs)]

    def blockdevs(self):
        return ["driver=host_device,node-name=disk,filename=%s,"
                "cache.direct=on,aio=native" % self.stage.raw_dev]

    def setup(self):
        st = self.stage
        sock = st.qsd_sock
        if os.path.exists(sock):
            os.unlink(sock)
        cmd = self.command(sock)
        self.errf = open(os.path.join(st.work, "qsd.err"), "w+")
        self.proc = subprocess.Popen(cmd, stdout=self.errf,
                                     stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: os.path.exists(sock) or
                     self.proc.poll() is not None, 20,
                     "%s socket" % self.daemon)
        except SetupError:
            self.teardown()
            raise
        if self.proc.poll() is not None:
            self.errf.seek(0)
            msg = " | ".join(self.errf.read().strip().splitlines()[-3:])
            self.teardown()
            raise SetupError("%s exited: %s" % (self.daemon, msg))
        self.backend = sock

    def teardown(self):
        p = getattr(self, "proc", None)
        if p:
            p.terminate()
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            self.proc = None
            self.errf.close()

    def fio_opts(self, point):
        return {"ioengine": "external:" + ENGINE, "filename": self.backend,
                "vblk_vhost_user": 1, "vblk_queues": point.jobs}


class QsdQcow2(QsdRaw):
    name = "qsd-qcow2"
    desc = ("fio-vblk driver -> vhost-user-blk of qemu-storage-daemon -> "
            "qcow2 driver on the allocated image (cache.direct, aio=native)")
    needs = ("qsd", "alloc_img")

    def blockdevs(self):
        return ["driver=file,node-name=file0,filename=%s,cache.direct=on,"
                "aio=native" % self.stage.alloc_img,
                "driver=qcow2,node-name=disk,file=file0"]


class VudDmq(OnDmq, QsdRaw):
    """The stock front door: the same vhost-user-blk client, but the
    back-end is vhost-blkd, which hands the rings to /dev/vhost-blk; the
    kernel serves every request (the daemon only answers control
    messages), as for vhost-dmq."""
    name, group = "vud-dmq", "vhost-blkd"
    desc = ("fio-vblk driver -> vhost-user-blk of vhost-blkd -> "
            "/dev/vhost-blk -> dm-qcow2 over the allocated image "
            "(a queue per job, max-jobs workers)")
    needs = ("vud", "dmq", "alloc_img")
    daemon = "vhost-blkd"

    def command(self, sock):
        n = str(self.stage.args.max_jobs)
        return [VHOST_BLKD, "--socket", sock, "--queues", n,
                "--workers", n, self.dmq.dev]

    def setup(self):
        self.dmq_up()
        try:
            super().setup()
        except SetupError:
            self.dmq_down()
            raise

    def teardown(self):
        super().teardown()
        self.dmq_down()


class VudDmqPoll(VudDmq):
    name = "vud-dmq-poll"
    desc = ("vud-dmq with polling: vhost-blkd --busyloop 50 (the kernel "
            "worker polls each ring 50 us) and the driver spins 50 us on "
            "the used ring")

    def command(self, sock):
        cmd = super().command(sock)
        return cmd[:-1] + ["--busyloop", "50", cmd[-1]]

    def fio_opts(self, point):
        opts = super().fio_opts(point)
        opts["vblk_poll"] = 50
        return opts


CONFIG_CLASSES = [HostBrd, HostLoop, DmQcow2, DmQcow2Wq, DmQcow2Fresh, Nbd,
                  NbdFresh, VhostRaw, VhostDmq, VhostDmqWq, VhostDmqPoll,
                  VudDmq, VudDmqPoll, ScsiRaw, ScsiDmq, QsdRaw, QsdQcow2]


def select(items, patterns, keys):
    if not patterns:
        return list(items)
    pats = [p for p in re.split(r"[,\s]+", patterns) if p]
    out = []
    for it in items:
        names = keys(it)
        if any(fnmatch.fnmatch(n, p) or (not any(c in p for c in "*?[") and
                                         n.startswith(p))
               for p in pats for n in names):
            out.append(it)
    return out


# -------------------------------------------------------------- running

def fio_jobfile(cfg, points, args):
    lines = ["[global]", "thread=1", "time_based=1",
             "runtime=%dms" % int(args.runtime * 1000),
             "ramp_time=%dms" % int(args.ramp * 1000),
             "size=%dm" % args.size_mb, "randrepeat=0", "norandommap=1",
             "group_reporting=1",
             # its output file's mtime marks the end of the job's I/O
             "exec_postrun=true"]
    for i, p in enumerate(points):
        lines += ["", "[p%d]" % i, "stonewall", "rw=%s" % p.rw,
                  "bs=%s" % p.bs, "iodepth=%d" % p.iodepth,
                  "numjobs=%d" % p.jobs]
        if p.fsync:
            lines.append("fsync=%d" % p.fsync)
        for k, v in cfg.fio_opts(p).items():
            lines.append("%s=%s" % (k, v))
    return "\n".join(lines) + "\n"


def parse_fio_json(text):
    # fio writes notices (exec_postrun) to the output file before the JSON
    m = re.search(r"^\{", text, re.M)
    if not m:
        return None
    try:
        return json.loads(text[m.start():])
    except ValueError:
        return None


def run_fio(cfg, points, args, tag):
    """Run POINTS in one fio process; returns {point index: result dict}."""
    d = os.path.join(args.workdir, "fio-" + tag)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    jobfile = os.path.join(d, "job.fio")
    with open(jobfile, "w") as f:
        f.write(fio_jobfile(cfg, points, args))
    out = os.path.join(d, "out.json")
    limit = len(points) * (args.runtime + args.ramp + 20) + 60
    sampler = CpuSampler()
    sampler.start()
    t_start = time.time()
    cmd = ["fio", "--output-format=json", "--output=" + out, "--eta=never",
           jobfile]
    if args.perf:
        # a profile of the whole guest while this fio runs (cpu-clock: TCG
        # has no hardware counters)
        pdata = os.path.join(d, "perf.data")
        cmd = ["perf", "record", "-q", "-a", "-g", "-e", "cpu-clock",
               "-F", str(args.perf_freq), "-o", pdata, "--"] + cmd
    # its own session, so that a timeout takes fio (and perf) down whole
    p = subprocess.Popen(cmd, cwd=d, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, universal_newlines=True,
                         start_new_session=True)
    try:
        msg, _ = p.communicate(timeout=limit)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        try:
            msg, _ = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            msg = "(fio does not die: I/O stuck in the kernel?)"
        rc, msg = "timeout", "fio killed after %ds, no completion: %s" % (
            limit, (msg or "").strip()[-200:])
    sampler.stop()
    try:
        with open(out) as f:
            js = parse_fio_json(f.read())
    except OSError:
        js = None
    lines = [l.strip() for l in (msg or "").splitlines()
             if l.strip() and "Saving output of" not in l]
    errtext = " | ".join(lines[-3:])[-400:]
    res = {}
    jobs = {j.get("jobname"): j for j in (js or {}).get("jobs", [])}
    for i, pt in enumerate(points):
        j = jobs.get("p%d" % i)
        r = {"status": "failed", "error": None}
        res[i] = r
        if j is None:
            r["error"] = "fio: no result (%s): %s" % (
                "exit %s" % rc, errtext or "no output")
            continue
        io = j.get(pt.ddir, {})
        ios = io.get("total_ios", 0)
        if j.get("error") or not ios:
            r["error"] = "fio: job error %s (%s): %s" % (
                j.get("error"), os.strerror(j["error"]) if j.get("error") else
                "no I/O", errtext or "no output")
            continue
        rt_ms = io.get("runtime", 0)
        pct = io.get("clat_ns", {}).get("percentile", {})
        r.update(status="ok", error=None, ios=ios, runtime_ms=rt_ms,
                 iops=io.get("iops", 0.0),
                 bw_mib=io.get("bw_bytes", 0) / 1048576.0,
                 clat_mean_us=io.get("clat_ns", {}).get("mean", 0) / 1000.0,
                 clat_p50_us=pct.get("50.000000", 0) / 1000.0,
                 clat_p99_us=pct.get("99.000000", 0) / 1000.0,
                 fio_usr_pct=j.get("usr_cpu"), fio_sys_pct=j.get("sys_cpu"))
        mark = os.path.join(d, "p%d.postrun.txt" % i)
        cpu = None
        if os.path.exists(mark) and rt_ms:
            t1 = os.stat(mark).st_mtime_ns / 1e9
            cpu = sampler.busy(t1 - rt_ms / 1000.0, t1)
        if cpu is not None:
            r["cpu_usr_s"], r["cpu_sys_s"], ctxt = cpu
            r["cpu_us_per_io"] = (cpu[0] + cpu[1]) * 1e6 / ios
            r["cpu_sys_us_per_io"] = cpu[1] * 1e6 / ios
            r["ctxt_per_io"] = ctxt / ios
        else:
            r["cpu_us_per_io"] = None
            r["cpu_sys_us_per_io"] = None
            r["ctxt_per_io"] = None
    if args.perf:
        save_profile(d, tag, args)
    if not args.keep:
        shutil.rmtree(d, ignore_errors=True)
    return res, time.time() - t_start


def save_profile(d, tag, args):
    os.makedirs(args.perf, exist_ok=True)
    base = os.path.join(args.perf, tag)
    pdata = os.path.join(d, "perf.data")
    for name, extra in (("flat", ["--no-children", "--sort",
                                  "comm,dso,sym", "-g", "none"]),
                        ("graph", ["--no-children", "--sort", "comm,sym",
                                   "-g", "caller,0.5,callee", "--percent-limit",
                                   "2"])):
        with open("%s.%s.txt" % (base, name), "w") as f:
            subprocess.run(["perf", "report", "--stdio", "-i", pdata] + extra,
                           stdout=f, stderr=subprocess.DEVNULL, cwd=d)
    log("profile: %s.{flat,graph}.txt" % base)


class Runner:
    def __init__(self, args, configs, points):
        self.args = args
        self.configs = configs
        self.points = points
        self.runs = []
        self.visits = []
        self.t0 = time.time()
        self.total = sum(len([p for p in points if c.wants(p)])
                         for c in configs) * args.reps
        self.done = 0

    def eta(self):
        if not self.done:
            return "?"
        left = (time.time() - self.t0) / self.done * (self.total - self.done)
        return "%dm%02ds" % (left // 60, left % 60)

    def record(self, cfg, pt, rep, r):
        r = dict(r)
        r.update(config=cfg.name, point=pt.id, rep=rep)
        self.runs.append(r)
        self.done += 1
        if r["status"] == "ok":
            cpu = r.get("cpu_us_per_io")
            cs = r.get("ctxt_per_io")
            desc = ("%9.0f IOPS %8.1f MiB/s p50 %7.0fus p99 %7.0fus cpu %s "
                    "ctxt %s") % (
                r["iops"], r["bw_mib"], r["clat_p50_us"], r["clat_p99_us"],
                "%.1fus/io" % cpu if cpu is not None else "?",
                "%.2f/io" % cs if cs is not None else "?")
        else:
            desc = "%s: %s" % (r["status"].upper(), r["error"])
        log("[%d/%d eta %s] rep %d %-10s %-22s %s" % (
            self.done, self.total, self.eta(), rep, cfg.name, pt.id, desc))

    def batch(self, cfg, pts, rep):
        """Set up, run PTS, tear down; every point gets a record."""
        try:
            cfg.check(rep)
            cfg.setup()
        except SetupError as e:
            for p in pts:
                self.record(cfg, p, rep, {"status": e.status,
                                          "error": str(e)})
            return str(e)
        try:
            res, _ = run_fio(cfg, pts, self.args,
                             "%s-r%d" % (cfg.name, rep))
            # A point that failed inside a batch is retried alone, so one
            # bad point cannot take the others' results with it.
            if len(pts) > 1 and any(r["status"] != "ok" for r in res.values()):
                for i, p in enumerate(pts):
                    if res[i]["status"] != "ok":
                        one, _ = run_fio(cfg, [p], self.args, "%s-r%d-p%d" %
                                         (cfg.name, rep, i))
                        res[i] = one[0]
        except Exception as e:  # noqa: a harness bug must not stop the run
            res = {i: {"status": "failed", "error": "harness: %r" % e}
                   for i in range(len(pts))}
        finally:
            try:
                cfg.teardown()
            except SetupError as e:
                log("%s: teardown: %s" % (cfg.name, e))
        for i, p in enumerate(pts):
            self.record(cfg, p, rep, res[i])
        return None

    def visit(self, cfg, rep):
        pts = [p for p in self.points if cfg.wants(p)]
        if not pts:
            return
        v = {"rep": rep, "config": cfg.name, "start": time.time()}
        log("rep %d/%d: %s (%d points)" % (rep, self.args.reps, cfg.name,
                                           len(pts)))
        if cfg.fresh:
            errs = [self.batch(cfg, [p], rep) for p in pts]
            err = next((e for e in errs if e), None)
        else:
            err = self.batch(cfg, pts, rep)
        v.update(end=time.time(), error=err)
        self.visits.append(v)

    def run(self, save):
        n = len(self.configs)
        for rep in range(1, self.args.reps + 1):
            # round robin, starting one further along each repetition
            k = (rep - 1) % n
            for cfg in self.configs[k:] + self.configs[:k]:
                self.visit(cfg, rep)
                save()


def versions():
    def first(cmd):
        try:
            return subprocess.run(cmd, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT,
                                  universal_newlines=True).stdout.splitlines()[0]
        except (OSError, IndexError):
            return None
    return {"fio": first(["fio", "--version"]),
            "qemu": first(["qemu-storage-daemon", "--version"])}


def virt():
    """KVM guests log 'Hypervisor detected: KVM'; under TCG nothing is."""
    try:
        log_ = subprocess.run(["dmesg"], stdout=subprocess.PIPE,
                              universal_newlines=True).stdout
    except OSError:
        return "?"
    m = re.search(r"Hypervisor detected: (\S+)", log_)
    return m.group(1) if m else "TCG (QEMU emulation, no KVM)"


def modules_info():
    out = {}
    for m in ("dm_qcow2", "vhost_blk", "vhost_scsi"):
        out[m] = {"loaded": os.path.exists("/sys/module/" + m),
                  "srcversion": (open("/sys/module/%s/srcversion" % m).read()
                                 .strip() if os.path.exists(
                                     "/sys/module/%s/srcversion" % m) else None)}
    return out


def estimate(args, configs, points):
    """Seconds a run should take on a 2-core TCG host (generous)."""
    t = 60.0
    for c in configs:
        pts = [p for p in points if c.wants(p)]
        batches = len(pts) if c.fresh else 1
        t += args.reps * (len(pts) * (args.runtime + args.ramp + 2.5) +
                          batches * (8 if c.fresh else 5))
    return int(t)


def cmd_guest(args):
    stage = Stage(args)
    configs = [c(stage) for c in CONFIG_CLASSES]
    configs = select(configs, args.only, lambda c: (c.name, c.group))
    if not configs:
        sys.exit("bench: --only '%s' matches no configuration (have: %s)" % (
            args.only, ", ".join(c.name for c in CONFIG_CLASSES)))
    points = POINT_SETS["quick" if args.quick else args.points_set]()
    points = select(points, args.points, lambda p: (p.id,))
    if not points:
        sys.exit("bench: --points '%s' matches no workload" % args.points)
    args.max_jobs = max(p.jobs for p in points)
    if args.plan:
        print(estimate(args, configs, points))
        return 0
    if os.geteuid() != 0:
        sys.exit("bench: the guest side needs root (run it in the test VM)")
    # NAME fails every repetition, NAME:REP only that one
    for spec in args.inject_failure or []:
        name, _, rep = spec.partition(":")
        for c in configs:
            if c.name == name:
                c.inject = int(rep) if rep else 0
    runner = Runner(args, configs, points)
    meta = {
        "schema": SCHEMA,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "kernel": os.uname().release,
        "ncpus": os.cpu_count(),
        "mem_mb": int(open("/proc/meminfo").readline().split()[1]) // 1024,
        "runtime_s": args.runtime, "ramp_s": args.ramp, "reps": args.reps,
        "size_mb": args.size_mb, "quick": args.quick,
        "cpu_definition": CPU_DEFINITION,
        "ctxt_definition": CTXT_DEFINITION,
        "versions": versions(), "modules": modules_info(),
        "argv": sys.argv[1:], "virt": virt(),
    }
    log("%d configurations x %d workloads x %d reps = %d fio points "
        "(%.1fs + %.1fs ramp each)" % (len(configs), len(points), args.reps,
                                        runner.total, args.runtime, args.ramp))

    def save():
        meta["duration_s"] = round(time.time() - runner.t0, 1)
        raw = {"meta": meta, "configs": [c.info() for c in configs],
               "points": [p.as_dict() for p in points],
               "visits": runner.visits, "runs": runner.runs}
        tmp = args.raw + ".tmp"
        with open(tmp, "w") as f:
            json.dump(raw, f, indent=1)
        os.replace(tmp, args.raw)

    os.makedirs(os.path.dirname(os.path.abspath(args.raw)), exist_ok=True)
    try:
        runner.run(save)
    finally:
        meta["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        save()
        stage.teardown()
    log("raw results in %s (%.0fs)" % (args.raw, time.time() - runner.t0))


# --------------------------------------------------------------- report

RATIOS = [
    # name, numerator, denominator, target (None: report only), comparison
    ("dm-qcow2 / qemu-nbd (allocated)", "dmq-alloc", "nbd-alloc", 4.0),
    ("dm-qcow2 / qemu-nbd (fresh image)", "dmq-fresh", "nbd-fresh", None),
    ("dm-qcow2 / loop-raw", "dmq-alloc", "host-loop", 0.90),
    ("vhost-blk / host (raw brd)", "vhost-raw", "host-brd", 0.95),
    ("vhost-blk / qemu-storage-daemon (raw)", "vhost-raw", "qsd-raw", 1.0),
    ("vhost-blk+dm-qcow2 / qemu-storage-daemon (qcow2)", "vhost-dmq",
     "qsd-qcow2", 1.0),
    ("vhost-blkd+dm-qcow2 / vhost-blk+dm-qcow2", "vud-dmq", "vhost-dmq",
     None),
    ("dm-qcow2 inline / no_inline_io", "dmq-alloc", "dmq-wq", None),
    ("vhost-blk+dm-qcow2 inline / no_inline_io", "vhost-dmq",
     "vhost-dmq-wq", None),
    ("vhost-blk+dm-qcow2 polling / qemu-storage-daemon (qcow2)",
     "vhost-dmq-poll", "qsd-qcow2", 1.5),
    ("vhost-blk+dm-qcow2 polling / not polling", "vhost-dmq-poll",
     "vhost-dmq", None),
    ("vhost-blkd+dm-qcow2 polling / qemu-storage-daemon (qcow2)",
     "vud-dmq-poll", "qsd-qcow2", 1.5),
    ("vhost-blkd+dm-qcow2 / qemu-storage-daemon (qcow2)", "vud-dmq",
     "qsd-qcow2", 1.0),
    ("vhost-blk / vhost-scsi (raw)", "vhost-raw", "scsi-raw", None),
    ("vhost-blk+dm-qcow2 / vhost-scsi+dm-qcow2", "vhost-dmq", "scsi-dmq",
     None),
]
METRICS = ("iops", "bw_mib", "clat_p50_us", "clat_p99_us", "cpu_us_per_io",
           "cpu_sys_us_per_io", "ctxt_per_io")


def summarize(raw):
    by = {}
    for r in raw["runs"]:
        by.setdefault((r["config"], r["point"]), []).append(r)
    summary = []
    for c in raw["configs"]:
        for p in raw["points"]:
            rs = by.get((c["name"], p["id"]))
            if not rs:
                continue
            ok = [r for r in rs if r["status"] == "ok"]
            s = {"config": c["name"], "point": p["id"], "n": len(ok),
                 "attempts": len(rs)}
            errs = sorted(set(r["error"] for r in rs if r["status"] != "ok"))
            s["errors"] = errs
            if ok:
                s["status"] = "ok" if len(ok) == len(rs) else "partial"
            else:
                s["status"] = ("missing" if all(r["status"] == "missing"
                                                for r in rs) else "failed")
            for m in METRICS:
                vals = [r[m] for r in ok if r.get(m) is not None]
                if vals:
                    s[m] = {"median": statistics.median(vals),
                            "min": min(vals), "max": max(vals)}
            summary.append(s)
    return summary


def ratios(raw, summary):
    idx = {(s["config"], s["point"]): s for s in summary}
    out = []
    for name, num, den, target in RATIOS:
        for p in raw["points"]:
            if not p["rw"].startswith("rand"):
                continue
            a, b = idx.get((num, p["id"])), idx.get((den, p["id"]))
            if not a or not b:
                continue
            r = {"name": name, "num": num, "den": den, "point": p["id"],
                 "target": target, "value": None, "meets": None}
            if "iops" in a and "iops" in b and b["iops"]["median"]:
                r["value"] = a["iops"]["median"] / b["iops"]["median"]
                if target is not None:
                    r["meets"] = r["value"] >= target
            else:
                r["why"] = "; ".join("%s %s" % (s["config"], s["status"])
                                     for s in (a, b) if "iops" not in s)
            out.append(r)
    return out


def fmt(v, nd=0):
    if v is None:
        return "-"
    if nd == 0:
        return "{:,.0f}".format(v)
    return "{:,.{}f}".format(v, nd)


def point_title(p):
    kind = {"randread": "4 KiB random read", "randwrite": "4 KiB random write",
            "read": "64 KiB sequential read",
            "write": "64 KiB sequential write"}.get(p["rw"], p["rw"])
    if p["bs"] != "4k" and p["rw"].startswith("rand"):
        kind = "%s random %s" % (p["bs"], p["rw"][4:])
    return "%s, iodepth %d, %d job%s%s" % (
        kind, p["iodepth"], p["jobs"], "s" if p["jobs"] > 1 else "",
        ", a flush every %d writes" % p["fsync"] if p.get("fsync") else "")


def host_load_words(meta):
    """How busy the host was, from the 1-minute load average before the run."""
    try:
        load = float(meta["host_load_before"].split()[0])
    except (KeyError, ValueError, IndexError):
        return "of unknown load"
    if load < 1.5:
        return "otherwise idle (load average %.2f before the run)" % load
    return "shared with other work (load average %.1f before the run)" % load


def markdown(res, plots):
    raw = res
    m = raw["meta"]
    cfgs = {c["name"]: c for c in raw["configs"]}
    L = []
    L.append("# Benchmark %s" % res["stem"])
    L.append("")
    L.append("Made by `%s` on commit %s, kernel %s, %d vCPUs, %d MiB, "
             "%s; %d repetitions interleaved over configurations, "
             "%.1fs per point after %.1fs ramp, %s MiB working set. "
             "Wall time %.0fs." % (
                 m.get("command", "bench/run"), m.get("commit", "?"),
                 m["kernel"], m["ncpus"], m["mem_mb"],
                 m.get("virt", "?"), m["reps"], m["runtime_s"],
                 m["ramp_s"], m["size_mb"], m.get("duration_s", 0)))
    L.append("")
    L.append("**The figures come from a TCG-emulated guest** (no KVM), on "
             "a %d-core host %s: every syscall, " % (
                 os.cpu_count() or 0, host_load_words(m)) +
             "interrupt and context switch costs far more than on hardware "
             "and the absolute numbers are noisy. Compare rows of one run; "
             "the ratios are the message.%s" % (
                 " Host load average before/after: %s / %s." % (
                     m["host_load_before"], m["host_load_after"])
                 if m.get("host_load_before") else ""))
    L.append("")
    L.append("IOPS are the median of the repetitions with [min-max]; "
             "latency is fio's completion latency (clat) percentiles, "
             "median over repetitions; CPU/IO is %s; 'kernel' is its "
             "system+irq+softirq part." % m["cpu_definition"])
    L.append("")
    if m.get("vm_status"):
        L.append("VM: %s" % m["vm_status"])
        L.append("")
    # ratios first: they are the point
    rs = res["ratios"]
    if rs:
        L.append("## Ratios (median IOPS of one run)")
        L.append("")
        L.append("| ratio | workload | value | target |")
        L.append("|---|---|---:|---|")
        for r in rs:
            tgt = "-" if r["target"] is None else (
                ">= %.2f%s" % (r["target"], "" if r["meets"] is None else
                               (" (met)" if r["meets"] else " (**not met**)")))
            val = ("%.2f" % r["value"]) if r["value"] is not None else \
                "n/a (%s)" % r.get("why", "")
            L.append("| %s | %s | %s | %s |" % (r["name"], r["point"], val,
                                                tgt))
        L.append("")
    # overview: IOPS of every config at every point
    pts = raw["points"]
    idx = {(s["config"], s["point"]): s for s in res["summary"]}
    L.append("## IOPS overview (median)")
    L.append("")
    L.append("| configuration | " + " | ".join(p["id"] for p in pts) + " |")
    L.append("|---|" + "---:|" * len(pts))
    for c in raw["configs"]:
        cells = []
        for p in pts:
            s = idx.get((c["name"], p["id"]))
            if not s:
                cells.append("")
            elif "iops" in s:
                cells.append(fmt(s["iops"]["median"]) +
                             ("" if s["status"] == "ok" else " (partial)"))
            else:
                cells.append(s["status"].upper())
        L.append("| %s | %s |" % (c["name"], " | ".join(cells)))
    L.append("")
    L.append("## Per workload")
    for p in pts:
        L.append("")
        L.append("### %s (`%s`)" % (point_title(p), p["id"]))
        L.append("")
        L.append("| configuration | IOPS median [min-max] | MiB/s | "
                 "p50 us | p99 us | CPU/IO us (kernel) | ctxt/IO | n |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for c in raw["configs"]:
            s = idx.get((c["name"], p["id"]))
            if not s:
                continue
            if "iops" not in s:
                L.append("| %s | **%s**: %s | | | | | | 0/%d |" % (
                    c["name"], s["status"].upper(),
                    "; ".join(s["errors"])[:300].replace("|", "/"),
                    s["attempts"]))
                continue
            i = s["iops"]
            cpu = s.get("cpu_us_per_io")
            ker = s.get("cpu_sys_us_per_io")
            cs = s.get("ctxt_per_io")
            L.append("| %s | %s [%s-%s] | %s | %s | %s | %s | %s | %d/%d |" % (
                c["name"], fmt(i["median"]), fmt(i["min"]), fmt(i["max"]),
                fmt(s["bw_mib"]["median"], 1),
                fmt(s["clat_p50_us"]["median"]),
                fmt(s["clat_p99_us"]["median"]),
                ("%s (%s)" % (fmt(cpu["median"], 1), fmt(ker["median"], 1)))
                if cpu else "-", fmt(cs["median"], 2) if cs else "-",
                s["n"], s["attempts"]))
    L.append("")
    L.append("## Configurations")
    L.append("")
    for c in raw["configs"]:
        L.append("- `%s`: %s%s" % (c["name"], c["desc"],
                                   " (fresh image per write point; "
                                   "writes only)" if c["fresh"] else ""))
    bad = [s for s in res["summary"] if s["errors"]]
    if bad:
        L.append("")
        L.append("## Errors")
        L.append("")
        for s in bad:
            L.append("- `%s` `%s` (%s, %d of %d ok): %s" % (
                s["config"], s["point"], s["status"], s["n"], s["attempts"],
                "; ".join(s["errors"])))
    if plots:
        L.append("")
        L.append("## Plots")
        L.append("")
        for title, path in plots:
            L.append("![%s](%s)" % (title, os.path.basename(path)))
    L.append("")
    L.append("Visit order (proves the interleaving): " + ", ".join(
        "%d:%s" % (v["rep"], v["config"]) for v in raw["visits"]))
    L.append("")
    return "\n".join(L)


def plot(res, stem_path):
    """PNG plots with matplotlib (python3-matplotlib). Returns a list of
    (title, path); an empty list and a message when matplotlib is absent."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.lines
        import matplotlib.pyplot as plt
    except ImportError:
        log("plots skipped: python3-matplotlib is not installed")
        return []
    idx = {(s["config"], s["point"]): s for s in res["summary"]}
    cfgs = [c["name"] for c in res["configs"]]
    pts = res["points"]
    out = []

    def val(c, pid, k="median"):
        s = idx.get((c, pid))
        return s["iops"][k] if s and "iops" in s else None

    # 1. IOPS per configuration, one panel per direction, bars per workload
    rnd = [p for p in pts if p["rw"].startswith("rand")]
    seq = [p for p in pts if not p["rw"].startswith("rand")]
    panels = [("4 KiB random read", [p for p in rnd if p["rw"] == "randread"]),
              ("4 KiB random write",
               [p for p in rnd if p["rw"] == "randwrite"]),
              ("64 KiB sequential", seq)]
    panels = [x for x in panels if x[1]]
    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 3.6 * len(panels)),
                             squeeze=False)
    for ax, (title, ps) in zip(axes[:, 0], panels):
        w = 0.8 / max(1, len(ps))
        for k, p in enumerate(ps):
            xs, ys, lo, hi = [], [], [], []
            for i, c in enumerate(cfgs):
                v = val(c, p["id"])
                if v is None:
                    continue
                xs.append(i + (k - (len(ps) - 1) / 2) * w)
                ys.append(v)
                lo.append(v - val(c, p["id"], "min"))
                hi.append(val(c, p["id"], "max") - v)
            ax.bar(xs, ys, w, yerr=[lo, hi], capsize=2,
                   label="d%d j%d%s" % (p["iodepth"], p["jobs"], "" if
                                       p["rw"].startswith("rand") else
                                       " " + p["rw"]))
        fresh = {c["name"] for c in res["configs"] if c["fresh"]}
        for i, c in enumerate(cfgs):
            if all(val(c, p["id"]) is None for p in ps):
                why = ("writes only" if c in fresh and
                       not any("write" in p["rw"] for p in ps) else "n/a")
                ax.text(i, 0.02, why, ha="center", va="bottom", fontsize=7,
                        transform=ax.get_xaxis_transform())
        ax.set_yscale("log")
        allv = [val(c, p["id"], "min") for c in cfgs for p in ps
                if val(c, p["id"]) is not None]
        if allv:
            ax.set_ylim(bottom=10 ** math.floor(math.log10(
                max(1.0, min(allv) * 0.8))))
        for bar in ax.patches:
            h = bar.get_height()
            if h > 0:
                ax.annotate("%.0f" % h if h < 1000 else "%.1fk" % (h / 1000),
                            (bar.get_x() + bar.get_width() / 2, h),
                            ha="center", va="bottom", fontsize=6,
                            rotation=90, xytext=(0, 2),
                            textcoords="offset points")
        ax.set_xticks(range(len(cfgs)))
        ax.set_xticklabels(cfgs, rotation=20, fontsize=8)
        ax.set_ylabel("IOPS (median, min-max)")
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("IOPS per configuration (%s, TCG guest)" % res["stem"])
    fig.tight_layout()
    path = stem_path + "-iops.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    out.append(("IOPS per configuration", path))

    # 2. and 3. IOPS against iodepth (1 job) and against queues (max depth)
    def lines(xkey, fixed, fname, title, xlabel):
        fig, axes = plt.subplots(1, 2, figsize=(12, 4), squeeze=False)
        any_line = False
        shown = set()
        for ax, rw in zip(axes[0], ("randread", "randwrite")):
            ps = sorted([p for p in rnd if p["rw"] == rw and fixed(p)],
                        key=lambda p: p[xkey])
            xs = sorted(set(p[xkey] for p in ps))
            if len(xs) < 2:
                ax.set_visible(False)
                continue
            for c in cfgs:
                pairs = [(p[xkey], val(c, p["id"])) for p in ps
                         if val(c, p["id"]) is not None]
                if pairs:
                    ax.plot([a for a, _ in pairs], [b for _, b in pairs],
                            marker="o", label=c, color=color[c])
                    any_line = True
                    shown.add(c)
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xticks(xs)
            ax.set_xticklabels([str(x) for x in xs])
            ax.set_xlabel(xlabel)
            ax.set_ylabel("IOPS (median)")
            ax.set_title("4 KiB %s" % rw)
            ax.grid(alpha=0.3)
        handles = [matplotlib.lines.Line2D([], [], color=color[c],
                                           marker="o", label=c)
                   for c in cfgs if c in shown]
        fig.legend(handles=handles, loc="center right", fontsize=8)
        fig.suptitle(title + " (%s, TCG guest)" % res["stem"])
        fig.tight_layout(rect=(0, 0, 0.86, 1))
        path = stem_path + fname
        if any_line:
            fig.savefig(path, dpi=90)
            out.append((title, path))
        plt.close(fig)

    # one colour per configuration in every plot
    palette = plt.get_cmap("tab10").colors + plt.get_cmap("Dark2").colors
    color = {c: palette[i % len(palette)] for i, c in enumerate(cfgs)}
    maxd = max([p["iodepth"] for p in rnd] or [1])
    lines("iodepth", lambda p: p["jobs"] == 1, "-iodepth.png",
          "IOPS against iodepth (1 job)", "iodepth")
    lines("jobs", lambda p: p["iodepth"] == maxd, "-queues.png",
          "IOPS against jobs/queues (iodepth %d)" % maxd, "jobs = queues")
    return out


def cmd_report(args):
    with open(args.raw) as f:
        raw = json.load(f)
    if raw.get("meta", {}).get("schema") != SCHEMA:
        sys.exit("bench: %s is not %s raw output" % (args.raw, SCHEMA))
    meta = raw["meta"]
    for kv in args.meta or []:
        k, _, v = kv.partition("=")
        meta[k] = v
    stem = args.stem or "%s-%s" % (time.strftime(
        "%Y%m%d-%H%M", time.gmtime()), meta.get("commit", "nocommit"))
    res = dict(raw)
    res["stem"] = stem
    res["summary"] = summarize(raw)
    res["ratios"] = ratios(raw, res["summary"])
    os.makedirs(args.out, exist_ok=True)
    stem_path = os.path.join(args.out, stem)
    plots = [] if args.no_plots else plot(res, stem_path)
    res["plots"] = [os.path.basename(p) for _, p in plots]
    with open(stem_path + ".json", "w") as f:
        json.dump(res, f, indent=1, sort_keys=False)
        f.write("\n")
    with open(stem_path + ".md", "w") as f:
        f.write(markdown(res, plots))
    # console summary
    print()
    print("IOPS (median) per configuration and workload:")
    idx = {(s["config"], s["point"]): s for s in res["summary"]}
    w = max(len(p["id"]) for p in raw["points"])
    print("%-12s " % "" + " ".join("%*s" % (w, p["id"])
                                   for p in raw["points"]))
    for c in raw["configs"]:
        row = []
        for p in raw["points"]:
            s = idx.get((c["name"], p["id"]))
            row.append("%*s" % (w, "" if not s else
                                fmt(s["iops"]["median"]) if "iops" in s
                                else s["status"].upper()))
        print("%-12s " % c["name"] + " ".join(row))
    if res["ratios"]:
        print()
        print("ratios (median IOPS):")
        for r in res["ratios"]:
            print("  %-50s %-22s %s%s" % (
                r["name"], r["point"],
                "%.2f" % r["value"] if r["value"] is not None else "n/a",
                "" if r["target"] is None or r["value"] is None else
                "  (target >= %.2f: %s)" % (r["target"],
                                           "met" if r["meets"] else "NOT met")))
    bad = [s for s in res["summary"] if s["status"] not in ("ok",)]
    for s in bad:
        print("%s: %s %s: %s" % (s["status"].upper(), s["config"], s["point"],
                                 "; ".join(s["errors"])[:200]))
    print()
    log("wrote %s.json, %s.md%s" % (stem_path, stem_path,
                                    "".join(", " + p for _, p in plots)))
    return 0


# ----------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(prog="bench.py")
    sub = ap.add_subparsers(dest="cmd")
    g = sub.add_parser("guest", help="run the matrix (inside the test VM)")
    g.add_argument("--raw")
    g.add_argument("--plan", action="store_true",
                   help="print the estimated seconds and exit")
    g.add_argument("--workdir", default="/run/bench")
    g.add_argument("--quick", action="store_true")
    g.add_argument("--only", default="")
    g.add_argument("--points", default="")
    g.add_argument("--points-set", default="default",
                   choices=sorted(POINT_SETS))
    g.add_argument("--reps", type=int, default=3)
    g.add_argument("--runtime", type=float, default=2.0)
    g.add_argument("--ramp", type=float, default=1.0)
    g.add_argument("--size-mb", type=int, default=256)
    g.add_argument("--inject-failure", action="append")
    g.add_argument("--keep", action="store_true")
    g.add_argument("--perf", metavar="DIR",
                   help="perf record -a every fio run, reports into DIR")
    g.add_argument("--perf-freq", type=int, default=999)
    r = sub.add_parser("report", help="statistics, Markdown and plots")
    r.add_argument("raw")
    r.add_argument("--out", required=True)
    r.add_argument("--stem")
    r.add_argument("--no-plots", action="store_true")
    r.add_argument("--meta", action="append")
    a = ap.parse_args()
    if a.cmd == "guest":
        if a.reps < 1 or a.runtime <= 0 or a.ramp < 0:
            sys.exit("bench: --reps >= 1, --runtime > 0, --ramp >= 0")
        return cmd_guest(a)
    if a.cmd == "report":
        return cmd_report(a)
    ap.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
