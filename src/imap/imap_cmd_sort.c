/* SORT and UID SORT (RFC 5256 3 and 4), their sort keys ARRIVAL, CC,
   DATE, FROM, REVERSE, SIZE, SUBJECT, TO (RFC 5256 3) and DISPLAYFROM,
   DISPLAYTO (RFC 5957 3), ESORT (RFC 5267 3: SORT RETURN (MIN MAX COUNT
   ALL) answered with ESEARCH), and the per-message sort data that
   THREAD (imap_thread.c) shares.
   Strings compare with i;ascii-casemap (RFC 4790 9.2). Messages that
   compare equal keep mailbox order (RFC 5256 3). The sent date is the
   Date: header in UTC, or INTERNALDATE when it is missing or does not
   parse (RFC 5256 2.2). The address keys use the first address of the
   field as ENVELOPE has it (a group's name when the field starts with
   a group, RFC 5256 3, RFC 5957 3); a missing field sorts as "". The keys
   are computed when a message is stored (mime_sort.c) and read for the
   whole mailbox in one query (store_msg_sort_keys). The search
   criteria are parsed and run by imap_search.c. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_sort.h"
#include "lib/conn.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "mime/mime.h"
#include "store/store.h"

enum imap_sort_key {
	IMAP_SORT_ARRIVAL,
	IMAP_SORT_CC,
	IMAP_SORT_DATE,
	IMAP_SORT_FROM,
	IMAP_SORT_SIZE,
	IMAP_SORT_SUBJECT,
	IMAP_SORT_TO,
	IMAP_SORT_DISPLAYFROM,
	IMAP_SORT_DISPLAYTO,
};

static const struct {
	const char *name;
	enum imap_sort_key key;
} imap_sort_names[] = {
	{ "ARRIVAL", IMAP_SORT_ARRIVAL },
	{ "CC", IMAP_SORT_CC },
	{ "DATE", IMAP_SORT_DATE },
	{ "FROM", IMAP_SORT_FROM },
	{ "SIZE", IMAP_SORT_SIZE },
	{ "SUBJECT", IMAP_SORT_SUBJECT },
	{ "TO", IMAP_SORT_TO },
	{ "DISPLAYFROM", IMAP_SORT_DISPLAYFROM },
	{ "DISPLAYTO", IMAP_SORT_DISPLAYTO },
};

struct imap_sort_crit {
	enum imap_sort_key key;
	bool reverse;
};

struct imap_sort_spec {
	struct imap_sort_crit c[IMAP_SORT_KEYS_MAX];
	size_t n;
};

int
imap_sort_strcmp(const char *a, const char *b)
{
	const unsigned char *x = (const unsigned char *)(a ? a : "");
	const unsigned char *y = (const unsigned char *)(b ? b : "");

	for (;; x++, y++) {
		unsigned cx = *x >= 'a' && *x <= 'z' ? *x - 32u : *x;
		unsigned cy = *y >= 'a' && *y <= 'z' ? *y - 32u : *y;

		if (cx != cy)
			return cx < cy ? -1 : 1;
		if (cx == 0)
			return 0;
	}
}

/* ---- per-message data ---- */

/* Split the stored "<a> <b> ..." into m->refs (arena). */
static void
imap_sort_split_refs(struct arena *a, const char *refs,
		     struct imap_sort_msg *m)
{
	const char *p;
	size_t n = 1, k = 0;

	if (refs == NULL || *refs == '\0')
		return;
	for (p = refs; *p != '\0'; p++)
		n += *p == ' ';
	m->refs = arena_alloc(a, n * sizeof(char *));
	for (p = refs; *p != '\0' && k < n;) {
		const char *e = strchr(p, ' ');
		size_t len = e == NULL ? strlen(p) : (size_t)(e - p);

		if (len > 0)
			m->refs[k++] = arena_strndup(a, p, len);
		p += len;
		if (*p == ' ')
			p++;
	}
	m->nrefs = k;
}

static const struct store_sort_msg *
imap_sort_find(const struct store_sort_msg *msgs, size_t n, uint32_t uid)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (msgs[mid].uid == uid)
			return &msgs[mid];
		if (msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static void
imap_sort_fill(struct arena *a, const struct store_sort_msg *sm,
	       struct imap_sort_msg *m)
{
	m->size = sm->size;
	m->arrival = sm->internaldate;
	/* RFC 5256 2.2: the sent date, else INTERNALDATE */
	m->date = sm->date >= 0 ? sm->date : sm->internaldate;
	m->subject = sm->subject;
	m->reply = sm->reply;
	m->from = sm->from;
	m->to = sm->to;
	m->cc = sm->cc;
	m->dfrom = sm->dfrom;
	m->dto = sm->dto;
	m->msgid = sm->msgid;
	imap_sort_split_refs(a, sm->refs, m);
}

int
imap_sort_load(struct imap_session *s, struct arena *a, const size_t *idx,
	       size_t n, unsigned need, struct imap_sort_msg **msgs_r)
{
	struct imap_view *v = s->view;
	struct store_sort_msg *sms = NULL;
	struct imap_sort_msg *out;
	unsigned sneed = 0;
	size_t nsms = 0, i;

	out = arena_zalloc(a, (n + 1) * sizeof(*out));
	*msgs_r = out;
	if (need & IMAP_SORT_NEED_ADDR)
		sneed |= STORE_SORT_NEED_ADDR;
	if (need & IMAP_SORT_NEED_REFS)
		sneed |= STORE_SORT_NEED_REFS;
	/* The keys were stored with each message: one query for all. */
	if (n > 0 && store_msg_sort_keys(s->env->store, v->mailbox_id, sneed,
					 a, &sms, &nsms) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		const struct store_sort_msg *sm;

		out[i].idx = idx[i];
		out[i].uid = v->msgs[idx[i]].uid;
		out[i].subject = "";
		sm = imap_sort_find(sms, nsms, out[i].uid);
		if (sm != NULL)
			imap_sort_fill(a, sm, &out[i]);
	}
	return 0;
}

/* ---- SORT ---- */

static int
imap_sort_cmp_num(int64_t a, int64_t b)
{
	return a < b ? -1 : a > b;
}

static int
imap_sort_cmp_key(const struct imap_sort_msg *a, const struct imap_sort_msg *b,
		  enum imap_sort_key key)
{
	switch (key) {
	case IMAP_SORT_ARRIVAL:
		return imap_sort_cmp_num(a->arrival, b->arrival);
	case IMAP_SORT_DATE:
		return imap_sort_cmp_num(a->date, b->date);
	case IMAP_SORT_SIZE:
		return a->size < b->size ? -1 : a->size > b->size;
	case IMAP_SORT_CC:
		return imap_sort_strcmp(a->cc, b->cc);
	case IMAP_SORT_FROM:
		return imap_sort_strcmp(a->from, b->from);
	case IMAP_SORT_TO:
		return imap_sort_strcmp(a->to, b->to);
	case IMAP_SORT_SUBJECT:
		return imap_sort_strcmp(a->subject, b->subject);
	case IMAP_SORT_DISPLAYFROM:
		return imap_sort_strcmp(a->dfrom, b->dfrom);
	case IMAP_SORT_DISPLAYTO:
		return imap_sort_strcmp(a->dto, b->dto);
	}
	return 0;
}

static int
imap_sort_cmp(const void *x, const void *y, void *ctx)
{
	const struct imap_sort_msg *a = x, *b = y;
	const struct imap_sort_spec *spec = ctx;
	size_t i;
	int c;

	for (i = 0; i < spec->n; i++) {
		c = imap_sort_cmp_key(a, b, spec->c[i].key);
		if (c != 0)
			return spec->c[i].reverse ? -c : c;
	}
	/* RFC 5256 3: equal messages stay in mailbox order; REVERSE does
	   not apply to this tie-break. */
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static int
imap_sort_parse_keys(const struct imap_arg *list, struct imap_sort_spec *spec,
		     unsigned *need_r)
{
	bool reverse = false;
	size_t i, k;

	spec->n = 0;
	*need_r = 0;
	if (list->type != IMAP_ARG_LIST || list->count == 0)
		return -1;
	for (i = 0; i < list->count; i++) {
		const struct imap_arg *a = &list->list[i];

		if (imap_arg_is_atom(a, "REVERSE") && !reverse) {
			reverse = true;
			continue;
		}
		for (k = 0; k < sizeof(imap_sort_names) /
					sizeof(imap_sort_names[0]); k++) {
			if (imap_arg_is_atom(a, imap_sort_names[k].name))
				break;
		}
		if (k == sizeof(imap_sort_names) / sizeof(imap_sort_names[0]) ||
		    spec->n == IMAP_SORT_KEYS_MAX)
			return -1;
		spec->c[spec->n].key = imap_sort_names[k].key;
		spec->c[spec->n++].reverse = reverse;
		if (imap_sort_names[k].key != IMAP_SORT_ARRIVAL &&
		    imap_sort_names[k].key != IMAP_SORT_DATE &&
		    imap_sort_names[k].key != IMAP_SORT_SIZE &&
		    imap_sort_names[k].key != IMAP_SORT_SUBJECT)
			*need_r |= IMAP_SORT_NEED_ADDR;
		reverse = false;
	}
	return reverse ? -1 : 0;
}

/* ESORT (RFC 5267 3.2) takes the ESEARCH return options; SAVE (RFC
   5182 with SORT) is not supported. */
static int
imap_sort_parse_return(const struct imap_arg *list, unsigned *opts_r)
{
	if (list->type != IMAP_ARG_LIST || imap_search_return(list, opts_r) < 0)
		return -1;
	return (*opts_r & IMAP_ESEARCH_SAVE) != 0 ? -1 : 0;
}

struct imap_search *
imap_sort_criteria(struct imap_session *s, struct imap_cmd *cmd,
		   const struct imap_arg *args, size_t argc)
{
	struct imap_search *se;
	const char *error = NULL;
	bool no;

	if (argc < 2 || !imap_arg_is_astring(&args[0])) {
		imap_cmd_bad(cmd, "BAD Missing charset or search criteria.");
		return NULL;
	}
	if (strcasecmp(args[0].str, "UTF-8") != 0 &&
	    strcasecmp(args[0].str, "US-ASCII") != 0) {
		imap_cmd_no(cmd, "NO [BADCHARSET (UTF-8 US-ASCII)] "
				 "Unsupported charset.");
		return NULL;
	}
	se = imap_search_parse(s, cmd->arena, args + 1, argc - 1, &error, &no);
	if (se == NULL) {
		imap_cmd_reply(cmd, "%s", error);
		cmd->bad = !no;
	}
	return se;
}

static void
imap_sort_output(struct imap_session *s, struct imap_cmd *cmd,
		 const struct imap_sort_msg *m, size_t n, unsigned opts,
		 bool esort)
{
	struct buf b;
	uint32_t *nums;
	size_t i;

	nums = arena_alloc(cmd->arena, (n + 1) * sizeof(*nums));
	for (i = 0; i < n; i++)
		nums[i] = cmd->uid ? m[i].uid : (uint32_t)m[i].idx + 1;
	buf_init(&b, CONN_OUTPUT_MAX_BYTES / 2);
	if (!esort) {
		(void)buf_append_str(&b, "* SORT");
		for (i = 0; i < n; i++)
			(void)buf_printf(&b, " %u", nums[i]);
	} else {
		/* RFC 5267 3.2: MIN/MAX are the first/last in sort order,
		   which is how the writer reads nums */
		imap_esearch_write(&b, cmd, opts, nums, n);
	}
	(void)buf_append_str(&b, "\r\n");
	imap_session_write(s, b.data, b.len);
	buf_free(&b);
}

enum imap_cmd_res
imap_cmd_sort(struct imap_session *s, struct imap_cmd *cmd)
{
	const struct imap_arg *args = cmd->args;
	size_t argc = cmd->argc, *idx = NULL, n = 0;
	struct imap_sort_spec spec;
	struct imap_sort_msg *msgs;
	struct imap_search *se;
	unsigned need, opts = 0;
	bool esort = false;

	if (argc >= 2 && imap_arg_is_atom(&args[0], "RETURN")) {
		if (imap_sort_parse_return(&args[1], &opts) < 0) {
			imap_cmd_bad(cmd, "BAD Invalid RETURN options.");
			return IMAP_CMD_DONE;
		}
		esort = true;
		args += 2;
		argc -= 2;
	}
	if (argc < 1 || imap_sort_parse_keys(&args[0], &spec, &need) < 0) {
		imap_cmd_bad(cmd, "BAD Invalid sort criteria.");
		return IMAP_CMD_DONE;
	}
	se = imap_sort_criteria(s, cmd, args + 1, argc - 1);
	if (se == NULL)
		return IMAP_CMD_DONE;
	if (imap_search_match(s, se, cmd->arena, &idx, &n) < 0 ||
	    imap_sort_load(s, cmd->arena, idx, n, need, &msgs) < 0) {
		log_error("imap", s->id, "sort-failed error=%s",
			  store_last_error(s->env->store));
		imap_cmd_no(cmd, "NO [UNAVAILABLE] Internal error, try again "
				 "later.");
		return IMAP_CMD_DONE;
	}
	qsort_r(msgs, n, sizeof(*msgs), imap_sort_cmp, &spec);
	imap_sort_output(s, cmd, msgs, n, opts, esort);
	imap_cmd_ok(cmd, esort ? "OK Sort completed (ESORT)."
			       : "OK Sort completed.");
	return IMAP_CMD_DONE;
}
