/* Pure parsers of SMTP command lines: verb and arguments, reverse- and
   forward-paths (RFC 5321 4.1.2 and 4.1.3, with RFC 6531 3.3 UTF-8),
   ESMTP parameters SIZE (RFC 1870), BODY (RFC 6152), SMTPUTF8 (RFC 6531),
   RET/ENVID/NOTIFY/ORCPT (RFC 3461 4), AUTH (RFC 4954 5), xtext
   (RFC 3461 4), BDAT (RFC 3030 2), EHLO/HELO and AUTH arguments.
   Input is hostile: every function takes explicit lengths, bounds every
   field by the RFC limits in smtp_int.h and never allocates. No logging,
   no sockets. */
#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include "smtp/smtp_int.h"

#define SMTP_VERB_MAX 16

static bool
smtp_parse_is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
smtp_parse_is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool
smtp_parse_is_alnum(unsigned char c)
{
	return smtp_parse_is_alpha(c) || smtp_parse_is_digit(c);
}

enum smtp_parse_res
smtp_parse_cmdline(struct strview line, struct smtp_cmdline *cmd_r)
{
	size_t i;

	for (i = 0; i < line.len; i++) {
		unsigned char c = (unsigned char)line.p[i];
		if (c < 0x20 && c != '\t')
			return SMTP_PARSE_SYNTAX;
		if (c == 0x7f)
			return SMTP_PARSE_SYNTAX;
	}
	for (i = 0; i < line.len && line.p[i] != ' '; i++) {
		if (!smtp_parse_is_alpha((unsigned char)line.p[i]))
			return SMTP_PARSE_SYNTAX;
	}
	if (i == 0 || i > SMTP_VERB_MAX)
		return SMTP_PARSE_SYNTAX;
	cmd_r->verb = sv_make(line.p, i);
	cmd_r->args = sv_make(line.p + i, line.len - i);
	if (cmd_r->args.len > 0)
		sv_skip(&cmd_r->args, 1);
	/* Trailing spaces are a common client quirk (RFC 5321 4.1.1 says
	   none); they carry no meaning, so drop them. */
	while (cmd_r->args.len > 0 &&
	       (cmd_r->args.p[cmd_r->args.len - 1] == ' ' ||
		cmd_r->args.p[cmd_r->args.len - 1] == '\t'))
		cmd_r->args.len--;
	return SMTP_PARSE_OK;
}

size_t
smtp_parse_utf8_len(const unsigned char *p, size_t len)
{
	uint32_t cp;
	size_t n, i;

	if (len == 0)
		return 0;
	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	/* Overlong forms, UTF-16 surrogates, beyond U+10FFFF. */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

/* RFC 5322 atext, plus UTF8-non-ascii under RFC 6531. */
static bool
smtp_parse_is_atext(unsigned char c)
{
	return smtp_parse_is_alnum(c) ||
	       (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* A run of atext (and UTF-8) starting at *i; returns its length. */
static size_t
smtp_parse_atom(const unsigned char *p, size_t len, size_t *i, bool *utf8)
{
	size_t start = *i, n;

	while (*i < len) {
		if (p[*i] >= 0x80) {
			n = smtp_parse_utf8_len(p + *i, len - *i);
			if (n == 0)
				return 0;
			*utf8 = true;
			*i += n;
		} else if (smtp_parse_is_atext(p[*i])) {
			(*i)++;
		} else {
			break;
		}
	}
	return *i - start;
}

/* Local-part (RFC 5321 4.1.2): Dot-string / Quoted-string. On success *i
   is at the '@' (or the end for postmaster). */
static bool
smtp_parse_local(const unsigned char *p, size_t len, size_t *i,
		 struct smtp_path *path)
{
	size_t n;

	if (*i < len && p[*i] == '"') {
		path->quoted = true;
		for ((*i)++; *i < len && p[*i] != '"';) {
			if (p[*i] == '\\') {
				if (*i + 1 >= len || p[*i + 1] < 32 ||
				    p[*i + 1] > 126)
					return false;
				*i += 2;
			} else if (p[*i] >= 0x80) {
				n = smtp_parse_utf8_len(p + *i, len - *i);
				if (n == 0)
					return false;
				path->utf8 = true;
				*i += n;
			} else if (p[*i] >= 32 && p[*i] <= 126) {
				(*i)++;
			} else {
				return false;
			}
		}
		if (*i >= len)
			return false;
		(*i)++;
		return true;
	}
	for (;;) {
		if (smtp_parse_atom(p, len, i, &path->utf8) == 0)
			return false;
		if (*i < len && p[*i] == '.') {
			(*i)++;
			continue;
		}
		return true;
	}
}

/* IPv4 dotted quad, strict (no leading zeros beyond "0"). */
static bool
smtp_parse_ipv4(const char *p, size_t len)
{
	char tmp[16];
	struct in_addr a;

	if (len == 0 || len >= sizeof(tmp))
		return false;
	memcpy(tmp, p, len);
	tmp[len] = '\0';
	return inet_pton(AF_INET, tmp, &a) == 1;
}

/* address-literal (RFC 5321 4.1.3): "[" IPv4 / "IPv6:" IPv6 "]". The
   General-address-literal form is refused: nothing is registered. */
static bool
smtp_parse_literal(const char *p, size_t len)
{
	char tmp[64];
	struct in6_addr a;

	if (len < 2 || p[0] != '[' || p[len - 1] != ']')
		return false;
	p++;
	len -= 2;
	if (len > 5 && strncasecmp(p, "IPv6:", 5) == 0) {
		if (len - 5 >= sizeof(tmp))
			return false;
		memcpy(tmp, p + 5, len - 5);
		tmp[len - 5] = '\0';
		return inet_pton(AF_INET6, tmp, &a) == 1;
	}
	return smtp_parse_ipv4(p, len);
}

/* Domain (RFC 5321 4.1.2 sub-domains, RFC 6531 U-labels): labels of
   letters, digits and hyphens (not at either end), at most 63 bytes,
   at most 255 in all. One trailing dot is tolerated and reported. */
static bool
smtp_parse_domain(const unsigned char *p, size_t len, bool *utf8,
		  bool *trailing_dot_r)
{
	size_t i = 0, label = 0, n;

	*trailing_dot_r = false;
	if (len > 0 && p[len - 1] == '.') {
		*trailing_dot_r = true;
		len--;
	}
	if (len == 0 || len > SMTP_DOMAIN_MAX)
		return false;
	while (i < len) {
		if (p[i] == '.') {
			if (label == 0 || p[i - 1] == '-')
				return false;
			label = 0;
			i++;
			continue;
		}
		if (p[i] >= 0x80) {
			n = smtp_parse_utf8_len(p + i, len - i);
			if (n == 0)
				return false;
			*utf8 = true;
		} else if (smtp_parse_is_alnum(p[i]) ||
			   (p[i] == '-' && label > 0)) {
			n = 1;
		} else {
			return false;
		}
		i += n;
		label += n;
		if (label > SMTP_LABEL_MAX)
			return false;
	}
	return label > 0 && p[len - 1] != '-';
}

/* A-d-l (RFC 5321 4.1.2): "@dom,@dom:" -- syntax-checked, then ignored
   (RFC 5321 3.6.1: servers SHOULD ignore source routes). */
static bool
smtp_parse_route(const unsigned char *p, size_t len, size_t *i)
{
	size_t start;
	bool utf8 = false, dot;

	for (;;) {
		if (*i >= len || p[*i] != '@')
			return false;
		start = ++(*i);
		while (*i < len && p[*i] != ',' && p[*i] != ':')
			(*i)++;
		if (*i >= len ||
		    !smtp_parse_domain(p + start, *i - start, &utf8, &dot))
			return false;
		if (p[(*i)++] == ':')
			return true;
	}
}

static enum smtp_parse_res
smtp_parse_mailbox(const unsigned char *p, size_t len,
		   struct smtp_path *path, const char **error_r)
{
	size_t i = 0, dom_len, n;
	const unsigned char *dom;

	if (!smtp_parse_local(p, len, &i, path) || i > SMTP_LOCAL_MAX) {
		*error_r = "invalid local part";
		return SMTP_PARSE_BAD_PATH;
	}
	path->local_len = i;
	if (i == len && !path->quoted && i == 10 &&
	    strncasecmp((const char *)p, "postmaster", 10) == 0) {
		/* RFC 5321 4.1.1.3: RCPT TO:<Postmaster> */
		path->postmaster = true;
		memcpy(path->addr, "postmaster", 11);
		return SMTP_PARSE_OK;
	}
	if (i >= len || p[i] != '@') {
		*error_r = "address without a domain";
		return SMTP_PARSE_BAD_PATH;
	}
	dom = p + i + 1;
	dom_len = len - i - 1;
	if (dom_len > 0 && dom[0] == '[') {
		path->literal = true;
		if (!smtp_parse_literal((const char *)dom, dom_len)) {
			*error_r = "invalid address literal";
			return SMTP_PARSE_BAD_PATH;
		}
	} else if (!smtp_parse_domain(dom, dom_len, &path->utf8,
				      &path->trailing_dot)) {
		*error_r = "invalid domain";
		return SMTP_PARSE_BAD_PATH;
	}
	n = len - (path->trailing_dot ? 1 : 0);
	memcpy(path->addr, p, n);
	path->addr[n] = '\0';
	return SMTP_PARSE_OK;
}

static long
smtp_parse_find_close(const unsigned char *p, size_t len)
{
	size_t i;
	bool quoted = false;

	for (i = 1; i < len && i < SMTP_PATH_MAX; i++) {
		if (quoted && p[i] == '\\')
			i++;
		else if (p[i] == '"')
			quoted = !quoted;
		else if (!quoted && p[i] == '>')
			return (long)i;
	}
	return -1;
}

enum smtp_parse_res
smtp_parse_path(struct strview *in, bool allow_null,
		struct smtp_path *path_r, const char **error_r)
{
	const unsigned char *p = (const unsigned char *)in->p;
	size_t i = 1;
	long close;

	memset(path_r, 0, sizeof(*path_r));
	if (in->len < 2 || p[0] != '<') {
		*error_r = "address must be in angle brackets";
		return SMTP_PARSE_SYNTAX;
	}
	/* '>' may appear inside a quoted local part: find the closing one
	   outside quotes, looking no further than the path limit. */
	close = smtp_parse_find_close(p, in->len);
	if (close < 0) {
		*error_r = in->len > SMTP_PATH_MAX ? "path too long" : "missing '>'";
		return in->len > SMTP_PATH_MAX ? SMTP_PARSE_BAD_PATH :
						 SMTP_PARSE_SYNTAX;
	}
	if ((size_t)close + 1 > SMTP_PATH_MAX) {
		*error_r = "path too long";
		return SMTP_PARSE_BAD_PATH;
	}
	if (close == 1) {
		if (!allow_null) {
			*error_r = "null path not allowed here";
			return SMTP_PARSE_BAD_PATH;
		}
		path_r->null = true;
		sv_skip(in, 2);
		return SMTP_PARSE_OK;
	}
	if (p[1] == '@') {
		path_r->route = true;
		if (!smtp_parse_route(p, (size_t)close, &i)) {
			*error_r = "invalid source route";
			return SMTP_PARSE_BAD_PATH;
		}
	}
	if (smtp_parse_mailbox(p + i, (size_t)close - i, path_r, error_r) !=
	    SMTP_PARSE_OK)
		return SMTP_PARSE_BAD_PATH;
	sv_skip(in, (size_t)close + 1);
	return SMTP_PARSE_OK;
}

static bool
smtp_parse_is_xhex(unsigned char c)
{
	return smtp_parse_is_digit(c) || (c >= 'A' && c <= 'F');
}

bool
smtp_parse_xtext_valid(struct strview v)
{
	size_t i;
	unsigned char c;

	for (i = 0; i < v.len; i++) {
		c = (unsigned char)v.p[i];
		if (c == '+') {
			if (v.len - i < 3 ||
			    !smtp_parse_is_xhex((unsigned char)v.p[i + 1]) ||
			    !smtp_parse_is_xhex((unsigned char)v.p[i + 2]))
				return false;
			i += 2;
		} else if (c < 33 || c > 126 || c == '=') {
			return false;
		}
	}
	return true;
}

/* esmtp-keyword ["=" esmtp-value] (RFC 5321 4.1.2). */
static bool
smtp_parse_param(struct strview tok, struct strview *key_r,
		 struct strview *val_r, bool *has_val_r, bool utf8)
{
	size_t i;
	long eq = sv_index(tok, '=');

	*key_r = tok;
	*has_val_r = eq >= 0;
	*val_r = sv_make(tok.p, 0);
	if (eq >= 0) {
		*key_r = sv_make(tok.p, (size_t)eq);
		*val_r = sv_make(tok.p + eq + 1, tok.len - (size_t)eq - 1);
		if (val_r->len == 0)
			return false;
		for (i = 0; i < val_r->len; i++) {
			unsigned char c = (unsigned char)val_r->p[i];
			if (c == '=' || c < 33 || (c > 126 && !utf8))
				return false;
		}
	}
	if (key_r->len == 0 || !smtp_parse_is_alnum((unsigned char)key_r->p[0]))
		return false;
	for (i = 1; i < key_r->len; i++) {
		if (!smtp_parse_is_alnum((unsigned char)key_r->p[i]) &&
		    key_r->p[i] != '-')
			return false;
	}
	return true;
}

static enum smtp_parse_res
smtp_parse_mail_param(struct strview key, struct strview val, bool has_val,
		      struct smtp_mail_params *mp, const char **error_r)
{
	if (sv_eq_ci_cstr(key, "SIZE")) {
		/* RFC 1870 6: size-value is 1*20DIGIT. */
		if (mp->has_size || !has_val || val.len > 20 ||
		    parse_u64(val, UINT64_MAX, &mp->size) < 0)
			goto bad;
		mp->has_size = true;
	} else if (sv_eq_ci_cstr(key, "BODY")) {
		if (mp->body != SMTP_BODY_NONE || !has_val)
			goto bad;
		if (sv_eq_ci_cstr(val, "7BIT"))
			mp->body = SMTP_BODY_7BIT;
		else if (sv_eq_ci_cstr(val, "8BITMIME"))
			mp->body = SMTP_BODY_8BITMIME;
		else
			goto unknown; /* BINARYMIME is not offered */
	} else if (sv_eq_ci_cstr(key, "SMTPUTF8")) {
		if (mp->smtputf8 || has_val)
			goto bad;
		mp->smtputf8 = true;
	} else if (sv_eq_ci_cstr(key, "RET")) {
		if (mp->ret != SMTP_RET_NONE || !has_val)
			goto bad;
		if (sv_eq_ci_cstr(val, "FULL"))
			mp->ret = SMTP_RET_FULL;
		else if (sv_eq_ci_cstr(val, "HDRS"))
			mp->ret = SMTP_RET_HDRS;
		else
			goto bad;
	} else if (sv_eq_ci_cstr(key, "ENVID")) {
		if (mp->envid[0] != '\0' || !has_val ||
		    val.len > SMTP_ENVID_MAX || !smtp_parse_xtext_valid(val))
			goto bad;
		memcpy(mp->envid, val.p, val.len);
		mp->envid[val.len] = '\0';
	} else if (sv_eq_ci_cstr(key, "AUTH")) {
		/* RFC 4954 5: "<>" or an xtext mailbox; never trusted. */
		if (mp->has_auth || !has_val ||
		    (!sv_eq_ci_cstr(val, "<>") && !smtp_parse_xtext_valid(val)))
			goto bad;
		mp->has_auth = true;
	} else {
		goto unknown;
	}
	return SMTP_PARSE_OK;
bad:
	*error_r = "invalid parameter value";
	return SMTP_PARSE_BAD_PARAM;
unknown:
	*error_r = "unsupported parameter";
	return SMTP_PARSE_UNKNOWN_PARAM;
}

/* NOTIFY="NEVER" / 1#("SUCCESS" / "FAILURE" / "DELAY") (RFC 3461 4.1). */
static bool
smtp_parse_notify(struct strview val, unsigned int *notify_r)
{
	struct strview item;
	unsigned int bit, n = 0;

	*notify_r = 0;
	if (val.len == 0 || val.p[val.len - 1] == ',')
		return false;
	while (val.len > 0) {
		item = sv_split(&val, ',');
		if (sv_eq_ci_cstr(item, "NEVER"))
			bit = SMTP_NOTIFY_NEVER;
		else if (sv_eq_ci_cstr(item, "SUCCESS"))
			bit = SMTP_NOTIFY_SUCCESS;
		else if (sv_eq_ci_cstr(item, "FAILURE"))
			bit = SMTP_NOTIFY_FAILURE;
		else if (sv_eq_ci_cstr(item, "DELAY"))
			bit = SMTP_NOTIFY_DELAY;
		else
			return false;
		if ((*notify_r & bit) != 0)
			return false;
		*notify_r |= bit;
		n++;
		if (n > 3 && val.len > 0)
			return false;
	}
	return *notify_r == SMTP_NOTIFY_NEVER ||
	       (*notify_r & SMTP_NOTIFY_NEVER) == 0;
}

/* ORCPT=addr-type ";" xtext (RFC 3461 4.2; utf-8 type RFC 6533). */
static bool
smtp_parse_orcpt(struct strview val, bool utf8)
{
	long semi = sv_index(val, ';');
	struct strview type, addr;
	size_t i, n;

	if (semi <= 0 || val.len > SMTP_ORCPT_MAX)
		return false;
	type = sv_make(val.p, (size_t)semi);
	addr = sv_make(val.p + semi + 1, val.len - (size_t)semi - 1);
	if (addr.len == 0)
		return false;
	if (sv_eq_ci_cstr(type, "rfc822"))
		return smtp_parse_xtext_valid(addr);
	if (!sv_eq_ci_cstr(type, "utf-8") || !utf8)
		return false;
	for (i = 0; i < addr.len; i += n) {
		n = smtp_parse_utf8_len((const unsigned char *)addr.p + i,
					addr.len - i);
		if (n == 0 || (n == 1 && (addr.p[i] < 33 || addr.p[i] == '=' ||
					  addr.p[i] == '+')))
			return false;
	}
	return true;
}

static enum smtp_parse_res
smtp_parse_rcpt_param(struct strview key, struct strview val, bool has_val,
		      bool utf8, struct smtp_rcpt_params *rp,
		      const char **error_r)
{
	if (sv_eq_ci_cstr(key, "NOTIFY")) {
		if (rp->notify != 0 || !has_val ||
		    !smtp_parse_notify(val, &rp->notify))
			goto bad;
	} else if (sv_eq_ci_cstr(key, "ORCPT")) {
		if (rp->orcpt[0] != '\0' || !has_val ||
		    !smtp_parse_orcpt(val, utf8))
			goto bad;
		memcpy(rp->orcpt, val.p, val.len);
		rp->orcpt[val.len] = '\0';
	} else {
		*error_r = "unsupported parameter";
		return SMTP_PARSE_UNKNOWN_PARAM;
	}
	return SMTP_PARSE_OK;
bad:
	*error_r = "invalid parameter value";
	return SMTP_PARSE_BAD_PARAM;
}

/* "FROM:" / "TO:" then optional spaces, then the path; *in is left at
   the parameters (leading spaces removed). */
static enum smtp_parse_res
smtp_parse_keyword_path(struct strview *in, const char *kw, bool allow_null,
			struct smtp_path *path_r, const char **error_r)
{
	enum smtp_parse_res res;

	if (!sv_starts_with_ci(*in, kw)) {
		*error_r = "syntax error";
		return SMTP_PARSE_SYNTAX;
	}
	sv_skip(in, strlen(kw));
	while (in->len > 0 && in->p[0] == ' ')
		sv_skip(in, 1);
	res = smtp_parse_path(in, allow_null, path_r, error_r);
	if (res != SMTP_PARSE_OK)
		return res;
	if (in->len > 0 && in->p[0] != ' ') {
		*error_r = "garbage after the path";
		return SMTP_PARSE_SYNTAX;
	}
	return SMTP_PARSE_OK;
}

/* Walk space-separated parameters, calling fn for each. */
typedef enum smtp_parse_res smtp_parse_param_fn(struct strview key,
						struct strview val,
						bool has_val, void *ctx,
						const char **error_r);

static enum smtp_parse_res
smtp_parse_params(struct strview in, bool utf8, smtp_parse_param_fn *fn,
		  void *ctx, const char **error_r)
{
	struct strview tok, key, val;
	bool has_val;
	size_t count = 0;
	enum smtp_parse_res res;

	while (in.len > 0) {
		if (in.p[0] == ' ') {
			sv_skip(&in, 1);
			continue;
		}
		tok = sv_split(&in, ' ');
		if (++count > SMTP_PARAMS_MAX) {
			*error_r = "too many parameters";
			return SMTP_PARSE_SYNTAX;
		}
		if (!smtp_parse_param(tok, &key, &val, &has_val, utf8)) {
			*error_r = "invalid parameter syntax";
			return SMTP_PARSE_SYNTAX;
		}
		res = fn(key, val, has_val, ctx, error_r);
		if (res != SMTP_PARSE_OK)
			return res;
	}
	return SMTP_PARSE_OK;
}

static enum smtp_parse_res
smtp_parse_mail_cb(struct strview key, struct strview val, bool has_val,
		   void *ctx, const char **error_r)
{
	return smtp_parse_mail_param(key, val, has_val, ctx, error_r);
}

struct smtp_parse_rcpt_ctx {
	struct smtp_rcpt_params *rp;
	bool utf8;
};

static enum smtp_parse_res
smtp_parse_rcpt_cb(struct strview key, struct strview val, bool has_val,
		   void *ctx, const char **error_r)
{
	struct smtp_parse_rcpt_ctx *rc = ctx;

	return smtp_parse_rcpt_param(key, val, has_val, rc->utf8, rc->rp,
				     error_r);
}

/* Does the parameter list contain SMTPUTF8 (decides whether UTF-8 in
   the reverse-path is acceptable)? */
static bool
smtp_parse_has_smtputf8(struct strview in)
{
	struct strview tok;

	while (in.len > 0) {
		tok = sv_split(&in, ' ');
		if (sv_eq_ci_cstr(tok, "SMTPUTF8"))
			return true;
	}
	return false;
}

enum smtp_parse_res
smtp_parse_mail(struct strview args, struct smtp_path *path_r,
		struct smtp_mail_params *params_r, const char **error_r)
{
	enum smtp_parse_res res;

	memset(params_r, 0, sizeof(*params_r));
	res = smtp_parse_keyword_path(&args, "FROM:", true, path_r, error_r);
	if (res != SMTP_PARSE_OK)
		return res;
	res = smtp_parse_params(args, smtp_parse_has_smtputf8(args),
				smtp_parse_mail_cb, params_r, error_r);
	if (res != SMTP_PARSE_OK)
		return res;
	if (path_r->utf8 && !params_r->smtputf8) {
		*error_r = "non-ASCII address without SMTPUTF8";
		return SMTP_PARSE_BAD_PATH;
	}
	return SMTP_PARSE_OK;
}

enum smtp_parse_res
smtp_parse_rcpt(struct strview args, bool utf8, struct smtp_path *path_r,
		struct smtp_rcpt_params *params_r, const char **error_r)
{
	struct smtp_parse_rcpt_ctx rc = { params_r, utf8 };
	enum smtp_parse_res res;

	memset(params_r, 0, sizeof(*params_r));
	res = smtp_parse_keyword_path(&args, "TO:", false, path_r, error_r);
	if (res != SMTP_PARSE_OK)
		return res;
	if (path_r->utf8 && !utf8) {
		*error_r = "non-ASCII address without SMTPUTF8";
		return SMTP_PARSE_BAD_PATH;
	}
	return smtp_parse_params(args, utf8, smtp_parse_rcpt_cb, &rc,
				 error_r);
}

enum smtp_parse_res
smtp_parse_bdat(struct strview args, uint64_t *size_r, bool *last_r)
{
	struct strview num = sv_split(&args, ' ');

	*last_r = false;
	/* RFC 3030 2: chunk-size = 1*DIGIT; bound it to 20 digits. */
	if (num.len == 0 || num.len > 20 ||
	    parse_u64(num, UINT64_MAX, size_r) < 0)
		return SMTP_PARSE_SYNTAX;
	if (args.len == 0)
		return SMTP_PARSE_OK;
	if (!sv_eq_ci_cstr(args, "LAST"))
		return SMTP_PARSE_SYNTAX;
	*last_r = true;
	return SMTP_PARSE_OK;
}

enum smtp_parse_res
smtp_parse_helo(struct strview args, struct strview *name_r)
{
	size_t i;
	unsigned char c;

	if (args.len == 0 || args.len > SMTP_HELO_MAX)
		return SMTP_PARSE_SYNTAX;
	for (i = 0; i < args.len; i++) {
		c = (unsigned char)args.p[i];
		if (c <= 32 || c >= 127 || strchr("()\\\"<>;", c) != NULL)
			return SMTP_PARSE_SYNTAX;
	}
	*name_r = args;
	return SMTP_PARSE_OK;
}

enum smtp_parse_res
smtp_parse_auth(struct strview args, struct strview *mech_r,
		struct strview *ir_r, bool *has_ir_r)
{
	size_t i;

	*mech_r = sv_split(&args, ' ');
	if (mech_r->len == 0 || mech_r->len > SMTP_MECH_MAX)
		return SMTP_PARSE_SYNTAX;
	for (i = 0; i < mech_r->len; i++) {
		unsigned char c = (unsigned char)mech_r->p[i];
		if (!smtp_parse_is_alnum(c) && c != '-' && c != '_')
			return SMTP_PARSE_SYNTAX;
	}
	*has_ir_r = args.len > 0;
	*ir_r = args;
	if (sv_index(args, ' ') >= 0)
		return SMTP_PARSE_SYNTAX;
	return SMTP_PARSE_OK;
}
