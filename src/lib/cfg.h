#ifndef TERN_CFG_H
#define TERN_CFG_H
/* The configuration: one file, "key = value" lines and named blocks

     hostname = mail.example.org
     listener imaps {
         port = 993
         protocol = imap
         tls = implicit
     }

   One table per block type declares every key (name, type, default,
   bounds, one-line doc); it drives the parser, `ternd --check-config`,
   `ternctl config show` and the test that docs/config.md lists every key.
   The master parses; workers get the immutable result; a reload parses a
   new one. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/log.h"

enum cfg_proto {
	CFG_PROTO_SMTP,	      /* inbound MX (25) */
	CFG_PROTO_SUBMISSION, /* 587 / 465: AUTH required before MAIL */
	CFG_PROTO_IMAP,
	CFG_PROTO_POP3,
};

enum cfg_tls {
	CFG_TLS_NONE,
	CFG_TLS_STARTTLS,
	CFG_TLS_IMPLICIT,
};

#define CFG_NAME_MAX 64

struct cfg_listener {
	char name[CFG_NAME_MAX];
	char *address; /* "0.0.0.0", "::", "127.0.0.1" */
	uint32_t port;
	enum cfg_proto protocol;
	enum cfg_tls tls;
};

struct cfg_cert {
	char name[CFG_NAME_MAX];
	char *cert_file; /* PEM chain */
	char *key_file;	 /* PEM private key */
};

struct cfg_plan {
	char name[CFG_NAME_MAX];
	uint64_t quota_bytes;
	uint64_t quota_messages;
	uint32_t send_per_hour;
	uint64_t max_message_bytes;
	uint32_t max_recipients;
};

struct cfg {
	char *path;
	/* general */
	char *hostname;
	char *data_dir;
	char *user; /* drop privileges to this user when started as root */
	enum log_level log_level;
	uint32_t workers; /* 0 = one per core */
	bool plaintext_auth_loopback;
	uint32_t max_connections;	 /* server-wide */
	uint32_t max_connections_per_ip; /* server-wide */
	bool seccomp; /* sandbox workers and the queue */
	uint32_t command_rate;		 /* per connection and second, 0: off */
	uint32_t command_burst;		 /* token bucket size */
	/* smtp */
	uint64_t smtp_max_message_bytes;
	uint32_t smtp_max_recipients;
	uint32_t smtp_max_errors;
	uint32_t smtp_max_received;
	uint64_t smtp_timeout_ms;
	uint64_t smtp_data_timeout_ms;
	bool smtp_save_sent; /* copy submitted mail to the sender's Sent */
	/* imap */
	uint64_t imap_login_timeout_ms;
	uint64_t imap_idle_timeout_ms;
	uint64_t imap_max_line_bytes;
	/* pop3 */
	uint64_t pop3_timeout_ms;
	/* auth */
	uint32_t auth_cache_entries;
	uint64_t auth_cache_ttl_ms;
	/* queue */
	uint64_t queue_max_age_ms;
	uint64_t queue_retry_min_ms;
	uint64_t queue_retry_max_ms;
	uint64_t queue_delay_warning_ms; /* 0: no delay DSNs */
	uint32_t queue_max_connections;
	uint32_t queue_max_per_domain;
	char *queue_smarthost; /* "host:port", or NULL for MX routing */
	char *queue_smarthost_user;
	char *queue_smarthost_password;
	bool queue_smarthost_tls_verify; /* TLS with a verified cert or fail */
	char *queue_tls_ca_file; /* NULL: the system's CA store */
	char *dns_resolver; /* "127.0.0.1:5353", or NULL for resolv.conf */
	uint32_t remote_smtp_port;

	struct cfg_listener *listeners;
	size_t listener_count;
	struct cfg_cert *certs;
	size_t cert_count;
	struct cfg_plan *plans;
	size_t plan_count;
};

/* Parse a file. On error returns NULL and writes "file:line: message" to
   error_r. */
struct cfg *cfg_load(const char *path, char *error_r, size_t error_size);
/* Parse text (for tests); name is used in error messages. */
struct cfg *cfg_parse(const char *name, const char *text, size_t len,
		      char *error_r, size_t error_size);
void cfg_free(struct cfg **cp);

const struct cfg_listener *cfg_listener_find(const struct cfg *c,
					     const char *name);
const struct cfg_plan *cfg_plan_find(const struct cfg *c, const char *name);
const char *cfg_proto_name(enum cfg_proto p);

/* Write every key with its value (non_default: only those that differ
   from the default), in config-file syntax. */
void cfg_dump(const struct cfg *c, FILE *out, bool non_default);
/* Write the key reference (for docs/config.md and its check). */
void cfg_doc(FILE *out);

#endif
