// SPDX-License-Identifier: GPL-2.0
/*
 * lwlog: read a dm-log-writes log and replay it onto a device.
 *
 * The log format (Documentation/admin-guide/device-mapper/log-writes.rst
 * and the target's header comment): device sector 0 holds the super
 * (le64 magic, le64 version, le64 number of entries, le32 sector size);
 * entries follow from device sector 1, each one sector of header
 * (le64 sector, le64 nr_sectors, le64 flags, le64 data_len; a mark's
 * name follows the header in the same sector) and, for a write, its
 * nr_sectors of data. A discard carries no data. Sectors are in units of
 * the logged device's logical block size.
 *
 * Entry numbers start at 0. "Replaying to N" applies entries 0 .. N-1:
 * the device as a power cut right after entry N-1 reached it leaves it.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <endian.h>

#define LW_MAGIC	0x6a736677736872ULL
#define LW_VERSION	1ULL
#define LW_FLUSH	(1U << 0)
#define LW_FUA		(1U << 1)
#define LW_DISCARD	(1U << 2)
#define LW_MARK		(1U << 3)
#define LW_META		(1U << 4)
#define LW_MAX_SECTOR	65536U

struct lw_log {
	int fd;
	uint32_t secsize;
	uint64_t nr_entries;
	uint64_t pos;		/* byte offset of the next entry header */
	uint64_t idx;		/* number of the next entry */
	uint64_t log_bytes;
	unsigned char *hdr;	/* one sector */
};

struct lw_entry {
	uint64_t sector, nr, flags, data_len;
	uint64_t data_pos;	/* byte offset of the data in the log */
	char mark[256];
};

static void usage(FILE *f)
{
	fprintf(f,
"usage: lwlog list LOGDEV\n"
"       lwlog replay LOGDEV TARGET --to N [--from M]\n"
"\n"
"Read a dm-log-writes log (the log device of a log-writes target).\n"
"\n"
"list    one line per entry: NUMBER FLAGS SECTOR NR_SECTORS [MARK];\n"
"        FLAGS letters: F flush, U fua, D discard, M mark, m metadata,\n"
"        '-' for a plain write. SECTOR and NR_SECTORS are in 512-byte\n"
"        units. Replaying to NUMBER+1 includes that entry.\n"
"replay  write entries M (default 0) .. N-1 to TARGET, in log order;\n"
"        a discard is replayed as zeros (the worst a power cut leaves\n"
"        is unspecified content; zeros make a lost discard visible).\n"
"        Replay in steps (--from the previous --to) to walk a log.\n");
}

static int pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	ssize_t r;

	while (done < len) {
		r = pread(fd, (char *)buf + done, len - done, off + done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		done += r;
	}
	return 0;
}

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	ssize_t r;

	while (done < len) {
		r = pwrite(fd, (const char *)buf + done, len - done, off + done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		done += r;
	}
	return 0;
}

static int log_open(struct lw_log *l, const char *path)
{
	unsigned char sb[512];
	off_t end;

	memset(l, 0, sizeof(*l));
	l->fd = open(path, O_RDONLY);
	if (l->fd < 0) {
		fprintf(stderr, "lwlog: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (pread_all(l->fd, sb, sizeof(sb), 0)) {
		fprintf(stderr, "lwlog: %s: cannot read the super\n", path);
		goto close_fd;
	}
	if (le64toh(*(uint64_t *)sb) != LW_MAGIC ||
	    le64toh(*(uint64_t *)(sb + 8)) != LW_VERSION) {
		fprintf(stderr, "lwlog: %s: not a log-writes log (magic/version)\n",
			path);
		goto close_fd;
	}
	l->nr_entries = le64toh(*(uint64_t *)(sb + 16));
	l->secsize = le32toh(*(uint32_t *)(sb + 24));
	if (l->secsize < 512 || l->secsize > LW_MAX_SECTOR ||
	    (l->secsize & (l->secsize - 1))) {
		fprintf(stderr, "lwlog: %s: bad sector size %u\n", path,
			l->secsize);
		goto close_fd;
	}
	end = lseek(l->fd, 0, SEEK_END);
	if (end < 0) {
		fprintf(stderr, "lwlog: %s: cannot size it\n", path);
		goto close_fd;
	}
	l->log_bytes = end;
	l->hdr = malloc(l->secsize);
	if (!l->hdr)
		goto close_fd;
	l->pos = l->secsize;
	return 0;

close_fd:
	close(l->fd);
	return -1;
}

/* Read the next entry header; 1 at the end, -1 on a damaged log. */
static int log_next(struct lw_log *l, struct lw_entry *e)
{
	uint64_t len;

	if (l->idx >= l->nr_entries)
		return 1;
	if (l->pos + l->secsize > l->log_bytes ||
	    pread_all(l->fd, l->hdr, l->secsize, l->pos)) {
		fprintf(stderr, "lwlog: entry %" PRIu64 " beyond the log\n",
			l->idx);
		return -1;
	}
	e->sector = le64toh(*(uint64_t *)l->hdr);
	e->nr = le64toh(*(uint64_t *)(l->hdr + 8));
	e->flags = le64toh(*(uint64_t *)(l->hdr + 16));
	e->data_len = le64toh(*(uint64_t *)(l->hdr + 24));
	e->mark[0] = 0;
	if (e->flags & LW_MARK) {
		len = e->data_len;
		if (len > l->secsize - 32)
			len = l->secsize - 32;
		if (len > sizeof(e->mark) - 1)
			len = sizeof(e->mark) - 1;
		memcpy(e->mark, l->hdr + 32, len);
		e->mark[len] = 0;
		e->mark[strcspn(e->mark, "\n")] = 0;
	}
	e->data_pos = l->pos + l->secsize;
	l->pos += l->secsize;
	if (!(e->flags & (LW_DISCARD | LW_MARK))) {
		if (e->nr > (l->log_bytes - l->pos) / l->secsize) {
			fprintf(stderr, "lwlog: entry %" PRIu64 " data beyond the log\n",
				l->idx);
			return -1;
		}
		l->pos += e->nr * l->secsize;
	}
	l->idx++;
	return 0;
}

static void flag_str(uint64_t f, char *s)
{
	char *p = s;

	if (f & LW_FLUSH)
		*p++ = 'F';
	if (f & LW_FUA)
		*p++ = 'U';
	if (f & LW_DISCARD)
		*p++ = 'D';
	if (f & LW_MARK)
		*p++ = 'M';
	if (f & LW_META)
		*p++ = 'm';
	if (p == s)
		*p++ = '-';
	*p = 0;
}

static int cmd_list(int argc, char **argv)
{
	struct lw_log l;
	struct lw_entry e;
	uint32_t k;
	char fl[8];
	int r;

	if (argc != 2) {
		usage(stderr);
		return 2;
	}
	if (log_open(&l, argv[1]))
		return 1;
	k = l.secsize / 512;
	while (!(r = log_next(&l, &e))) {
		flag_str(e.flags, fl);
		printf("%" PRIu64 " %s %" PRIu64 " %" PRIu64 "%s%s\n", l.idx - 1,
		       fl, e.sector * k, e.nr * k, e.mark[0] ? " " : "", e.mark);
	}
	return r < 0 ? 1 : 0;
}

/* Copy one write's data from the log to the target, in bounded chunks. */
static int apply(struct lw_log *l, int tfd, struct lw_entry *e, char *buf,
		 size_t bufsz, const char *zero)
{
	uint64_t left = e->nr * l->secsize, src = e->data_pos;
	uint64_t dst = e->sector * l->secsize;
	size_t n;

	while (left) {
		n = left < bufsz ? left : bufsz;
		if (e->flags & LW_DISCARD) {
			if (pwrite_all(tfd, zero, n, dst))
				return -1;
		} else if (pread_all(l->fd, buf, n, src) ||
			   pwrite_all(tfd, buf, n, dst)) {
			return -1;
		}
		src += n;
		dst += n;
		left -= n;
	}
	return 0;
}

static int cmd_replay(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "from", required_argument, NULL, 'f' },
		{ "to", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 }
	};
	uint64_t from = 0, to = UINT64_MAX;
	const size_t bufsz = 1 << 20;
	struct lw_log l;
	struct lw_entry e;
	char *buf, *zero;
	int c, r, tfd, rc = 1;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			from = strtoull(optarg, NULL, 0);
			break;
		case 't':
			to = strtoull(optarg, NULL, 0);
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 2 || to == UINT64_MAX || from > to) {
		usage(stderr);
		return 2;
	}
	if (log_open(&l, argv[optind]))
		return 1;
	if (to > l.nr_entries) {
		fprintf(stderr, "lwlog: the log has %" PRIu64 " entries\n",
			l.nr_entries);
		return 1;
	}
	tfd = open(argv[optind + 1], O_WRONLY);
	if (tfd < 0) {
		fprintf(stderr, "lwlog: %s: %s\n", argv[optind + 1],
			strerror(errno));
		return 1;
	}
	buf = malloc(bufsz);
	zero = calloc(1, bufsz);
	if (!buf || !zero)
		goto out;
	while (l.idx < to && !(r = log_next(&l, &e))) {
		if (l.idx - 1 < from || (e.flags & LW_MARK))
			continue;
		if (apply(&l, tfd, &e, buf, bufsz, zero)) {
			fprintf(stderr, "lwlog: replaying entry %" PRIu64 ": %s\n",
				l.idx - 1, strerror(errno));
			goto out;
		}
	}
	if (l.idx < to) {
		fprintf(stderr, "lwlog: log ends before entry %" PRIu64 "\n", to);
		goto out;
	}
	if (fsync(tfd)) {
		fprintf(stderr, "lwlog: fsync: %s\n", strerror(errno));
		goto out;
	}
	rc = 0;
out:
	free(buf);
	free(zero);
	close(tfd);
	return rc;
}

int main(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		}
	}
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "list"))
		return cmd_list(argc - 1, argv + 1);
	if (!strcmp(argv[1], "replay"))
		return cmd_replay(argc - 1, argv + 1);
	fprintf(stderr, "lwlog: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
