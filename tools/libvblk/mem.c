// SPDX-License-Identifier: GPL-2.0
/*
 * Guest memory: one memfd (so a vhost-user peer can map it too), mapped
 * shared, handed out in whole pages by a first-fit page allocator. Guest
 * physical addresses start at gpa_base, which is not 0 so that a zero
 * address in a descriptor is always outside guest memory.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vblk_int.h"

#define VBLK_GPA_BASE	0x100000ULL

int vblk_mem_init(struct vblk_mem *mem, size_t size)
{
	int rc;

	memset(mem, 0, sizeof(*mem));
	mem->fd = -1;
	size = (size + VBLK_PAGE - 1) & ~(VBLK_PAGE - 1);
	mem->fd = memfd_create("vblk-guest", MFD_CLOEXEC);
	if (mem->fd < 0)
		return -errno;
	if (ftruncate(mem->fd, size) < 0)
		goto fail_errno;
	mem->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED,
			 mem->fd, 0);
	if (mem->base == MAP_FAILED) {
		mem->base = NULL;
		goto fail_errno;
	}
	mem->size = size;
	mem->gpa_base = VBLK_GPA_BASE;
	mem->npages = size / VBLK_PAGE;
	mem->run = calloc(mem->npages, sizeof(*mem->run));
	mem->used = calloc(mem->npages, 1);
	if (!mem->run || !mem->used) {
		errno = ENOMEM;
		goto fail_errno;
	}
	pthread_mutex_init(&mem->lock, NULL);
	return 0;

fail_errno:
	rc = -errno;
	vblk_mem_fini(mem);
	return rc;
}

void vblk_mem_fini(struct vblk_mem *mem)
{
	if (mem->run && mem->used)
		pthread_mutex_destroy(&mem->lock);
	free(mem->run);
	free(mem->used);
	if (mem->base)
		munmap(mem->base, mem->size);
	if (mem->fd >= 0)
		close(mem->fd);
	memset(mem, 0, sizeof(*mem));
	mem->fd = -1;
}

static long find_run(const struct vblk_mem *mem, size_t pages)
{
	size_t p = 0, len = 0;

	for (p = 0; p < mem->npages; p++) {
		len = mem->used[p] ? 0 : len + 1;
		if (len == pages)
			return (long)(p + 1 - pages);
	}
	return -1;
}

void *vblk_mem_alloc(struct vblk_dev *dev, size_t size)
{
	struct vblk_mem *mem = &dev->mem;
	size_t pages = (size + VBLK_PAGE - 1) / VBLK_PAGE;
	long first;

	if (!pages)
		pages = 1;
	pthread_mutex_lock(&mem->lock);
	first = find_run(mem, pages);
	if (first >= 0) {
		memset(mem->used + first, 1, pages);
		mem->run[first] = pages;
	}
	pthread_mutex_unlock(&mem->lock);
	if (first < 0) {
		errno = ENOMEM;
		return NULL;
	}
	return memset(mem->base + first * VBLK_PAGE, 0, pages * VBLK_PAGE);
}

void vblk_mem_free(struct vblk_dev *dev, void *p)
{
	struct vblk_mem *mem = &dev->mem;
	size_t off, first;

	if (!p)
		return;
	off = (uint8_t *)p - mem->base;
	if ((uint8_t *)p < mem->base || off >= mem->size || off % VBLK_PAGE)
		abort();	/* not ours: a caller bug, not a device one */
	first = off / VBLK_PAGE;
	pthread_mutex_lock(&mem->lock);
	if (!mem->run[first]) {
		pthread_mutex_unlock(&mem->lock);
		abort();
	}
	memset(mem->used + first, 0, mem->run[first]);
	mem->run[first] = 0;
	pthread_mutex_unlock(&mem->lock);
}

uint64_t vblk_gpa(const struct vblk_dev *dev, const void *p)
{
	const struct vblk_mem *mem = &dev->mem;
	const uint8_t *b = p;

	if (b < mem->base || b >= mem->base + mem->size)
		return UINT64_MAX;
	return mem->gpa_base + (uint64_t)(b - mem->base);
}

void *vblk_hva(const struct vblk_dev *dev, uint64_t gpa, size_t len)
{
	const struct vblk_mem *mem = &dev->mem;

	if (gpa < mem->gpa_base || gpa - mem->gpa_base > mem->size ||
	    len > mem->size - (gpa - mem->gpa_base))
		return NULL;
	return mem->base + (gpa - mem->gpa_base);
}
