#ifndef TERN_IMAP_SORT_H
#define TERN_IMAP_SORT_H
/* Private to src/imap/ (kept apart from imap_int.h to keep merges of
   parallel work small): SORT, ESORT and THREAD (RFC 5256, RFC 5267,
   RFC 5957); the base subject of RFC 5256 2.1 and the stored keys are
   mime_sort.c's. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imap/imap_int.h"
#include "mime/mime.h"

/* Sort keys in one SORT command (each key name at most once is not
   required by the RFC; this only bounds the list). */
#define IMAP_SORT_KEYS_MAX 16
/* References kept per message for THREAD=REFERENCES (mime_sort.c keeps
   them). */
#define IMAP_THREAD_REFS_MAX MIME_SORT_REFS_MAX
/* Depth of a thread tree (longer reference chains are cut into
   several threads). */
#define IMAP_THREAD_DEPTH_MAX 1000

/* ---- per-message sort data (imap_cmd_sort.c) ---- */
struct imap_sort_msg {
	size_t idx;   /* index in the view (sequence number - 1) */
	uint32_t uid;
	uint64_t size;
	int64_t arrival; /* INTERNALDATE */
	int64_t date;	 /* sent date: Date:, else INTERNALDATE */
	const char *subject; /* base subject (arena) */
	bool reply;
	const char *from, *to, *cc; /* addr-mailbox of the first address */
	const char *dfrom, *dto;    /* RFC 5957 display forms */
	const char *msgid;	    /* "<...>" or NULL */
	char **refs;		    /* References (else In-Reply-To), oldest
				       first */
	size_t nrefs;
};

#define IMAP_SORT_NEED_ADDR 1u
#define IMAP_SORT_NEED_REFS 2u
/* Load the sort data of view messages idx[0..n) into an arena array.
   0, or -1 on a store error. */
int imap_sort_load(struct imap_session *s, struct arena *a,
		   const size_t *idx, size_t n, unsigned need,
		   struct imap_sort_msg **msgs_r);
/* i;ascii-casemap comparison (RFC 4790 9.2) of two NUL-terminated
   strings; NULL sorts as "". */
int imap_sort_strcmp(const char *a, const char *b);

/* The charset argument of SORT and THREAD, then the search criteria
   (parsed by imap_search.c). NULL with the reply set on cmd. */
struct imap_search *imap_sort_criteria(struct imap_session *s,
				       struct imap_cmd *cmd,
				       const struct imap_arg *args,
				       size_t argc);

/* ---- the commands ---- */
imap_cmd_fn imap_cmd_sort, imap_cmd_thread;

/* Run a parsed search over the view: matching indexes, ascending
   (imap_search.c). -1 on a store error. */
int imap_search_match(struct imap_session *s, struct imap_search *se,
		      struct arena *a, size_t **idx_r, size_t *count_r);

#endif
