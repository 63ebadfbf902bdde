/* The SMTP command table and the small commands. Each row: verb, states
   in which it is allowed, flags, handler. RFC 5321 4.1.1 (commands),
   4.1.4 (order: EHLO resets, MAIL needs EHLO/HELO, RCPT needs MAIL, DATA
   needs RCPT), 4.3.2 (reply codes), 3.5.3 (VRFY 252), RFC 1869/5321 EHLO
   keywords, RFC 3463 enhanced codes, RFC 2920 (commands that end a
   pipeline group), RFC 3207 (STARTTLS), RFC 3030 (BDAT), RFC 1870
   (SIZE), RFC 3461 (DSN), RFC 6531 (SMTPUTF8).
   Security: an HTTP request line on the SMTP port (cross-protocol
   attacks) ends the session; DATA pipelined with content before the 354
   is refused and the buffered bytes are dropped (never run as commands
   nor taken as content). */
#include <stdio.h>
#include <string.h>

#include "lib/cfg.h"
#include "lib/conn.h"
#include "lib/log.h"
#include "smtp/smtp_int.h"

#define SMTP_CMD_NOARGS 0x01u /* arguments are a syntax error */

struct smtp_cmd {
	const char *name;
	unsigned int states;
	unsigned int flags;
	void (*run)(struct smtp_session *s, struct strview args);
};

static uint64_t
smtp_cmd_max_size(const struct smtp_session *s)
{
	uint64_t max = s->env->cfg->smtp_max_message_bytes;

	if (s->authed && s->plan.max_message_bytes != 0 &&
	    (max == 0 || s->plan.max_message_bytes < max))
		max = s->plan.max_message_bytes;
	return max;
}

static void
smtp_cmd_helo_common(struct smtp_session *s, struct strview args, bool esmtp)
{
	struct strview name;

	if (smtp_parse_helo(args, &name) != SMTP_PARSE_OK) {
		smtp_reply_error(s, "501 5.5.4 Syntax: %s hostname",
				 esmtp ? "EHLO" : "HELO");
		return;
	}
	/* RFC 5321 4.1.4: EHLO/HELO in a session resets the transaction. */
	smtp_tx_reset(s);
	memcpy(s->helo, name.p, name.len);
	s->helo[name.len] = '\0';
	s->esmtp = esmtp;
	s->state = SMTP_S_READY;
}

static void
smtp_cmd_ehlo(struct smtp_session *s, struct strview args)
{
	smtp_cmd_helo_common(s, args, true);
	if (s->state != SMTP_S_READY || s->helo[0] == '\0')
		return;
	smtp_reply(s, "250-%s Hello %s [%s]", s->env->hostname, s->helo,
		   conn_peer_addr(s->c));
	smtp_reply(s, "250-PIPELINING");
	smtp_reply(s, "250-SIZE %llu",
		   (unsigned long long)smtp_cmd_max_size(s));
	smtp_reply(s, "250-8BITMIME");
	smtp_reply(s, "250-SMTPUTF8");
	smtp_reply(s, "250-ENHANCEDSTATUSCODES");
	if (!conn_is_tls(s->c) && s->env->tls != NULL &&
	    s->listener->tls == CFG_TLS_STARTTLS)
		smtp_reply(s, "250-STARTTLS");
	if (!s->authed && smtp_session_auth_allowed(s))
		smtp_reply(s, "250-AUTH PLAIN LOGIN SCRAM-SHA-256");
	smtp_reply(s, "250-CHUNKING");
	smtp_reply(s, "250 DSN");
}

static void
smtp_cmd_helo(struct smtp_session *s, struct strview args)
{
	smtp_cmd_helo_common(s, args, false);
	if (s->state == SMTP_S_READY && s->helo[0] != '\0')
		smtp_reply(s, "250 %s", s->env->hostname);
}

static void
smtp_cmd_mail(struct smtp_session *s, struct strview args)
{
	struct smtp_path path;
	struct smtp_mail_params mp;
	const char *error = "syntax error";

	if (s->listener->protocol == CFG_PROTO_SUBMISSION && !s->authed) {
		smtp_reply_error(s, "530 5.7.0 Authentication required");
		return;
	}
	switch (smtp_parse_mail(args, &path, &mp, &error)) {
	case SMTP_PARSE_OK:
		break;
	case SMTP_PARSE_BAD_PATH:
		smtp_reply_error(s, "501 5.1.7 Bad sender address syntax: %s",
				 error);
		return;
	case SMTP_PARSE_UNKNOWN_PARAM:
		smtp_reply_error(s, "555 5.5.4 %s", error);
		return;
	default:
		smtp_reply_error(s, "501 5.5.4 Syntax: MAIL FROM:<address> "
				    "[parameters]: %s", error);
		return;
	}
	if (!s->esmtp && (mp.has_size || mp.body != SMTP_BODY_NONE ||
			  mp.smtputf8 || mp.ret != SMTP_RET_NONE ||
			  mp.envid[0] != '\0' || mp.has_auth)) {
		/* RFC 5321 4.1.1.11: parameters only after EHLO. */
		smtp_reply_error(s, "555 5.5.4 Parameters need EHLO");
		return;
	}
	if (mp.has_size && smtp_cmd_max_size(s) != 0 &&
	    mp.size > smtp_cmd_max_size(s)) {
		smtp_reply(s, "552 5.3.4 Message size exceeds fixed maximum "
			      "message size");
		return;
	}
	smtp_deliver_mail(s, &path, &mp);
}

static void
smtp_cmd_rcpt(struct smtp_session *s, struct strview args)
{
	struct smtp_path path;
	struct smtp_rcpt_params rp;
	const char *error = "syntax error";

	if (s->state == SMTP_S_CHUNKING) {
		smtp_reply_error(s, "503 5.5.1 Bad sequence of commands");
		return;
	}
	/* Parse with UTF-8 allowed, then apply RFC 6531 3.7.4.1 so that a
	   non-ASCII address without SMTPUTF8 gets its own code. */
	switch (smtp_parse_rcpt(args, true, &path, &rp, &error)) {
	case SMTP_PARSE_OK:
		break;
	case SMTP_PARSE_BAD_PATH:
		smtp_reply_error(s, "501 5.1.3 Bad recipient address syntax: "
				    "%s", error);
		return;
	case SMTP_PARSE_UNKNOWN_PARAM:
		smtp_reply_error(s, "555 5.5.4 %s", error);
		return;
	default:
		smtp_reply_error(s, "501 5.5.4 Syntax: RCPT TO:<address> "
				    "[parameters]: %s", error);
		return;
	}
	if (!s->tx.mp.smtputf8 &&
	    (path.utf8 || strncmp(rp.orcpt, "utf-8;", 6) == 0)) {
		smtp_reply_error(s, "553 5.6.7 Non-ASCII address requires "
				    "SMTPUTF8");
		return;
	}
	smtp_deliver_rcpt(s, &path, &rp);
}

static void
smtp_cmd_data(struct smtp_session *s, struct strview args)
{
	if (s->state == SMTP_S_MAIL) {
		smtp_reply_error(s, "554 5.5.1 No valid recipients");
		return;
	}
	if (s->state != SMTP_S_RCPT) {
		smtp_reply_error(s, "503 5.5.1 Bad sequence of commands");
		return;
	}
	if (conn_input_len(s->c) > 0) {
		/* RFC 2920 3.1: DATA ends a pipeline group; content may only
		   follow the 354. Whatever came early is dropped. */
		conn_input_consume(s->c, conn_input_len(s->c));
		log_info("smtp", smtp_session_id(s), "pipelining-after-data");
		smtp_reply_error(s, "503 5.5.1 Improper use of pipelining "
				    "after DATA");
		return;
	}
	smtp_data_init(&s->tx.data, s->tx.max_bytes);
	if (smtp_deliver_start(s) < 0) {
		smtp_reply(s, "%s", smtp_deliver_store_reply(s));
		return;
	}
	s->state = SMTP_S_DATA;
	conn_set_timeout(s->c, s->env->cfg->smtp_data_timeout_ms);
	smtp_reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

static void
smtp_cmd_bdat(struct smtp_session *s, struct strview args)
{
	uint64_t size;
	bool last;

	if (smtp_parse_bdat(args, &size, &last) != SMTP_PARSE_OK) {
		/* Without a length the chunk cannot be skipped: its bytes
		   would be read as commands. */
		smtp_reply(s, "501 5.5.4 Syntax: BDAT size [LAST]");
		smtp_reply(s, "421 4.7.0 %s Closing connection",
			   s->env->hostname);
		conn_close(s->c);
		return;
	}
	if (!(s->state & (SMTP_S_RCPT | SMTP_S_CHUNKING))) {
		/* 554 when MAIL was accepted but every RCPT refused (as
		   for DATA), 503 without MAIL. */
		bool norcpt = s->state == SMTP_S_MAIL;
		smtp_tx_reset(s);
		s->tx.bdat_discard = true;
		s->tx.bdat_norcpt = norcpt;
	} else if (s->state == SMTP_S_RCPT) {
		smtp_data_init(&s->tx.data, s->tx.max_bytes);
		if (smtp_deliver_start(s) < 0)
			s->tx.write_failed = true;
	}
	s->tx.bdat_left = size;
	s->tx.bdat_last = last;
	s->state = SMTP_S_BDAT;
	conn_set_timeout(s->c, s->env->cfg->smtp_data_timeout_ms);
}

/* The reply to a junk command (SMTP_JUNK_MAX). */
static void
smtp_cmd_junk(struct smtp_session *s, const char *reply)
{
	if (s->junk < SMTP_JUNK_MAX) {
		s->junk++;
		smtp_reply(s, "%s", reply);
		return;
	}
	if (s->junk == SMTP_JUNK_MAX) {
		log_info("smtp", smtp_session_id(s), "junk-limit count=%u",
			 s->junk);
		s->junk++;
	}
	smtp_reply_error(s, "%s", reply);
}

static void
smtp_cmd_rset(struct smtp_session *s, struct strview args)
{
	smtp_tx_reset(s);
	smtp_cmd_junk(s, "250 2.0.0 Ok");
}

static void
smtp_cmd_noop(struct smtp_session *s, struct strview args)
{
	smtp_cmd_junk(s, "250 2.0.0 Ok");
}

static void
smtp_cmd_vrfy(struct smtp_session *s, struct strview args)
{
	/* RFC 5321 3.5.3: 252 reveals nothing about the address. */
	if (args.len == 0) {
		smtp_reply_error(s, "501 5.5.4 Syntax: VRFY address");
		return;
	}
	smtp_cmd_junk(s, "252 2.5.0 Cannot VRFY user, but will accept "
			 "message and attempt delivery");
}

static void
smtp_cmd_expn(struct smtp_session *s, struct strview args)
{
	smtp_reply_error(s, "502 5.5.1 EXPN not available");
}

static void
smtp_cmd_help(struct smtp_session *s, struct strview args)
{
	smtp_cmd_junk(s, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT "
			 "RSET NOOP VRFY HELP QUIT STARTTLS AUTH");
}

static void
smtp_cmd_quit(struct smtp_session *s, struct strview args)
{
	smtp_reply(s, "221 2.0.0 Bye");
	conn_close(s->c);
}

static void
smtp_cmd_starttls(struct smtp_session *s, struct strview args)
{
	if (conn_is_tls(s->c)) {
		smtp_reply_error(s, "503 5.5.1 TLS already active");
		return;
	}
	if (s->env->tls == NULL || s->listener->tls != CFG_TLS_STARTTLS) {
		smtp_reply(s, "454 4.7.0 TLS not available");
		return;
	}
	smtp_reply(s, "220 2.0.0 Ready to start TLS");
	if (conn_starttls(s->c, s->env->tls) < 0) {
		smtp_session_resume(s);
		return;
	}
	/* RFC 3207 4.2: forget everything learnt before TLS, including
	   a plaintext AUTH (loopback). */
	smtp_tx_reset(s);
	s->helo[0] = '\0';
	s->esmtp = false;
	s->authed = false;
	s->account_id = 0;
	s->state = SMTP_S_INIT;
	log_info("smtp", smtp_session_id(s), "starttls");
}

static void
smtp_cmd_auth(struct smtp_session *s, struct strview args)
{
	smtp_auth_cmd(s, args);
}

#define S_SESSION (SMTP_S_INIT | SMTP_S_READY | SMTP_S_MAIL | SMTP_S_RCPT | \
		   SMTP_S_CHUNKING)
static const struct smtp_cmd smtp_cmds[] = {
	{ "EHLO", S_SESSION, 0, smtp_cmd_ehlo },
	{ "HELO", S_SESSION, 0, smtp_cmd_helo },
	{ "MAIL", SMTP_S_READY, 0, smtp_cmd_mail },
	{ "RCPT", SMTP_S_MAIL | SMTP_S_RCPT | SMTP_S_CHUNKING, 0,
	  smtp_cmd_rcpt },
	{ "DATA", S_SESSION, SMTP_CMD_NOARGS, smtp_cmd_data },
	{ "BDAT", S_SESSION, 0, smtp_cmd_bdat },
	{ "RSET", S_SESSION, SMTP_CMD_NOARGS, smtp_cmd_rset },
	{ "NOOP", S_SESSION, 0, smtp_cmd_noop },
	{ "VRFY", S_SESSION, 0, smtp_cmd_vrfy },
	{ "EXPN", S_SESSION, 0, smtp_cmd_expn },
	{ "HELP", S_SESSION, 0, smtp_cmd_help },
	{ "QUIT", S_SESSION, SMTP_CMD_NOARGS, smtp_cmd_quit },
	{ "STARTTLS", SMTP_S_INIT | SMTP_S_READY, SMTP_CMD_NOARGS,
	  smtp_cmd_starttls },
	{ "AUTH", SMTP_S_READY, 0, smtp_cmd_auth },
};

static const char *const smtp_http_verbs[] = {
	"GET", "POST", "PUT", "HEAD", "CONNECT", "OPTIONS",
};

static void
smtp_cmd_bad_state(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	if (s->state == SMTP_S_INIT)
		smtp_reply_error(s, "503 5.5.1 Send EHLO/HELO first");
	else if (strcmp(cmd->name, "MAIL") == 0)
		smtp_reply_error(s, "503 5.5.1 Nested MAIL command");
	else if (strcmp(cmd->name, "RCPT") == 0)
		smtp_reply_error(s, "503 5.5.1 Need MAIL before RCPT");
	else
		smtp_reply_error(s, "503 5.5.1 Bad sequence of commands");
}

static const struct smtp_cmd *
smtp_cmd_find(struct strview verb)
{
	size_t i;

	for (i = 0; i < sizeof(smtp_cmds) / sizeof(smtp_cmds[0]); i++) {
		if (sv_eq_ci_cstr(verb, smtp_cmds[i].name))
			return &smtp_cmds[i];
	}
	return NULL;
}

static bool
smtp_cmd_is_http(struct strview verb)
{
	size_t i;

	for (i = 0; i < sizeof(smtp_http_verbs) / sizeof(smtp_http_verbs[0]);
	     i++) {
		if (sv_eq_ci_cstr(verb, smtp_http_verbs[i]))
			return true;
	}
	return false;
}

void
smtp_cmd_dispatch(struct smtp_session *s, struct strview line)
{
	struct smtp_cmdline cl;
	const struct smtp_cmd *cmd;
	char verb[32];

	if (smtp_parse_cmdline(line, &cl) != SMTP_PARSE_OK) {
		smtp_reply_error(s, "500 5.5.2 Syntax error, command "
				    "unrecognized");
		return;
	}
	cmd = smtp_cmd_find(cl.verb);
	if (cmd == NULL) {
		log_info("smtp", smtp_session_id(s), "unknown-command verb=%s",
			 log_sanitize(verb, sizeof(verb), cl.verb.p,
				      cl.verb.len));
		if (smtp_cmd_is_http(cl.verb)) {
			smtp_reply(s, "521 5.7.0 This is an SMTP server");
			conn_close(s->c);
			return;
		}
		smtp_reply_error(s, "500 5.5.2 Command unrecognized");
		return;
	}
	if (!(cmd->states & s->state) ||
	    (s->state == SMTP_S_INIT &&
	     (cmd->run == smtp_cmd_mail || cmd->run == smtp_cmd_auth))) {
		smtp_cmd_bad_state(s, cmd);
		return;
	}
	if ((cmd->flags & SMTP_CMD_NOARGS) && cl.args.len > 0) {
		smtp_reply_error(s, "501 5.5.4 Syntax: %s takes no arguments",
				 cmd->name);
		return;
	}
	cmd->run(s, cl.args);
}
