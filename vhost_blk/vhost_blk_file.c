// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk: regular file backend, for raw images without a loop device.
 * Reads and writes are kiocbs on the guest's iovecs, through
 * vfs_iocb_iter_read()/write(): direct I/O (asynchronous, ki_complete)
 * when the file system supports O_DIRECT and the segments are aligned for
 * it, buffered and synchronous otherwise. FLUSH is an fsync, DISCARD and
 * WRITE_ZEROES are fallocate calls; those run on the module's workqueue.
 */
#include <linux/fs.h>
#include <linux/falloc.h>
#include <linux/slab.h>
#include <linux/uio.h>
#include "vhost_blk.h"
#include "compat.h"

int vhost_blk_file_open(struct vhost_blk_backend *be)
{
	struct inode *inode = file_inode(be->file);
	struct block_device *sb_bdev = inode->i_sb->s_bdev;

	be->capacity = i_size_read(inode) >> SECTOR_SHIFT;
	be->lbs = SECTOR_SIZE;
	be->pbs = PAGE_SIZE;
	be->align_mask = SECTOR_SIZE - 1;
	be->direct = be->file->f_mode & FMODE_CAN_ODIRECT;
	if (sb_bdev && be->direct) {
		/* Direct I/O must respect the device's alignment. */
		be->lbs = bdev_logical_block_size(sb_bdev);
		be->align_mask |= (be->lbs - 1) | bdev_dma_alignment(sb_bdev);
	}
	be->ro |= IS_RDONLY(inode);
	if (be->file->f_op->fallocate) {
		be->max_discard_sectors = VHOST_BLK_DISCARD_SECTORS;
		be->max_wz_sectors = VHOST_BLK_WZ_SECTORS;
		be->discard_granularity = inode->i_sb->s_blocksize;
	}
	return 0;
}

static void vhost_blk_file_done(struct vhost_blk_req *req, long ret)
{
	if (ret == req->len) {
		req->status = VIRTIO_BLK_S_OK;
		if (req->type == VIRTIO_BLK_T_IN)
			req->written = req->len;
	} else {
		vhost_blk_warn("file %s at %llu: %ld\n",
			       req->type == VIRTIO_BLK_T_IN ? "read" : "write",
			       req->iocb.ki_pos, ret);
		req->status = VIRTIO_BLK_S_IOERR;
	}
	vhost_blk_req_done(req);
}

/* ki_complete: an asynchronous write still holds the fs write access. */
static void vhost_blk_file_complete(struct kiocb *iocb, long ret)
{
	struct vhost_blk_req *req = container_of(iocb, struct vhost_blk_req,
						 iocb);

	if (req->type == VIRTIO_BLK_T_OUT)
		kiocb_end_write(iocb);
	vhost_blk_file_done(req, ret);
}

/*
 * Through the vfs helpers, so the file's mode, rw_verify_area(), the LSM
 * and fsnotify hooks apply as for any read or write.
 */
static ssize_t vhost_blk_file_issue(struct vhost_blk_req *req, bool direct)
{
	struct file *file = req->be->file;
	bool write = req->type == VIRTIO_BLK_T_OUT;
	struct iov_iter iter;

	iov_iter_init(&iter, write ? ITER_SOURCE : ITER_DEST, req->iov,
		      req->ndata, req->len);
	init_sync_kiocb(&req->iocb, file);
	req->iocb.ki_pos = req->sector << SECTOR_SHIFT;
	req->iocb.ki_complete = vhost_blk_file_complete;
	if (direct)
		req->iocb.ki_flags |= IOCB_DIRECT;
	else
		req->iocb.ki_flags &= ~IOCB_DIRECT;
	if (write) {
		req->iocb.ki_flags |= IOCB_WRITE;
		return vhost_blk_iocb_write(file, &req->iocb, &iter);
	}
	return vfs_iocb_iter_read(file, &req->iocb, &iter);
}

static void vhost_blk_file_rw(struct vhost_blk_req *req)
{
	/* Segments off the alignment of direct I/O: the page cache. */
	bool direct = req->be->direct && !req->bounce;
	ssize_t ret;

	/* The iovecs point into vq->iov: keep our own copy while in flight. */
	if (vhost_blk_req_own_iov(req)) {
		req->status = VIRTIO_BLK_S_IOERR;
		vhost_blk_req_done(req);
		return;
	}
	ret = vhost_blk_file_issue(req, direct);
	/* Some file systems refuse direct I/O for this range: buffered. */
	if (ret == -EINVAL && direct)
		ret = vhost_blk_file_issue(req, false);
	if (ret != -EIOCBQUEUED)
		vhost_blk_file_done(req, ret);
}

static int vhost_blk_file_ranges(struct vhost_blk_req *req)
{
	struct file *file = req->be->file;
	unsigned int i;
	int r = 0;

	for (i = 0; i < req->nranges && !r; i++) {
		const struct vhost_blk_range *rg = &req->ranges[i];
		loff_t off = rg->sector << SECTOR_SHIFT;
		loff_t len = (loff_t)rg->nsect << SECTOR_SHIFT;
		int punch = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;

		if (!len)
			continue;
		if (req->type == VIRTIO_BLK_T_WRITE_ZEROES && !rg->unmap) {
			r = vfs_fallocate(file, FALLOC_FL_ZERO_RANGE |
					  FALLOC_FL_KEEP_SIZE, off, len);
			if (r != -EOPNOTSUPP)
				continue;
		}
		/* A punched hole reads back as zeroes. */
		r = vfs_fallocate(file, punch, off, len);
	}
	return r;
}

/*
 * fsync and fallocate block: run them off the worker, so that the other
 * virtqueues it serves go on meanwhile. They need no guest memory.
 */
static void vhost_blk_file_sync_fn(struct work_struct *work)
{
	struct vhost_blk_req *req = container_of(work, struct vhost_blk_req,
						 sync_work);
	int r;

	if (req->type == VIRTIO_BLK_T_FLUSH)
		r = vfs_fsync(req->be->file, 0);
	else
		r = vhost_blk_file_ranges(req);
	if (r)
		vhost_blk_warn("file request %u: %d\n", req->type, r);
	req->status = r ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
	vhost_blk_req_done(req);	/* req may be gone from here on */
}

void vhost_blk_file_submit(struct vhost_blk_req *req)
{
	if (req->type == VIRTIO_BLK_T_IN || req->type == VIRTIO_BLK_T_OUT) {
		vhost_blk_file_rw(req);
		return;
	}
	INIT_WORK(&req->sync_work, vhost_blk_file_sync_fn);
	queue_work(vhost_blk_wq, &req->sync_work);
}
