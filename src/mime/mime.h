#ifndef TERN_MIME_H
#define TERN_MIME_H
/* Message parsing: RFC 5322 headers, addresses and dates, RFC 2045-2047
   MIME structure and decoding, and the IMAP ENVELOPE / BODY /
   BODYSTRUCTURE strings (RFC 9051 7.5.2, RFC 3501 7.4.2).

   Every function here takes stored mail that came from the network, so
   all input is hostile: lengths are explicit, nothing relies on NUL
   termination, every count and depth below is bounded, and malformed MIME
   never fails: it yields the structure a careful server reports (a broken
   part becomes text/plain, RFC 2045 5.2). Nothing here logs. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

/* Limits. Beyond each one the parser degrades, it does not fail. */
/* Nesting of multipart and message/rfc822 parts. A part at this depth is
   not split further: a multipart there becomes a text/plain leaf, a
   message/rfc822 becomes application/octet-stream. */
#define MIME_DEPTH_MAX 20
/* Parts in one message (all levels). Further children of a multipart are
   not reported (their bytes stay inside the parent's body). */
#define MIME_PARTS_MAX 1000
/* A multipart boundary parameter longer than this (RFC 2046 allows 70)
   makes the multipart broken, i.e. text/plain. */
#define MIME_BOUNDARY_MAX_BYTES 200
/* Unfolded value of one header field as used for parsing (Content-*,
   envelope fields, addresses): longer values are cut at this size. */
#define MIME_HEADER_VALUE_MAX_BYTES (64 * 1024)
/* Parameters kept per Content-Type / Content-Disposition. */
#define MIME_PARAMS_MAX 64
/* Addresses (including group markers) kept per address header. */
#define MIME_ADDRESSES_MAX 1000
/* Comment nesting in addresses, dates and Content-* values; deeper
   comments end the parse of that value. */
#define MIME_COMMENT_DEPTH_MAX 32

/* ---- Message info, computed once at delivery and stored ---- */

/* Every string is xmalloc'd and owned by the struct; mime_info_free()
   releases them. ENVELOPE/BODY/BODYSTRUCTURE are complete IMAP values
   (the parenthesized list), ready to be sent after "ENVELOPE " etc.; they
   may contain IMAP literals ({n}CRLF...) for 8-bit or CR/LF text. */
/* ---- sort and thread keys (mime_sort.c; RFC 5256, RFC 5957) ---- */

/* Longest subject (after RFC 2047 decoding) used for sorting/threading;
   longer ones are cut (the base subject of the prefix is used). */
#define MIME_SORT_SUBJECT_MAX_BYTES (16 * 1024)
/* References kept per message for THREAD=REFERENCES. */
#define MIME_SORT_REFS_MAX 100
/* Bytes of one Message-ID kept; longer ids are treated as invalid. */
#define MIME_SORT_MSGID_MAX_BYTES 998

/* The RFC 5256 2.1 base subject of a raw Subject: value (RFC 2047
   encoded-words are decoded first, tabs and line breaks become spaces,
   runs of spaces one space). *reply_r: a "Re:"/"Fwd:" leader, a "(fwd)"
   trailer or a "[fwd: ...]" wrapper was removed (the "reply or forward"
   of RFC 5256 5, REFERENCES step 5). 0, or -1 when out->max is too
   small (out then holds nothing useful). */
int mime_subject_base(const char *in, size_t len, struct buf *out,
		      bool *reply_r);

/* What SORT and THREAD compare, from the top header. Strings are
   xmalloc'd. */
struct mime_sort_keys {
	char *subject;		/* base subject, "" when none */
	bool reply;		/* see mime_subject_base */
	char *from, *to, *cc;	/* addr-mailbox of the first address of the
				   field (a group start: the group's name),
				   NULL when it has none */
	char *dfrom, *dto;	/* RFC 5957 display form, NULL likewise */
	char *msgid;		/* first "<...>" of Message-ID, or NULL */
	char *refs;		/* References ids (else the first of
				   In-Reply-To), oldest first, separated by
				   one space; NULL when none */
};
void mime_sort_keys_parse(const uint8_t *hdr, size_t hdr_len,
			  struct mime_sort_keys *keys_r);
/* Free the strings and zero the struct; safe to call twice. */
void mime_sort_keys_free(struct mime_sort_keys *keys);

struct mime_info {
	char *envelope;      /* ("date" "subject" ((from)) ... "message-id") */
	char *bodystructure; /* BODYSTRUCTURE with extension data */
	char *body;          /* BODY: same without extension data */
	char *message_id;    /* raw unfolded Message-ID value, or NULL */
	char *subject;       /* RFC 2047-decoded UTF-8, unfolded; "" if none */
	char *from;          /* first From address "local@domain" lowercased,
				or "" */
	int64_t date;        /* Date: as unix time, -1 missing/unparseable */
	size_t header_len;   /* top header bytes including the empty line */
	uint32_t lines;      /* lines of the whole message (see below) */
	struct mime_sort_keys sort;
};

/* Parse a whole message (CRLF expected, bare LF tolerated). Line counts
   (here and in BODYSTRUCTURE) are the number of LF bytes, plus one when
   the counted range is non-empty and does not end in LF.
   Returns 0, or -1 only on an internal error (bad MIME is not an error);
   on -1 *info_r holds nothing to free. */
int mime_info_parse(const uint8_t *msg, size_t len, struct mime_info *info_r);
/* Free the strings and zero the struct; safe to call twice. */
void mime_info_free(struct mime_info *info);

/* ---- IMAP section addressing (RFC 9051 6.4.5) ---- */

/* Offsets are into msg; *_len may be 0. For path "" (depth 0) all ranges
   describe the top message: mime = header = the message header, body =
   text = everything after the header.
   For a part: mime = the part's own MIME header (for a non-multipart
   top-level message, part 1's MIME header is the message header), body =
   the part's body (BODY[1.2]). When the part is message/rfc822 (or
   message/global): header = the encapsulated message's header
   (BODY[1.2.HEADER]), text = its body (BODY[1.2.TEXT]); otherwise
   header_len = text_len = 0 and has_message is false. */
struct mime_section {
	size_t mime_off, mime_len;
	size_t header_off, header_len;
	size_t body_off, body_len;
	size_t text_off, text_len;
	char content_transfer_encoding[32]; /* lowercase, "7bit" default;
					       truncated names stay unknown */
	bool is_message_rfc822; /* part is message/rfc822 or global */
	bool has_message;       /* header/text describe a message */
	bool is_multipart;
};

/* path[0..depth) are 1-based part numbers. Numbering follows RFC 9051:
   a non-multipart message has only part 1 (its body); the children of a
   message/rfc822 part are numbered as the encapsulated message's parts.
   Returns 1 found (*sec_r filled), 0 no such part (or a 0 in path). */
int mime_section_find(const uint8_t *msg, size_t len, const uint32_t *path,
		      size_t depth, struct mime_section *sec_r);

/* ---- Header helpers (hdr = bytes of one header block) ---- */

/* Append the unfolded value (CRLF of folding removed, leading and
   trailing white space trimmed) of the first field named name
   (case-insensitive) to out. The header block ends at the first empty
   line or at hdr_len. Returns 1 found, 0 not found, -1 out->max
   exceeded (out then holds a prefix). */
int mime_header_get(const uint8_t *hdr, size_t hdr_len, const char *name,
		    struct buf *out);
/* RFC 9051 HEADER.FIELDS (not = false) / HEADER.FIELDS.NOT (not = true):
   append the raw lines (with continuations) of each field whose name is
   (or is not) in names[0..n_names), in header order, then "\r\n".
   A last field without line end gets CRLF appended. 0, or -1 when
   out->max is exceeded. */
int mime_header_filter(const uint8_t *hdr, size_t hdr_len,
		       const char *const *names, size_t n_names, bool not,
		       struct buf *out);

/* ---- Decoding; each returns 0, or -1 when out->max is exceeded ---- */

/* Quoted-printable, RFC 2045 6.7. Lenient: a bad "=XY" is kept as is,
   soft line breaks (also "=" + white space + line end) vanish, trailing
   white space before a line end is dropped. */
int mime_decode_qp(struct buf *out, const uint8_t *in, size_t len);
/* Header text with RFC 2047 encoded-words (B and Q, "charset*lang")
   converted to UTF-8 with iconv; white space between adjacent
   encoded-words is dropped (RFC 2047 6.2); adjacent words in the same
   charset are joined before conversion. The decoded bytes of an unknown
   charset are kept as they are; malformed encoded-words and all other
   bytes are copied. Output is cut at out->max (then -1). */
int mime_decode_words(struct buf *out, const char *in, size_t len);
/* Decoded UTF-8 text of all text/ parts (text/html with its markup
   removed), separated by "\n", for SEARCH BODY/TEXT and the FTS index.
   Stops quietly at out->max: returns 0 with as much text as fits. */
int mime_extract_text(const uint8_t *msg, size_t len, struct buf *out);
/* The headers SEARCH TEXT looks at (RFC 3501 6.4.4 "header or body"),
   for it and the FTS index: the top header, then the MIME header of
   every body part (multipart children, the header of an encapsulated
   message/rfc822 and its parts, in part order), each with RFC 2047
   encoded-words decoded (mime_decode_words) and followed by "\n".
   Stops quietly at out->max (never inside a UTF-8 sequence). */
int mime_extract_headers(const uint8_t *msg, size_t len, struct buf *out);
/* The text SEARCH SUBJECT/FROM/TO/CC/BCC compares with (RFC 9051
   6.4.4), for it and the full-text index alike: the unfolded value of
   the first field named name (mime_header_get) in the top header
   hdr[0..hdr_len) (mime_search_header_len of the message), at most
   MIME_SEARCH_FIELD_RAW_MAX_BYTES, with RFC 2047 encoded-words decoded
   into out (init it with a max of at least
   MIME_SEARCH_FIELD_MAX_BYTES). From, To, Cc and Bcc ("the envelope
   structure's ... field") give their addresses as ENVELOPE parses
   them, written out as "name <mailbox@domain>, ..." and groups as
   "name: ...;" (no comments, quotes or folding white space; a field
   with an element that does not parse also gives its decoded text,
   after a "\n"). Returns 1 found, 0 not found (out untouched). */
#define MIME_SEARCH_FIELD_RAW_MAX_BYTES (256 * 1024)
#define MIME_SEARCH_FIELD_MAX_BYTES (512 * 1024)
int mime_search_field(const uint8_t *hdr, size_t hdr_len, const char *name,
		      struct buf *out);
/* SEARCH HEADER (RFC 9051 6.4.4: "a header field with the specified
   field-name ... that contains the specified string"): fn gets the
   value of each field named name in hdr, in header order, as
   mime_search_field gives the first, until it returns true. Returns 1
   when fn returned true, else 0. */
int mime_search_field_each(const uint8_t *hdr, size_t hdr_len,
			   const char *name,
			   bool (*fn)(void *ctx, const struct buf *value),
			   void *ctx);
/* The length of the top header of msg for mime_search_field (len when
   the message has no body). */
size_t mime_search_header_len(const uint8_t *msg, size_t len);
/* Decode a part body for IMAP BINARY[] (RFC 3516): cte "base64" (lenient,
   lib/base64.h base64_decode_mime), "quoted-printable", "7bit", "8bit",
   "binary" or "" (pass-through); case-insensitive. Returns 0, -1 for an
   unknown encoding or when out->max is exceeded (check out->len vs
   out->max, or call mime_cte_known() first, to tell them apart). */
int mime_decode_body(struct buf *out, const char *cte, const uint8_t *in,
		     size_t len);
/* true when mime_decode_body() knows this content-transfer-encoding. */
bool mime_cte_known(const char *cte);

/* ---- RFC 5322 dates and addresses ---- */

/* date-time (section 3.3) with the obsolete forms of 4.3: optional day
   of week, comments/CFWS anywhere, 2-digit years (< 50 -> 20xx, else
   19xx), 3-digit years (+1900), missing seconds, named zones (UT, GMT,
   EST...; military letters count as +0000), missing zone = +0000.
   Returns 0 with *time_r = unix time (UTC), or -1 on invalid input. */
int mime_date_parse(const char *s, size_t len, int64_t *time_r);
/* The same syntax; the day of the date as written (days since
   1970-01-01), its time and zone disregarded: what IMAP's SENTBEFORE,
   SENTON and SENTSINCE compare (RFC 9051 6.4.4). */
int mime_date_parse_day(const char *s, size_t len, int64_t *day_r);

enum mime_address_kind {
	MIME_ADDRESS_MAILBOX,
	MIME_ADDRESS_GROUP_START, /* mailbox = group display name */
	MIME_ADDRESS_GROUP_END,   /* every string NULL */
};

/* Raw (not RFC 2047-decoded) parts of one address. Any string may be
   NULL. name is the display name with quoting removed; for a bare
   addr-spec it is the last comment, "user@host (Name)". route is the
   obsolete source route "@a,@b" without the final ':'. mailbox is the
   local part with quoting removed; domain keeps domain-literal brackets.
   A mailbox without "@domain" has domain NULL and invalid set. */
struct mime_address {
	enum mime_address_kind kind;
	char *name, *route, *mailbox, *domain;
	bool invalid; /* syntax was broken; fields are a best effort */
};

struct mime_address_list {
	struct mime_address *addrs; /* xmalloc'd array, NULL when empty */
	size_t count;
};

/* Parse an RFC 5322 address-list (3.4, obsolete forms of 4.4: routes,
   empty list elements, missing group terminator): groups, display
   names, quoted strings, comments. Bad syntax never fails: the rest of
   an element is skipped to the next top-level ','. At most
   MIME_ADDRESSES_MAX entries. Always returns 0; free with
   mime_address_list_free(). */
int mime_address_parse(const char *in, size_t len,
		       struct mime_address_list *list_r);
void mime_address_list_free(struct mime_address_list *list);

/* Append list as an IMAP envelope address list "((name adl mailbox
   host) ...)", or "NIL" when empty. 0, or -1 when out->max is exceeded. */
int mime_address_list_write_imap(struct buf *out,
				 const struct mime_address_list *list);

/* Append s[0..len) as an IMAP string: a quoted string when every byte is
   7-bit, not NUL/CR/LF, else a literal "{n}\r\n" + bytes. A NULL s is
   written as NIL. 0, or -1 when out->max is exceeded. */
int mime_imap_string(struct buf *out, const char *s, size_t len);

#endif
