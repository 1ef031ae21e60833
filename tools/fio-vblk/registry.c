// SPDX-License-Identifier: GPL-2.0
/*
 * fio-vblk: the devices of this process. fio jobs that run as threads in
 * one process and name the same backend share one device; each job gets
 * its own virtqueue (a queue is driven by one thread only). The list
 * lives only while a job holds a device: the last put frees it, so
 * nothing outlives the fio run.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fio_vblk.h"

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vblk_shared *registry;	/* protected by registry_lock */

static struct vblk_shared *find(const char *key)
{
	struct vblk_shared *s;

	for (s = registry; s; s = s->next)
		if (!strcmp(s->key, key))
			return s;
	return NULL;
}

static int create(const char *backend, const struct vblk_opts *opts,
		  struct vblk_shared **sp, char *err, size_t errlen)
{
	struct vblk_shared *s = calloc(1, sizeof(*s));
	int rc;

	if (!s || !(s->key = strdup(backend))) {
		free(s);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = vblk_open(&s->dev, backend, opts, err, errlen);
	if (rc) {
		free(s->key);
		free(s);
		return rc;
	}
	s->next = registry;
	registry = s;
	*sp = s;
	return 0;
}

int vblk_shared_get(const char *backend, const struct vblk_opts *opts,
		    struct vblk_shared **sp, unsigned int *queue,
		    char *err, size_t errlen)
{
	struct vblk_shared *s;
	int rc = 0;

	pthread_mutex_lock(&registry_lock);
	s = find(backend);
	if (!s)
		rc = create(backend, opts, &s, err, errlen);
	if (!rc && s->next_queue >= vblk_info(s->dev)->num_queues) {
		snprintf(err, errlen,
			 "%s: all %u queues taken: raise vblk_queues to the number of jobs",
			 backend, vblk_info(s->dev)->num_queues);
		rc = -EBUSY;
		s = NULL;
	}
	if (!rc) {
		*queue = s->next_queue++;
		s->refs++;
		*sp = s;
	}
	pthread_mutex_unlock(&registry_lock);
	return rc;
}

void vblk_shared_put(struct vblk_shared *s)
{
	struct vblk_shared **pp;

	pthread_mutex_lock(&registry_lock);
	if (--s->refs) {
		pthread_mutex_unlock(&registry_lock);
		return;
	}
	for (pp = &registry; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	pthread_mutex_unlock(&registry_lock);
	vblk_close(s->dev);
	free(s->key);
	free(s);
}
