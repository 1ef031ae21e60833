// SPDX-License-Identifier: GPL-2.0
/*
 * Guest memory and the dirty log: the front-end's regions (fds) mapped
 * into the daemon, VHOST_SET_MEM_TABLE with the daemon's addresses, ring
 * addresses translated from the front-end's, and the shared dirty log.
 *
 * The kernel reaches guest memory and the log at the daemon's addresses
 * with no further bound than what it was given, so every range given to
 * it must lie inside a mapping made here: regions are checked against
 * the size of their file, rings against their region, and the log must
 * cover every guest address the kernel may log.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vhost_blkd.h"

#define VUD_LOG_PAGE	4096ULL		/* guest bytes per log bit */
#define VUD_LOG_MAX	(1ULL << 30)	/* 1 GiB of log: 32 TiB of guest */

/* The fd must be a file we can map shared for [0, end). */
static int check_shareable(int fd, uint64_t end, const char *what)
{
	struct stat st;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		vud_log("%s: the fd is not a file that can be shared "
			"(use a memfd, hugetlbfs or shared file backend)", what);
		return -EINVAL;
	}
	if ((uint64_t)st.st_size < end) {
		vud_log("%s: the file holds %lld bytes, %llu needed", what,
			(long long)st.st_size, (unsigned long long)end);
		return -EINVAL;
	}
	return 0;
}

static void *map_shared(int fd, size_t len, const char *what)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_NORESERVE, fd, 0);

	if (p == MAP_FAILED) {
		vud_log("%s: cannot map %zu bytes shared: %s", what, len,
			strerror(errno));
		return NULL;
	}
	return p;
}

static bool add_overflows(uint64_t a, uint64_t b)
{
	return a + b < a;
}

static int region_check(const struct vu_region *v, unsigned int i,
			const struct vu_region *all)
{
	unsigned int j;

	if (!v->size || add_overflows(v->gpa, v->size) ||
	    add_overflows(v->uaddr, v->size) ||
	    add_overflows(v->mmap_offset, v->size) ||
	    v->mmap_offset + v->size > SIZE_MAX / 2) {
		vud_log("SET_MEM_TABLE: region %u has a bad size or address", i);
		return -EINVAL;
	}
	for (j = 0; j < i; j++) {
		if (v->gpa < all[j].gpa + all[j].size &&
		    all[j].gpa < v->gpa + v->size) {
			vud_log("SET_MEM_TABLE: regions %u and %u overlap", j, i);
			return -EINVAL;
		}
	}
	return 0;
}

static void mem_unmap(struct vud_mem *mem)
{
	unsigned int i;

	for (i = 0; i < mem->nregions; i++)
		munmap(mem->r[i].map, mem->r[i].map_len);
	mem->nregions = 0;
}

static int mem_map(struct vud_conn *c, const struct vu_mem *t,
		   struct vud_mem *mem)
{
	unsigned int i;
	int rc;

	mem->nregions = 0;
	for (i = 0; i < t->nregions; i++) {
		const struct vu_region *v = &t->regions[i];
		struct vud_region *r = &mem->r[i];

		rc = region_check(v, i, t->regions);
		if (!rc)
			rc = check_shareable(c->fds[i],
					     v->mmap_offset + v->size,
					     "SET_MEM_TABLE");
		if (rc)
			goto unmap;
		r->gpa = v->gpa;
		r->size = v->size;
		r->fe_addr = v->uaddr;
		r->mmap_offset = v->mmap_offset;
		r->map_len = v->mmap_offset + v->size;
		r->map = map_shared(c->fds[i], r->map_len, "SET_MEM_TABLE");
		if (!r->map) {
			rc = -EINVAL;
			goto unmap;
		}
		mem->nregions++;
	}
	return 0;

unmap:
	mem_unmap(mem);
	return rc;
}

static int mem_to_kernel(struct vud_conn *c, const struct vud_mem *mem)
{
	struct vhost_memory *k;
	unsigned int i;
	int rc;

	k = calloc(1, sizeof(*k) + mem->nregions * sizeof(k->regions[0]));
	if (!k)
		return -ENOMEM;
	k->nregions = mem->nregions;
	for (i = 0; i < mem->nregions; i++) {
		k->regions[i].guest_phys_addr = mem->r[i].gpa;
		k->regions[i].memory_size = mem->r[i].size;
		k->regions[i].userspace_addr =
			(uintptr_t)(mem->r[i].map + mem->r[i].mmap_offset);
	}
	rc = VUD_IOCTL(c, VHOST_SET_MEM_TABLE, k);
	free(k);
	return rc;
}

static bool logging(const struct vud_conn *c)
{
	return c->acked & VUD_BIT(VHOST_F_LOG_ALL);
}

/*
 * Replace the table. The queues are drained while the kernel switches,
 * and the running rings are given their new daemon addresses before
 * they are served again.
 */
int vud_mem_set(struct vud_conn *c, const struct vud_msg *m)
{
	const struct vu_mem *t = &m->p.mem;
	struct vud_mem old = c->mem, mem;
	int rc, rc2;

	if (m->size < offsetof(struct vu_mem, regions) || !t->nregions ||
	    t->nregions > VU_MAX_FDS ||
	    m->size != offsetof(struct vu_mem, regions) +
		       t->nregions * sizeof(t->regions[0])) {
		vud_log("SET_MEM_TABLE: bad table (%u regions in %u bytes)",
			t->nregions, m->size);
		return -EINVAL;
	}
	if (c->nfds != t->nregions) {
		vud_log("SET_MEM_TABLE: %u regions but %u fds", t->nregions,
			c->nfds);
		return -EINVAL;
	}
	rc = mem_map(c, t, &mem);
	if (rc)
		return rc;
	c->mem = mem;
	if (logging(c) && (!vud_log_covers_mem(c) || !vud_vqs_log_ok(c))) {
		vud_log("SET_MEM_TABLE: the dirty log does not cover the memory");
		rc = -EINVAL;
		goto restore;
	}
	rc = vud_backend_pause(c);
	if (!rc)
		rc = mem_to_kernel(c, &c->mem);
	if (!rc)
		rc = vud_vqs_readdress(c);
	rc2 = vud_backend_resume(c);
	if (rc || rc2) {
		/* closing: both go once the kernel device is released */
		c->mem_old = old;
		return rc ? rc : rc2;
	}
	mem_unmap(&old);
	return 0;

restore:
	mem_unmap(&c->mem);
	c->mem = old;
	return rc;
}

void vud_mem_free(struct vud_conn *c)
{
	mem_unmap(&c->mem);
	mem_unmap(&c->mem_old);
}

/* The daemon's address of [fe_addr, fe_addr + len), NULL if not mapped. */
void *vud_mem_map_fe(const struct vud_conn *c, uint64_t fe_addr,
		     uint64_t len)
{
	unsigned int i;

	if (add_overflows(fe_addr, len))
		return NULL;
	for (i = 0; i < c->mem.nregions; i++) {
		const struct vud_region *r = &c->mem.r[i];

		if (fe_addr >= r->fe_addr &&
		    fe_addr + len <= r->fe_addr + r->size)
			return r->map + r->mmap_offset + (fe_addr - r->fe_addr);
	}
	return NULL;
}

/* Does the log hold a bit for every guest page below gpa_end? */
bool vud_log_covers(const struct vud_conn *c, uint64_t gpa_end)
{
	/* the byte holding the bit of the last page, plus one */
	uint64_t need = gpa_end ? (gpa_end - 1) / (VUD_LOG_PAGE * 8) + 1 : 0;

	return c->log && need <= c->log_len - c->log_off;
}

bool vud_log_covers_mem(const struct vud_conn *c)
{
	unsigned int i;

	for (i = 0; i < c->mem.nregions; i++)
		if (!vud_log_covers(c, c->mem.r[i].gpa + c->mem.r[i].size))
			return false;
	return true;
}

int vud_log_set(struct vud_conn *c, const struct vud_msg *m)
{
	const struct vu_log *l = &m->p.log;
	uint8_t *old = c->log, *map;
	size_t old_len = c->log_len, old_off = c->log_off;
	uint64_t base;
	int rc, fd;

	if (m->size != sizeof(*l) || c->nfds != 1 || !l->mmap_size ||
	    l->mmap_size > VUD_LOG_MAX || l->mmap_offset > VUD_LOG_MAX) {
		vud_log("SET_LOG_BASE: bad log (%u bytes, %u fds)", m->size,
			c->nfds);
		return -EINVAL;
	}
	fd = c->fds[0];
	rc = check_shareable(fd, l->mmap_offset + l->mmap_size, "SET_LOG_BASE");
	if (rc)
		return rc;
	map = map_shared(fd, l->mmap_offset + l->mmap_size, "SET_LOG_BASE");
	if (!map)
		return -EINVAL;
	c->log = map;
	c->log_len = l->mmap_offset + l->mmap_size;
	c->log_off = l->mmap_offset;
	if (logging(c) && (!vud_log_covers_mem(c) || !vud_vqs_log_ok(c))) {
		vud_log("SET_LOG_BASE: the log is too small for the memory");
		rc = -EINVAL;
		goto restore;
	}
	base = (uintptr_t)(map + l->mmap_offset);
	rc = VUD_IOCTL(c, VHOST_SET_LOG_BASE, &base);
	if (rc)
		goto restore;
	/* the kernel switched under its vq mutexes: the old log is unused */
	if (old)
		munmap(old, old_len);
	return 0;

restore:
	munmap(map, l->mmap_offset + l->mmap_size);
	c->log = old;
	c->log_len = old_len;
	c->log_off = old_off;
	return rc;
}

void vud_log_free(struct vud_conn *c)
{
	if (c->log)
		munmap(c->log, c->log_len);
	c->log = NULL;
	c->log_len = 0;
	c->log_off = 0;
}
