// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk: block device backend. Guest pages are pinned in the owner's
 * address space (the worker runs in it) and become the bio_vecs of bios
 * submitted straight to the device: one bio per contiguous run of the
 * request (more only when a bio is full), submitted under the caller's
 * plug. A request with a segment off the device's alignment (address or
 * length not on its logical block size or DMA alignment) is bounced
 * through pages of our own instead, as QEMU does. req->pending counts the
 * bios plus one submission reference; the last put hands the request to
 * the completion path, which unpins (or frees the bounce pages).
 */
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/uio.h>
#include "vhost_blk.h"

int vhost_blk_bio_open(struct vhost_blk_backend *be)
{
	struct block_device *bdev = I_BDEV(be->file->f_mapping->host);

	be->bdev = bdev;
	be->capacity = bdev_nr_sectors(bdev);
	be->lbs = bdev_logical_block_size(bdev);
	be->pbs = bdev_physical_block_size(bdev);
	be->align_mask = (be->lbs - 1) | bdev_dma_alignment(bdev) |
			 (SECTOR_SIZE - 1);
	be->ro |= bdev_read_only(bdev);
	be->max_discard_sectors = min_t(u32, bdev_max_discard_sectors(bdev),
					VHOST_BLK_DISCARD_SECTORS);
	be->discard_granularity = bdev_discard_granularity(bdev);
	/* __blkdev_issue_zeroout() writes zero pages if the device can't. */
	be->max_wz_sectors = VHOST_BLK_WZ_SECTORS;
	return 0;
}

static void vhost_blk_bio_put(struct vhost_blk_req *req)
{
	if (atomic_dec_and_test(&req->pending))
		vhost_blk_req_done(req);
}

static void vhost_blk_bio_end_io(struct bio *bio)
{
	struct vhost_blk_req *req = bio->bi_private;

	if (bio->bi_status)
		WRITE_ONCE(req->status, VIRTIO_BLK_S_IOERR);
	bio_put(bio);
	vhost_blk_bio_put(req);
}

static void vhost_blk_bio_go(struct vhost_blk_req *req, struct bio *bio)
{
	bio->bi_private = req;
	bio->bi_end_io = vhost_blk_bio_end_io;
	atomic_inc(&req->pending);
	submit_bio(bio);
}

/* Pin every data page; the caller unpins req->npages on any outcome. */
static int vhost_blk_pin(struct vhost_blk_req *req, unsigned int npages)
{
	unsigned int gup = req->type == VIRTIO_BLK_T_IN ? FOLL_WRITE : 0;
	unsigned int i;

	req->pages = req->inline_pages;
	if (npages > VHOST_BLK_INLINE_PAGES) {
		req->pages = kvmalloc_array(npages, sizeof(*req->pages),
					    GFP_KERNEL);
		if (!req->pages)
			return -ENOMEM;
	}
	for (i = 0; i < req->ndata; i++) {
		unsigned long addr = (unsigned long)req->data[i].iov_base;
		int n = DIV_ROUND_UP(offset_in_page(addr) +
				     req->data[i].iov_len, PAGE_SIZE);
		int got;

		got = pin_user_pages_fast(addr & PAGE_MASK, n, gup,
					  req->pages + req->npages);
		if (got > 0)
			req->npages += got;
		if (got != n)
			return -EFAULT;
	}
	return 0;
}

/* Bios of a request being built: the current one and where it goes. */
struct vhost_blk_bio_ctx {
	struct bio *bio;
	sector_t sector;
	unsigned int left;	/* pages still to add, this one included */
	blk_opf_t opf;
};

/* Add len bytes at off of page; a full bio goes out and a new one starts. */
static void vhost_blk_bio_add(struct vhost_blk_req *req,
			      struct vhost_blk_bio_ctx *c, struct page *page,
			      unsigned int off, unsigned int len)
{
	for (;;) {
		if (!c->bio) {
			c->bio = bio_alloc(req->be->bdev,
					   min_t(unsigned int, c->left,
						 BIO_MAX_VECS),
					   c->opf, GFP_NOIO);
			c->bio->bi_iter.bi_sector = c->sector;
		}
		if (bio_add_page(c->bio, page, len, off) == len)
			break;
		vhost_blk_bio_go(req, c->bio);
		c->bio = NULL;
	}
	c->sector += len >> SECTOR_SHIFT;
	c->left--;
}

/* Bytes of bounce page i of a request. */
static unsigned int vhost_blk_bounce_len(struct vhost_blk_req *req,
					 unsigned int i)
{
	return min_t(size_t, PAGE_SIZE, req->len - (size_t)i * PAGE_SIZE);
}

/*
 * A request with a segment off the backend's alignment: its data goes
 * through pages of our own, in which every bio_vec is block aligned. OUT
 * copies the guest's data in now (in the worker, the owner's mm); IN
 * copies it out at completion (vhost_blk_bio_copy_out()). The pages count
 * in bvq->bounced until the request is freed. -ENOMEM: the caller gives
 * the request back and retries; -EFAULT: the guest's segments are gone.
 */
int vhost_blk_bio_bounce(struct vhost_blk_req *req)
{
	unsigned int i, n = DIV_ROUND_UP(req->len, PAGE_SIZE);
	struct iov_iter it;

	atomic_add(req->len, &req->bvq->bounced);
	if (vhost_blk_req_own_iov(req))
		return -ENOMEM;
	req->pages = req->inline_pages;
	if (n > VHOST_BLK_INLINE_PAGES) {
		req->pages = kvmalloc_array(n, sizeof(*req->pages), GFP_NOIO);
		if (!req->pages)
			return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		req->pages[i] = alloc_page(GFP_NOIO | __GFP_NOWARN);
		if (!req->pages[i])
			return -ENOMEM;
		req->npages++;
	}
	if (req->type != VIRTIO_BLK_T_OUT)
		return 0;
	iov_iter_init(&it, ITER_SOURCE, req->iov, req->ndata, req->len);
	for (i = 0; i < n; i++) {
		unsigned int l = vhost_blk_bounce_len(req, i);

		if (copy_page_from_iter(req->pages[i], 0, l, &it) != l)
			return -EFAULT;
	}
	return 0;
}

/* IN through bounce pages: the data into the guest's segments. */
int vhost_blk_bio_copy_out(struct vhost_blk_req *req)
{
	struct iov_iter it;
	unsigned int i;

	iov_iter_init(&it, ITER_DEST, req->iov, req->ndata, req->len);
	for (i = 0; i < req->npages; i++) {
		unsigned int l = vhost_blk_bounce_len(req, i);

		if (copy_page_to_iter(req->pages[i], 0, l, &it) != l)
			return -EFAULT;
	}
	return 0;
}

/* The guest's own pages, pinned: one bio_vec per page of a segment. */
static int vhost_blk_bio_direct(struct vhost_blk_req *req,
				struct vhost_blk_bio_ctx *c)
{
	unsigned int npages = 0, pi = 0, i;
	int r;

	for (i = 0; i < req->ndata; i++)
		npages += DIV_ROUND_UP(offset_in_page(req->data[i].iov_base) +
				       req->data[i].iov_len, PAGE_SIZE);
	r = vhost_blk_pin(req, npages);
	if (r)
		return r;
	c->left = npages;
	for (i = 0; i < req->ndata; i++) {
		unsigned int off = offset_in_page(req->data[i].iov_base);
		size_t left = req->data[i].iov_len;

		while (left) {
			/* Segments are block aligned: so is every chunk. */
			unsigned int chunk = min_t(size_t, PAGE_SIZE - off,
						   left);

			vhost_blk_bio_add(req, c, req->pages[pi++], off, chunk);
			left -= chunk;
			off = 0;
		}
	}
	return 0;
}

static int vhost_blk_bio_rw(struct vhost_blk_req *req)
{
	struct vhost_blk_bio_ctx c = {
		.sector = req->sector,
		.opf = req->type == VIRTIO_BLK_T_IN ? REQ_OP_READ :
		       REQ_OP_WRITE | REQ_SYNC | REQ_IDLE,
	};
	unsigned int i;
	int r = 0;

	if (req->bounce) {
		c.left = req->npages;
		for (i = 0; i < req->npages; i++)
			vhost_blk_bio_add(req, &c, req->pages[i], 0,
					  vhost_blk_bounce_len(req, i));
	} else {
		r = vhost_blk_bio_direct(req, &c);
	}
	if (c.bio)
		vhost_blk_bio_go(req, c.bio);
	if (!r && req->type == VIRTIO_BLK_T_IN)
		req->written = req->len;
	return r;
}

static int vhost_blk_bio_flush(struct vhost_blk_req *req)
{
	struct bio *bio = bio_alloc(req->be->bdev, 0,
				    REQ_OP_WRITE | REQ_PREFLUSH, GFP_NOIO);

	vhost_blk_bio_go(req, bio);
	return 0;
}

static int vhost_blk_bio_ranges(struct vhost_blk_req *req)
{
	struct block_device *bdev = req->be->bdev;
	unsigned int i;
	int r = 0;

	for (i = 0; i < req->nranges && !r; i++) {
		const struct vhost_blk_range *rg = &req->ranges[i];
		struct bio *bio = NULL;

		if (!rg->nsect)
			continue;
		if (req->type == VIRTIO_BLK_T_DISCARD)
			r = __blkdev_issue_discard(bdev, rg->sector, rg->nsect,
						   GFP_NOIO, &bio);
		else
			r = __blkdev_issue_zeroout(bdev, rg->sector, rg->nsect,
						   GFP_NOIO, &bio, rg->unmap ?
						   0 : BLKDEV_ZERO_NOUNMAP);
		/* A chain already built must run to its end either way. */
		if (bio)
			vhost_blk_bio_go(req, bio);
	}
	return r;
}

void vhost_blk_bio_submit(struct vhost_blk_req *req)
{
	int r = 0;

	atomic_set(&req->pending, 1);
	switch (req->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		r = vhost_blk_bio_rw(req);
		break;
	case VIRTIO_BLK_T_FLUSH:
		r = vhost_blk_bio_flush(req);
		break;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		r = vhost_blk_bio_ranges(req);
		break;
	}
	if (r) {
		vhost_blk_warn("submission failed: %d\n", r);
		WRITE_ONCE(req->status, VIRTIO_BLK_S_IOERR);
	}
	vhost_blk_bio_put(req);
}

/* From the completion path: every bio has ended. */
void vhost_blk_bio_release(struct vhost_blk_req *req)
{
	unsigned int i;

	if (req->bounce) {
		for (i = 0; i < req->npages; i++)
			__free_page(req->pages[i]);
		atomic_sub(req->len, &req->bvq->bounced);
	} else if (req->npages) {
		unpin_user_pages_dirty_lock(req->pages, req->npages,
					    req->type == VIRTIO_BLK_T_IN);
	}
	if (req->pages && req->pages != req->inline_pages)
		kvfree(req->pages);
}
