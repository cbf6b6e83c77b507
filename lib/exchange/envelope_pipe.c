/*
 * The envelope hashing pipeline: record leaf hashes computed on a helper
 * thread (and on the calling thread when it would otherwise wait), folded
 * in order into the body hash.  See envelope_private.h.
 *
 * The helper never touches keys, plaintext or the error state: it only
 * reads stored (encrypted) record bytes and writes their leaf hash.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <pthread.h>
#include <string.h>

#include "envelope_private.h"

typedef struct slot {
	unsigned char *buf;        /* slot_bytes */
	const unsigned char *data; /* the record to hash */
	size_t len;
	unsigned char leaf[FDN_ENV__HASH_BYTES];
	bool hashed;
} slot;

struct fdn_env__pipe {
	pthread_mutex_t mu;
	pthread_cond_t work; /* a record was queued, or stop */
	pthread_cond_t done; /* a record was hashed */
	pthread_t thread;
	bool want_thread, started, stop;
	/* Sequence numbers: records submitted, handed to a hasher, folded. */
	uint64_t submitted, claimed, folded;
	crypto_generichash_blake2b_state body;
	unsigned int n_slots;
	slot slots[FDN_ENV__SLOTS_MAX];
};

static void hash_record(slot *s)
{
	crypto_generichash_blake2b_salt_personal(s->leaf, sizeof(s->leaf), s->data,
		s->len, NULL, 0, NULL, (const unsigned char *)FDN_ENV__PERSONAL_RECORD);
}

/* Hashes the oldest unclaimed record; called and returns with mu held. */
static void hash_one(fdn_env__pipe *p)
{
	slot *s = &p->slots[p->claimed++ % p->n_slots];

	pthread_mutex_unlock(&p->mu);
	hash_record(s);
	pthread_mutex_lock(&p->mu);
	s->hashed = true;
	pthread_cond_broadcast(&p->done);
}

/* Folds the leaves that are ready, in order, freeing their slots. */
static void fold(fdn_env__pipe *p)
{
	while (p->folded < p->submitted) {
		slot *s = &p->slots[p->folded % p->n_slots];
		if (!s->hashed)
			break;
		crypto_generichash_blake2b_update(&p->body, s->leaf, sizeof(s->leaf));
		s->hashed = false;
		p->folded++;
	}
}

static void *helper(void *arg)
{
	fdn_env__pipe *p = arg;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->stop && p->claimed == p->submitted)
			pthread_cond_wait(&p->work, &p->mu);
		if (p->stop)
			break; /* finished, or given up on failure */
		hash_one(p);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int fdn_env__pipe_new(fdn_env__pipe **out, size_t slot_bytes, unsigned int n_slots,
	unsigned int threads)
{
	fdn_env__pipe *p = fdn__calloc(1, sizeof(*p));

	*out = NULL;
	if (!p)
		return fdn__error_oom();
	p->n_slots = n_slots < 2 ? 2 : n_slots > FDN_ENV__SLOTS_MAX ? FDN_ENV__SLOTS_MAX : n_slots;
	for (unsigned int i = 0; i < p->n_slots; i++) {
		if (!(p->slots[i].buf = fdn__malloc(slot_bytes))) {
			for (unsigned int j = 0; j < i; j++)
				fdn__free(p->slots[j].buf);
			fdn__free(p);
			return fdn__error_oom();
		}
	}
	if (pthread_mutex_init(&p->mu, NULL) != 0 || pthread_cond_init(&p->work, NULL) != 0 ||
	    pthread_cond_init(&p->done, NULL) != 0) {
		for (unsigned int i = 0; i < p->n_slots; i++)
			fdn__free(p->slots[i].buf);
		fdn__free(p);
		return fdn__error_set(FDN_ERROR, FDN_ERRCLASS_OS,
			"cannot create the envelope pipeline's lock");
	}
	crypto_generichash_blake2b_init_salt_personal(&p->body, NULL, 0,
		FDN_ENV__HASH_BYTES, NULL, (const unsigned char *)FDN_ENV__PERSONAL_BODY);
	p->want_thread = threads != 1;
	*out = p;
	return 0;
}

unsigned char *fdn_env__pipe_next(fdn_env__pipe *p)
{
	pthread_mutex_lock(&p->mu);
	for (;;) {
		fold(p);
		if (p->submitted - p->folded < p->n_slots)
			break;
		/* The ring is full: help rather than wait. */
		if (p->claimed < p->submitted)
			hash_one(p);
		else
			pthread_cond_wait(&p->done, &p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	return p->slots[p->submitted % p->n_slots].buf;
}

void fdn_env__pipe_submit(fdn_env__pipe *p, const unsigned char *data, size_t len)
{
	slot *s = &p->slots[p->submitted % p->n_slots];

	pthread_mutex_lock(&p->mu);
	s->data = data;
	s->len = len;
	s->hashed = false;
	p->submitted++;
	/* Small envelopes (one record) never pay for a thread. */
	if (p->want_thread && !p->started && p->submitted >= 2) {
		if (pthread_create(&p->thread, NULL, helper, p) == 0)
			p->started = true;
		else
			p->want_thread = false; /* fall back to the calling thread */
	}
	if (p->started)
		pthread_cond_signal(&p->work);
	else
		hash_one(p);
	pthread_mutex_unlock(&p->mu);
}

void fdn_env__pipe_finish(fdn_env__pipe *p, unsigned char hash[FDN_ENV__HASH_BYTES])
{
	pthread_mutex_lock(&p->mu);
	for (;;) {
		fold(p);
		if (p->folded == p->submitted)
			break;
		if (p->claimed < p->submitted)
			hash_one(p);
		else
			pthread_cond_wait(&p->done, &p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	crypto_generichash_blake2b_final(&p->body, hash, FDN_ENV__HASH_BYTES);
}

void fdn_env__pipe_free(fdn_env__pipe *p)
{
	if (!p)
		return;
	if (p->started) {
		pthread_mutex_lock(&p->mu);
		p->stop = true;
		pthread_cond_signal(&p->work);
		pthread_mutex_unlock(&p->mu);
		pthread_join(p->thread, NULL);
	}
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->done);
	/* Slots only ever hold stored, encrypted bytes. */
	for (unsigned int i = 0; i < p->n_slots; i++)
		fdn__free(p->slots[i].buf);
	sodium_memzero(p, sizeof(*p));
	fdn__free(p);
}
