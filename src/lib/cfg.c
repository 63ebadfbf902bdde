/* Configuration parser. One table per block type declares every key
   (Redis' static_configs[], Postfix's typed tables): name, type, where it
   lives in the struct, default, bounds and a one-line doc. Syntax:

     # comment
     key = value
     block NAME {
         key = value
     }

   Values run to the end of the line (surrounding blanks trimmed, optional
   double quotes). Sizes take K/M/G/T suffixes (powers of 1024), durations
   ms/s/m/h/d (default seconds). Errors are "file:line: message". */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/cfg.h"
#include "lib/strview.h"
#include "lib/xalloc.h"

#define CFG_FILE_MAX_BYTES (1024 * 1024)
#define CFG_BLOCKS_MAX 256

enum cfg_type {
	CFG_T_STR,
	CFG_T_BOOL,
	CFG_T_U32,
	CFG_T_SIZE,	/* uint64_t bytes */
	CFG_T_DURATION, /* uint64_t milliseconds */
	CFG_T_LOGLEVEL,
	CFG_T_PROTO,
	CFG_T_TLS,
	CFG_T_PATH, /* string, relative to the config file's directory */
};

struct cfg_key {
	const char *name;
	enum cfg_type type;
	size_t offset;
	const char *def; /* default as text; NULL = unset */
	uint64_t min, max;
	const char *doc;
};

#define K(name, type, field, def, min, max, doc) \
	{ name, type, offsetof(struct cfg, field), def, min, max, doc }
#define U64MAX UINT64_MAX
static const struct cfg_key cfg_main_keys[] = {
	K("hostname", CFG_T_STR, hostname, NULL, 0, 0,
	  "name in greetings and Received: lines (default: the system host name)"),
	K("data_dir", CFG_T_PATH, data_dir, "/var/lib/tern", 0, 0,
	  "database, blobs and runtime files"),
	K("user", CFG_T_STR, user, "tern", 0, 0,
	  "user to run as after binding ports when started as root"),
	K("log_level", CFG_T_LOGLEVEL, log_level, "info", 0, 0,
	  "debug, info, warn or error"),
	K("workers", CFG_T_U32, workers, "0", 0, 256,
	  "worker processes; 0 means one per CPU core"),
	K("plaintext_auth_loopback", CFG_T_BOOL, plaintext_auth_loopback,
	  "no", 0, 0, "allow password logins without TLS from 127.0.0.0/8 and ::1"),
	K("max_connections", CFG_T_U32, max_connections, "20000", 1, 1000000,
	  "connections in total, over all workers"),
	K("max_connections_per_ip", CFG_T_U32, max_connections_per_ip, "100",
	  1, 1000000, "connections from one address, over all workers"),
	K("command_rate", CFG_T_U32, command_rate, "500", 0, 1000000,
	  "commands per second one connection may send on average (SMTP, IMAP, POP3); a faster client waits; 0: no limit"),
	K("command_burst", CFG_T_U32, command_burst, "2000", 1, 10000000,
	  "commands a connection may send at full speed before command_rate applies"),
	K("seccomp", CFG_T_BOOL, seccomp, "yes", 0, 0,
	  "filter the system calls of workers and the queue (no exec, fork, ptrace, mount, ...); no: for debugging only"),
	K("smtp_max_message_size", CFG_T_SIZE, smtp_max_message_bytes, "50M",
	  1024, 4ULL << 30, "largest message accepted (SIZE), unless the plan says less"),
	K("smtp_max_recipients", CFG_T_U32, smtp_max_recipients, "100", 1,
	  100000, "recipients per message, unless the plan says less"),
	K("smtp_max_received", CFG_T_U32, smtp_max_received, "100", 1,
	  100000, "Received: fields over which a message is refused as a loop"),
	K("smtp_max_errors", CFG_T_U32, smtp_max_errors, "10", 1, 1000,
	  "client errors before 421 and disconnect"),
	K("smtp_timeout", CFG_T_DURATION, smtp_timeout_ms, "5m", 1000,
	  U64MAX, "idle time allowed between SMTP commands"),
	K("smtp_data_timeout", CFG_T_DURATION, smtp_data_timeout_ms, "10m",
	  1000, U64MAX, "idle time allowed inside DATA"),
	K("smtp_save_sent", CFG_T_BOOL, smtp_save_sent, "no", 0, 0,
	  "copy each submitted message to the sender's Sent folder"),
	K("imap_login_timeout", CFG_T_DURATION, imap_login_timeout_ms, "1m",
	  1000, U64MAX, "time allowed before a successful login"),
	K("imap_idle_timeout", CFG_T_DURATION, imap_idle_timeout_ms, "31m",
	  30 * 60 * 1000, U64MAX, "inactivity allowed after login (RFC 9051: at least 30 minutes)"),
	K("imap_max_line_size", CFG_T_SIZE, imap_max_line_bytes, "64K", 1024,
	  16 << 20, "longest IMAP command line, literals excluded"),
	K("pop3_timeout", CFG_T_DURATION, pop3_timeout_ms, "10m",
	  10 * 60 * 1000, U64MAX, "inactivity allowed (RFC 1939: at least 10 minutes)"),
	K("auth_cache_entries", CFG_T_U32, auth_cache_entries, "10000", 0,
	  10000000, "verified logins remembered per worker (0 disables)"),
	K("auth_cache_ttl", CFG_T_DURATION, auth_cache_ttl_ms, "15m", 0,
	  U64MAX, "how long a verified login is remembered"),
	K("queue_max_age", CFG_T_DURATION, queue_max_age_ms, "5d", 1000,
	  U64MAX, "time a message may wait in the queue before it bounces"),
	K("queue_retry_min", CFG_T_DURATION, queue_retry_min_ms, "5m", 100,
	  U64MAX, "first retry delay; doubles after each failure"),
	K("queue_retry_max", CFG_T_DURATION, queue_retry_max_ms, "4h", 100,
	  U64MAX, "longest retry delay"),
	K("queue_delay_warning", CFG_T_DURATION, queue_delay_warning_ms, "4h",
	  0, U64MAX, "tell the sender once when a message is still queued after this long (0: never)"),
	K("queue_max_connections", CFG_T_U32, queue_max_connections, "50", 1,
	  10000, "outbound connections in total"),
	K("queue_max_per_domain", CFG_T_U32, queue_max_per_domain, "5", 1,
	  1000, "outbound connections per destination domain"),
	K("queue_smarthost", CFG_T_STR, queue_smarthost, NULL, 0, 0,
	  "relay all outbound mail through host:port instead of MX lookup"),
	K("queue_smarthost_user", CFG_T_STR, queue_smarthost_user, NULL, 0, 0,
	  "AUTH user for the smarthost"),
	K("queue_smarthost_password", CFG_T_STR, queue_smarthost_password,
	  NULL, 0, 0, "AUTH password for the smarthost"),
	K("queue_smarthost_tls_verify", CFG_T_BOOL, queue_smarthost_tls_verify,
	  "yes", 0, 0, "the smarthost must offer STARTTLS with a certificate that verifies for its name; no: opportunistic TLS as with MX hosts"),
	K("queue_tls_ca_file", CFG_T_PATH, queue_tls_ca_file, NULL, 0, 0,
	  "PEM file of CA certificates to verify remote servers with, instead of the system store"),
	K("dns_resolver", CFG_T_STR, dns_resolver, NULL, 0, 0,
	  "resolver as ip:port (default: /etc/resolv.conf)"),
	K("remote_smtp_port", CFG_T_U32, remote_smtp_port, "25", 1, 65535,
	  "port of remote mail exchangers"),
};
#undef K

#define LK(name, type, field, def, min, max, doc) \
	{ name, type, offsetof(struct cfg_listener, field), def, min, max, doc }
static const struct cfg_key cfg_listener_keys[] = {
	LK("address", CFG_T_STR, address, "0.0.0.0", 0, 0,
	   "address to bind (0.0.0.0, ::, 127.0.0.1 ...)"),
	LK("port", CFG_T_U32, port, NULL, 1, 65535, "TCP port (required)"),
	LK("protocol", CFG_T_PROTO, protocol, NULL, 0, 0,
	   "smtp, submission, imap or pop3 (required)"),
	LK("tls", CFG_T_TLS, tls, "none", 0, 0, "none, starttls or implicit"),
};
#undef LK

#define CK(name, type, field, def, doc) \
	{ name, type, offsetof(struct cfg_cert, field), def, 0, 0, doc }
static const struct cfg_key cfg_cert_keys[] = {
	CK("cert", CFG_T_PATH, cert_file, NULL, "PEM certificate chain (required)"),
	CK("key", CFG_T_PATH, key_file, NULL, "PEM private key (required)"),
};
#undef CK

#define PK(name, type, field, def, min, max, doc) \
	{ name, type, offsetof(struct cfg_plan, field), def, min, max, doc }
static const struct cfg_key cfg_plan_keys[] = {
	PK("quota", CFG_T_SIZE, quota_bytes, "10G", 0, U64MAX,
	   "storage quota (0 = unlimited)"),
	PK("quota_messages", CFG_T_SIZE, quota_messages, "0", 0, U64MAX,
	   "message count quota (0 = unlimited)"),
	PK("send_per_hour", CFG_T_U32, send_per_hour, "1000", 0, 10000000,
	   "recipients the account may send to in a sliding hour"),
	PK("max_message_size", CFG_T_SIZE, max_message_bytes, "0", 0,
	   4ULL << 30, "largest message (0 = the global smtp_max_message_size)"),
	PK("max_recipients", CFG_T_U32, max_recipients, "0", 0, 100000,
	   "recipients per message (0 = the global smtp_max_recipients)"),
};
#undef PK

struct cfg_block_type {
	const char *name;
	const struct cfg_key *keys;
	size_t key_count;
	const char *doc;
};

static const struct cfg_block_type cfg_blocks[] = {
	{ "listener", cfg_listener_keys,
	  sizeof(cfg_listener_keys) / sizeof(cfg_listener_keys[0]),
	  "a listening socket" },
	{ "certificate", cfg_cert_keys,
	  sizeof(cfg_cert_keys) / sizeof(cfg_cert_keys[0]),
	  "a TLS certificate; the first is the default, others are chosen by SNI" },
	{ "plan", cfg_plan_keys, sizeof(cfg_plan_keys) / sizeof(cfg_plan_keys[0]),
	  "an account plan (overrides a shipped plan of the same name)" },
};

static const char *const cfg_proto_names[] = { "smtp", "submission", "imap",
					       "pop3" };
static const char *const cfg_tls_names[] = { "none", "starttls", "implicit" };
static const char *const cfg_level_names[] = { "debug", "info", "warn",
					       "error" };

const char *
cfg_proto_name(enum cfg_proto p)
{
	return (size_t)p < 4 ? cfg_proto_names[p] : "?";
}

/* ---- value parsing ---- */

static int
cfg_parse_size(struct strview v, uint64_t *out_r)
{
	uint64_t mult = 1, n;

	if (v.len > 0) {
		switch (toupper((unsigned char)v.p[v.len - 1])) {
		case 'K': mult = 1ULL << 10; break;
		case 'M': mult = 1ULL << 20; break;
		case 'G': mult = 1ULL << 30; break;
		case 'T': mult = 1ULL << 40; break;
		}
		if (mult != 1)
			v.len--;
		else if (toupper((unsigned char)v.p[v.len - 1]) == 'B')
			v.len--;
	}
	if (parse_u64(v, UINT64_MAX / mult, &n) < 0)
		return -1;
	*out_r = n * mult;
	return 0;
}

static int
cfg_parse_duration(struct strview v, uint64_t *out_r)
{
	uint64_t mult = 1000, n;

	if (v.len > 2 && strncmp(v.p + v.len - 2, "ms", 2) == 0) {
		mult = 1;
		v.len -= 2;
	} else if (v.len > 0) {
		switch (v.p[v.len - 1]) {
		case 's': mult = 1000; v.len--; break;
		case 'm': mult = 60000; v.len--; break;
		case 'h': mult = 3600000; v.len--; break;
		case 'd': mult = 86400000; v.len--; break;
		}
	}
	if (parse_u64(v, UINT64_MAX / mult, &n) < 0)
		return -1;
	*out_r = n * mult;
	return 0;
}

static int
cfg_parse_enum(struct strview v, const char *const *names, size_t n,
	       int *out_r)
{
	for (size_t i = 0; i < n; i++) {
		if (sv_eq_ci_cstr(v, names[i])) {
			*out_r = (int)i;
			return 0;
		}
	}
	return -1;
}

/* Make a path relative to the config file's directory absolute. */
static char *
cfg_resolve_path(const char *cfg_path, struct strview v)
{
	const char *slash = cfg_path != NULL ? strrchr(cfg_path, '/') : NULL;
	struct buf b;

	if (v.len > 0 && v.p[0] == '/')
		return sv_dup(v);
	buf_init(&b, 8192);
	if (slash != NULL)
		buf_append(&b, cfg_path, (size_t)(slash - cfg_path) + 1);
	buf_append(&b, v.p, v.len);
	return buf_steal(&b, NULL);
}

/* Store value v for key k into the struct at base. NULL or error text. */
static const char *
cfg_set(const char *cfg_path, const struct cfg_key *k, void *base,
	struct strview v)
{
	char *field = (char *)base + k->offset;
	uint64_t n;
	int e;

	switch (k->type) {
	case CFG_T_STR:
	case CFG_T_PATH: {
		char **sp = (char **)field;
		free(*sp);
		*sp = k->type == CFG_T_PATH ? cfg_resolve_path(cfg_path, v) :
					      sv_dup(v);
		return NULL;
	}
	case CFG_T_BOOL:
		if (sv_eq_ci_cstr(v, "yes") || sv_eq_ci_cstr(v, "true") ||
		    sv_eq_ci_cstr(v, "on") || sv_eq_ci_cstr(v, "1"))
			*(bool *)field = true;
		else if (sv_eq_ci_cstr(v, "no") || sv_eq_ci_cstr(v, "false") ||
			 sv_eq_ci_cstr(v, "off") || sv_eq_ci_cstr(v, "0"))
			*(bool *)field = false;
		else
			return "expected yes or no";
		return NULL;
	case CFG_T_U32:
		if (parse_u64(v, UINT32_MAX, &n) < 0)
			return "expected a number";
		if (n < k->min || n > k->max)
			return "number out of range";
		*(uint32_t *)field = (uint32_t)n;
		return NULL;
	case CFG_T_SIZE:
		if (cfg_parse_size(v, &n) < 0)
			return "expected a size like 512K, 50M or 10G";
		if (n < k->min || n > k->max)
			return "size out of range";
		*(uint64_t *)field = n;
		return NULL;
	case CFG_T_DURATION:
		if (cfg_parse_duration(v, &n) < 0)
			return "expected a duration like 30s, 5m, 4h or 5d";
		if (n < k->min || n > k->max)
			return "duration out of range";
		*(uint64_t *)field = n;
		return NULL;
	case CFG_T_LOGLEVEL:
		if (cfg_parse_enum(v, cfg_level_names, 4, &e) < 0)
			return "expected debug, info, warn or error";
		*(enum log_level *)field = (enum log_level)e;
		return NULL;
	case CFG_T_PROTO:
		if (cfg_parse_enum(v, cfg_proto_names, 4, &e) < 0)
			return "expected smtp, submission, imap or pop3";
		*(enum cfg_proto *)field = (enum cfg_proto)e;
		return NULL;
	case CFG_T_TLS:
		if (cfg_parse_enum(v, cfg_tls_names, 3, &e) < 0)
			return "expected none, starttls or implicit";
		*(enum cfg_tls *)field = (enum cfg_tls)e;
		return NULL;
	}
	return "bad key type";
}

static void
cfg_set_defaults(const struct cfg_key *keys, size_t n, void *base)
{
	for (size_t i = 0; i < n; i++) {
		if (keys[i].def != NULL &&
		    cfg_set(NULL, &keys[i], base, sv_from_cstr(keys[i].def)) != NULL)
			abort(); /* a bad default is a bug in this table */
	}
}

static const struct cfg_key *
cfg_key_find(const struct cfg_key *keys, size_t n, struct strview name)
{
	for (size_t i = 0; i < n; i++) {
		if (sv_eq_ci_cstr(name, keys[i].name))
			return &keys[i];
	}
	return NULL;
}

static void
cfg_free_strings(const struct cfg_key *keys, size_t n, void *base)
{
	for (size_t i = 0; i < n; i++) {
		if (keys[i].type == CFG_T_STR || keys[i].type == CFG_T_PATH) {
			char **sp = (char **)((char *)base + keys[i].offset);
			free(*sp);
			*sp = NULL;
		}
	}
}

#define NKEYS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- shipped plans and listeners ---- */

static void
cfg_add_plan(struct cfg *c, const char *name, uint64_t quota_gb,
	     uint32_t per_hour)
{
	struct cfg_plan *p;

	c->plans = xreallocarray(c->plans, c->plan_count + 1, sizeof(*c->plans));
	p = &c->plans[c->plan_count++];
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->quota_bytes = quota_gb << 30;
	p->send_per_hour = per_hour;
}

static void
cfg_default_listeners(struct cfg *c)
{
	static const struct {
		const char *name;
		uint32_t port;
		enum cfg_proto proto;
		enum cfg_tls tls;
	} std[] = {
		{ "smtp", 25, CFG_PROTO_SMTP, CFG_TLS_STARTTLS },
		{ "submission", 587, CFG_PROTO_SUBMISSION, CFG_TLS_STARTTLS },
		{ "submissions", 465, CFG_PROTO_SUBMISSION, CFG_TLS_IMPLICIT },
		{ "imap", 143, CFG_PROTO_IMAP, CFG_TLS_STARTTLS },
		{ "imaps", 993, CFG_PROTO_IMAP, CFG_TLS_IMPLICIT },
		{ "pop3", 110, CFG_PROTO_POP3, CFG_TLS_STARTTLS },
		{ "pop3s", 995, CFG_PROTO_POP3, CFG_TLS_IMPLICIT },
	};
	c->listeners = xcalloc(NKEYS(std), sizeof(*c->listeners));
	for (size_t i = 0; i < NKEYS(std); i++) {
		struct cfg_listener *l = &c->listeners[i];
		snprintf(l->name, sizeof(l->name), "%s", std[i].name);
		l->address = xstrdup("0.0.0.0");
		l->port = std[i].port;
		l->protocol = std[i].proto;
		l->tls = std[i].tls;
	}
	c->listener_count = NKEYS(std);
}

static struct cfg *
cfg_new_defaults(void)
{
	struct cfg *c = xcalloc(1, sizeof(*c));
	char host[256];

	cfg_set_defaults(cfg_main_keys, NKEYS(cfg_main_keys), c);
	if (gethostname(host, sizeof(host)) == 0) {
		host[sizeof(host) - 1] = '\0';
		c->hostname = xstrdup(host);
	} else {
		c->hostname = xstrdup("localhost");
	}
	cfg_add_plan(c, "essential", 10, 1000);
	cfg_add_plan(c, "standard", 25, 3000);
	cfg_add_plan(c, "professional", 60, 5000);
	return c;
}

/* ---- the parser ---- */

struct cfg_parser {
	const char *name;
	struct cfg *cfg;
	unsigned line;
	char *error;
	size_t error_size;
	/* current block */
	const struct cfg_block_type *block;
	void *block_base;
	bool listeners_seen;
};

static int cfg_fail(struct cfg_parser *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int
cfg_fail(struct cfg_parser *p, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(p->error, p->error_size, "%s:%u: ", p->name, p->line);

	if (n < 0 || (size_t)n >= p->error_size)
		return -1;
	va_start(ap, fmt);
	vsnprintf(p->error + n, p->error_size - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

static int
cfg_valid_block_name(struct strview v)
{
	if (v.len == 0 || v.len >= CFG_NAME_MAX)
		return 0;
	for (size_t i = 0; i < v.len; i++) {
		unsigned char ch = (unsigned char)v.p[i];
		if (!isalnum(ch) && ch != '-' && ch != '_' && ch != '.')
			return 0;
	}
	return 1;
}

static int
cfg_open_block(struct cfg_parser *p, struct strview type, struct strview name)
{
	struct cfg *c = p->cfg;
	const struct cfg_block_type *bt = NULL;

	for (size_t i = 0; i < NKEYS(cfg_blocks); i++) {
		if (sv_eq_ci_cstr(type, cfg_blocks[i].name))
			bt = &cfg_blocks[i];
	}
	if (bt == NULL)
		return cfg_fail(p, "unknown block type '%.*s'", (int)type.len, type.p);
	if (!cfg_valid_block_name(name))
		return cfg_fail(p, "%s needs a name of letters, digits, '-', '_' or '.'",
				bt->name);
	if (bt->keys == cfg_listener_keys) {
		struct cfg_listener *l;
		if (!p->listeners_seen) {
			/* The first listener block replaces the defaults. */
			for (size_t i = 0; i < c->listener_count; i++)
				free(c->listeners[i].address);
			c->listener_count = 0;
			p->listeners_seen = true;
		}
		c->listeners = xreallocarray(c->listeners, c->listener_count + 1,
					     sizeof(*c->listeners));
		l = &c->listeners[c->listener_count++];
		memset(l, 0, sizeof(*l));
		l->port = 0;
		l->protocol = (enum cfg_proto)-1;
		cfg_set_defaults(bt->keys, bt->key_count, l);
		memcpy(l->name, name.p, name.len);
		p->block_base = l;
	} else if (bt->keys == cfg_cert_keys) {
		struct cfg_cert *ce;
		c->certs = xreallocarray(c->certs, c->cert_count + 1,
					 sizeof(*c->certs));
		ce = &c->certs[c->cert_count++];
		memset(ce, 0, sizeof(*ce));
		memcpy(ce->name, name.p, name.len);
		p->block_base = ce;
	} else {
		struct cfg_plan *pl = NULL;
		for (size_t i = 0; i < c->plan_count; i++) {
			if (sv_eq_ci_cstr(name, c->plans[i].name))
				pl = &c->plans[i];
		}
		if (pl == NULL) {
			c->plans = xreallocarray(c->plans, c->plan_count + 1,
						 sizeof(*c->plans));
			pl = &c->plans[c->plan_count++];
		}
		memset(pl, 0, sizeof(*pl));
		cfg_set_defaults(bt->keys, bt->key_count, pl);
		memcpy(pl->name, name.p, name.len);
		p->block_base = pl;
	}
	p->block = bt;
	return 0;
}

/* Check the block just closed for required keys. */
static int
cfg_close_block(struct cfg_parser *p)
{
	if (p->block->keys == cfg_listener_keys) {
		struct cfg_listener *l = p->block_base;
		if (l->port == 0)
			return cfg_fail(p, "listener %s: port is required", l->name);
		if ((int)l->protocol < 0)
			return cfg_fail(p, "listener %s: protocol is required",
					l->name);
	} else if (p->block->keys == cfg_cert_keys) {
		struct cfg_cert *ce = p->block_base;
		if (ce->cert_file == NULL || ce->key_file == NULL)
			return cfg_fail(p, "certificate %s: cert and key are required",
					ce->name);
	}
	p->block = NULL;
	p->block_base = NULL;
	return 0;
}

static int
cfg_parse_line(struct cfg_parser *p, struct strview line)
{
	struct strview key, value;
	const struct cfg_key *k;
	const char *err;
	long eq;

	line = sv_trim(line);
	if (line.len == 0 || line.p[0] == '#')
		return 0;
	for (size_t i = 0; i < line.len; i++) {
		if ((unsigned char)line.p[i] < 0x20 && line.p[i] != '\t')
			return cfg_fail(p, "control character in line");
	}
	if (sv_eq(line, SV_LIT("}"))) {
		if (p->block == NULL)
			return cfg_fail(p, "'}' without an open block");
		return cfg_close_block(p);
	}
	if (line.p[line.len - 1] == '{') {
		struct strview head = sv_trim(sv_make(line.p, line.len - 1));
		struct strview type = sv_split(&head, ' ');
		if (p->block != NULL)
			return cfg_fail(p, "blocks cannot be nested");
		return cfg_open_block(p, type, sv_trim(head));
	}
	eq = sv_index(line, '=');
	if (eq < 0)
		return cfg_fail(p, "expected 'key = value'");
	key = sv_trim(sv_make(line.p, (size_t)eq));
	value = sv_trim(sv_make(line.p + eq + 1, line.len - (size_t)eq - 1));
	if (value.len >= 2 && value.p[0] == '"' && value.p[value.len - 1] == '"')
		value = sv_make(value.p + 1, value.len - 2);
	if (p->block != NULL)
		k = cfg_key_find(p->block->keys, p->block->key_count, key);
	else
		k = cfg_key_find(cfg_main_keys, NKEYS(cfg_main_keys), key);
	if (k == NULL)
		return cfg_fail(p, "unknown key '%.*s'%s%s", (int)key.len, key.p,
				p->block != NULL ? " in " : "",
				p->block != NULL ? p->block->name : "");
	err = cfg_set(p->name, k, p->block != NULL ? p->block_base : (void *)p->cfg,
		      value);
	if (err != NULL)
		return cfg_fail(p, "%s: %s", k->name, err);
	return 0;
}

/* Checks across keys, after the whole file is read. */
static int
cfg_validate(struct cfg_parser *p)
{
	struct cfg *c = p->cfg;

	for (size_t i = 0; i < c->listener_count; i++) {
		const struct cfg_listener *l = &c->listeners[i];
		if (l->tls != CFG_TLS_NONE && c->cert_count == 0)
			return cfg_fail(p, "listener %s uses TLS but no certificate block is configured",
					l->name);
		for (size_t j = 0; j < i; j++) {
			if (strcmp(c->listeners[j].name, l->name) == 0)
				return cfg_fail(p, "listener %s is defined twice", l->name);
			if (c->listeners[j].port == l->port &&
			    strcmp(c->listeners[j].address, l->address) == 0)
				return cfg_fail(p, "listeners %s and %s use the same address and port",
						c->listeners[j].name, l->name);
		}
	}
	if (c->queue_retry_min_ms > c->queue_retry_max_ms)
		return cfg_fail(p, "queue_retry_min is larger than queue_retry_max");
	return 0;
}

struct cfg *
cfg_parse(const char *name, const char *text, size_t len, char *error_r,
	  size_t error_size)
{
	struct cfg_parser p = { .name = name, .error = error_r,
				.error_size = error_size };
	struct strview rest = sv_make(text, len);

	p.cfg = cfg_new_defaults();
	p.cfg->path = xstrdup(name);
	cfg_default_listeners(p.cfg);
	while (rest.len > 0) {
		struct strview line = sv_split(&rest, '\n');
		p.line++;
		if (line.len > 0 && line.p[line.len - 1] == '\r')
			line.len--;
		if (cfg_parse_line(&p, line) < 0)
			goto fail;
	}
	if (p.block != NULL) {
		cfg_fail(&p, "block %s is not closed with '}'", p.block->name);
		goto fail;
	}
	if (cfg_validate(&p) < 0)
		goto fail;
	return p.cfg;
fail:
	cfg_free(&p.cfg);
	return NULL;
}

struct cfg *
cfg_load(const char *path, char *error_r, size_t error_size)
{
	FILE *f = fopen(path, "r");
	struct buf b;
	struct cfg *c;
	char chunk[4096];
	size_t n;

	if (f == NULL) {
		snprintf(error_r, error_size, "%s:0: cannot open: %s", path,
			 strerror(errno));
		return NULL;
	}
	buf_init(&b, CFG_FILE_MAX_BYTES);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (buf_append(&b, chunk, n) < 0) {
			snprintf(error_r, error_size, "%s:0: file too large", path);
			fclose(f);
			buf_free(&b);
			return NULL;
		}
	}
	fclose(f);
	if (memchr(buf_cstr(&b), '\0', b.len) != NULL) {
		snprintf(error_r, error_size, "%s:0: NUL byte in file", path);
		buf_free(&b);
		return NULL;
	}
	c = cfg_parse(path, buf_cstr(&b), b.len, error_r, error_size);
	buf_free(&b);
	return c;
}

void
cfg_free(struct cfg **cp)
{
	struct cfg *c = *cp;

	if (c == NULL)
		return;
	cfg_free_strings(cfg_main_keys, NKEYS(cfg_main_keys), c);
	for (size_t i = 0; i < c->listener_count; i++)
		free(c->listeners[i].address);
	for (size_t i = 0; i < c->cert_count; i++)
		cfg_free_strings(cfg_cert_keys, NKEYS(cfg_cert_keys), &c->certs[i]);
	free(c->listeners);
	free(c->certs);
	free(c->plans);
	free(c->path);
	free(c);
	*cp = NULL;
}

const struct cfg_listener *
cfg_listener_find(const struct cfg *c, const char *name)
{
	for (size_t i = 0; i < c->listener_count; i++) {
		if (strcmp(c->listeners[i].name, name) == 0)
			return &c->listeners[i];
	}
	return NULL;
}

const struct cfg_plan *
cfg_plan_find(const struct cfg *c, const char *name)
{
	for (size_t i = 0; i < c->plan_count; i++) {
		if (strcasecmp(c->plans[i].name, name) == 0)
			return &c->plans[i];
	}
	return NULL;
}

/* ---- dump and docs ---- */

static void
cfg_format_value(const struct cfg_key *k, const void *base, char *out,
		 size_t outlen)
{
	const char *field = (const char *)base + k->offset;

	switch (k->type) {
	case CFG_T_STR:
	case CFG_T_PATH: {
		const char *s = *(char *const *)field;
		snprintf(out, outlen, "%s", s != NULL ? s : "");
		break;
	}
	case CFG_T_BOOL:
		snprintf(out, outlen, "%s", *(const bool *)field ? "yes" : "no");
		break;
	case CFG_T_U32:
		snprintf(out, outlen, "%u", *(const uint32_t *)field);
		break;
	case CFG_T_SIZE: {
		uint64_t v = *(const uint64_t *)field;
		if (v != 0 && v % (1ULL << 30) == 0)
			snprintf(out, outlen, "%lluG", (unsigned long long)(v >> 30));
		else if (v != 0 && v % (1ULL << 20) == 0)
			snprintf(out, outlen, "%lluM", (unsigned long long)(v >> 20));
		else if (v != 0 && v % (1ULL << 10) == 0)
			snprintf(out, outlen, "%lluK", (unsigned long long)(v >> 10));
		else
			snprintf(out, outlen, "%llu", (unsigned long long)v);
		break;
	}
	case CFG_T_DURATION: {
		uint64_t v = *(const uint64_t *)field;
		if (v % 86400000 == 0 && v != 0)
			snprintf(out, outlen, "%llud", (unsigned long long)(v / 86400000));
		else if (v % 3600000 == 0 && v != 0)
			snprintf(out, outlen, "%lluh", (unsigned long long)(v / 3600000));
		else if (v % 60000 == 0 && v != 0)
			snprintf(out, outlen, "%llum", (unsigned long long)(v / 60000));
		else if (v % 1000 == 0)
			snprintf(out, outlen, "%llus", (unsigned long long)(v / 1000));
		else
			snprintf(out, outlen, "%llums", (unsigned long long)v);
		break;
	}
	case CFG_T_LOGLEVEL:
		snprintf(out, outlen, "%s", cfg_level_names[*(const enum log_level *)field]);
		break;
	case CFG_T_PROTO:
		snprintf(out, outlen, "%s", cfg_proto_name(*(const enum cfg_proto *)field));
		break;
	case CFG_T_TLS:
		snprintf(out, outlen, "%s", cfg_tls_names[*(const enum cfg_tls *)field]);
		break;
	}
}

static void
cfg_dump_keys(const struct cfg_key *keys, size_t n, const void *base,
	      const void *defaults, FILE *out, bool non_default,
	      const char *indent)
{
	char val[1024], def[1024];

	for (size_t i = 0; i < n; i++) {
		cfg_format_value(&keys[i], base, val, sizeof(val));
		if (non_default && defaults != NULL) {
			cfg_format_value(&keys[i], defaults, def, sizeof(def));
			if (strcmp(val, def) == 0)
				continue;
		}
		fprintf(out, "%s%s = %s\n", indent, keys[i].name, val);
	}
}

void
cfg_dump(const struct cfg *c, FILE *out, bool non_default)
{
	struct cfg *d = cfg_new_defaults();

	cfg_dump_keys(cfg_main_keys, NKEYS(cfg_main_keys), c, d, out,
		      non_default, "");
	for (size_t i = 0; i < c->listener_count; i++) {
		fprintf(out, "listener %s {\n", c->listeners[i].name);
		cfg_dump_keys(cfg_listener_keys, NKEYS(cfg_listener_keys),
			      &c->listeners[i], NULL, out, false, "\t");
		fprintf(out, "}\n");
	}
	for (size_t i = 0; i < c->cert_count; i++) {
		fprintf(out, "certificate %s {\n", c->certs[i].name);
		cfg_dump_keys(cfg_cert_keys, NKEYS(cfg_cert_keys), &c->certs[i],
			      NULL, out, false, "\t");
		fprintf(out, "}\n");
	}
	for (size_t i = 0; i < c->plan_count; i++) {
		fprintf(out, "plan %s {\n", c->plans[i].name);
		cfg_dump_keys(cfg_plan_keys, NKEYS(cfg_plan_keys), &c->plans[i],
			      NULL, out, false, "\t");
		fprintf(out, "}\n");
	}
	cfg_free(&d);
}

static void
cfg_doc_keys(FILE *out, const struct cfg_key *keys, size_t n)
{
	fprintf(out, "| key | default | meaning |\n|---|---|---|\n");
	for (size_t i = 0; i < n; i++) {
		fprintf(out, "| `%s` | %s%s%s | %s |\n", keys[i].name,
			keys[i].def != NULL ? "`" : "",
			keys[i].def != NULL ? keys[i].def : "(none)",
			keys[i].def != NULL ? "`" : "", keys[i].doc);
	}
}

void
cfg_doc(FILE *out)
{
	fprintf(out, "## Main keys\n\n");
	cfg_doc_keys(out, cfg_main_keys, NKEYS(cfg_main_keys));
	for (size_t i = 0; i < NKEYS(cfg_blocks); i++) {
		fprintf(out, "\n## `%s NAME { ... }`: %s\n\n", cfg_blocks[i].name,
			cfg_blocks[i].doc);
		cfg_doc_keys(out, cfg_blocks[i].keys, cfg_blocks[i].key_count);
	}
}
