// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk: block device backend. Guest pages are pinned in the owner's
 * address space (the worker runs in it) and become the bio_vecs of bios
 * submitted straight to the device: one bio per contiguous run of the
 * request (more only when a bio is full), submitted under the caller's
 * plug. req->pending counts the bios plus one submission reference; the
 * last put hands the request to the completion path, which unpins.
 */
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/mm.h>
#include <linux/slab.h>
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

static int vhost_blk_bio_rw(struct vhost_blk_req *req)
{
	struct block_device *bdev = req->be->bdev;
	blk_opf_t opf = req->type == VIRTIO_BLK_T_IN ? REQ_OP_READ :
			REQ_OP_WRITE | REQ_SYNC | REQ_IDLE;
	sector_t sector = req->sector;
	unsigned int npages = 0, pi = 0, i;
	struct bio *bio = NULL;
	int r;

	for (i = 0; i < req->ndata; i++)
		npages += DIV_ROUND_UP(offset_in_page(req->data[i].iov_base) +
				       req->data[i].iov_len, PAGE_SIZE);
	r = vhost_blk_pin(req, npages);
	if (r)
		return r;

	for (i = 0; i < req->ndata; i++) {
		unsigned int off = offset_in_page(req->data[i].iov_base);
		size_t left = req->data[i].iov_len;

		while (left) {
			/* Segments are sector aligned: so is every chunk. */
			unsigned int chunk = min_t(size_t, PAGE_SIZE - off,
						   left);

			if (!bio) {
				bio = bio_alloc(bdev, min_t(unsigned int,
						npages - pi, BIO_MAX_VECS),
						opf, GFP_NOIO);
				bio->bi_iter.bi_sector = sector;
			}
			if (bio_add_page(bio, req->pages[pi], chunk, off) !=
			    chunk) {
				vhost_blk_bio_go(req, bio);
				bio = NULL;
				continue;
			}
			sector += chunk >> SECTOR_SHIFT;
			left -= chunk;
			off = 0;
			pi++;
		}
	}
	if (bio)
		vhost_blk_bio_go(req, bio);
	if (req->type == VIRTIO_BLK_T_IN)
		req->written = req->len;
	return 0;
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
	if (req->npages)
		unpin_user_pages_dirty_lock(req->pages, req->npages,
					    req->type == VIRTIO_BLK_T_IN);
	if (req->pages != req->inline_pages)
		kvfree(req->pages);
}
