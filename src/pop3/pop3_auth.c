/* POP3 authorization: USER/PASS (RFC 1939 7), AUTH with SASL (RFC 5034,
   with the initial response of RFC 4422 and "*" to cancel), STLS (RFC
   2595 4) and CAPA (RFC 2449 5). Plain-text passwords are refused before
   TLS except from loopback when the config allows it. Failed logins are
   delayed by the shared throttle, never by sleeping. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "lib/base64.h"
#include "lib/cfg.h"
#include "lib/conn.h"
#include "lib/env.h"
#include "lib/ev.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "pop3/pop3_int.h"

static int
pop3_auth_lookup(void *ctx, const char *username, struct auth_user *user_r)
{
	struct pop3_session *s = ctx;
	struct store_account acct;
	char *norm = store_address_normalize(username);
	int r;

	if (norm == NULL)
		return 0;
	r = store_account_get(s->env->store, norm, &acct);
	free(norm);
	if (r <= 0)
		return r < 0 ? -1 : 0;
	user_r->name = acct.address;
	user_r->password_hash = acct.password_hash;
	user_r->scram_secrets = acct.scram;
	acct.address = acct.password_hash = acct.scram = NULL;
	store_account_clear(&acct);
	return 1;
}

void
pop3_auth_reset(struct pop3_session *s)
{
	auth_sasl_free(&s->sasl);
	s->sasl_final = false;
	xfree(&s->user);
}

/* Authenticated as account: open the maildrop and enter TRANSACTION. */
static void
pop3_auth_login(struct pop3_session *s, const char *account)
{
	const char *error = NULL;
	enum pop3_maildrop_res r;

	auth_throttle_success(s->env->throttle, conn_peer_addr(s->c), account,
			      ev_now(s->env->loop));
	r = pop3_maildrop_open(&s->md, s->env->store, account, &error);
	if (r == POP3_MAILDROP_IN_USE) {
		log_info("pop3", conn_id(s->c), "in-use user=%s", account);
		pop3_reply_err(s, "[IN-USE] Mailbox is locked by another POP3 session");
		pop3_auth_reset(s);
		return;
	}
	if (r != POP3_MAILDROP_OK) {
		log_error("pop3", conn_id(s->c), "maildrop-failed user=%s error=%s",
			  account, error);
		pop3_reply_err(s, "[SYS/TEMP] Cannot open the mailbox, try again later");
		pop3_auth_reset(s);
		return;
	}
	free(s->account);
	s->account = xstrdup(account);
	pop3_auth_reset(s);
	s->state = POP3_STATE_TRANSACTION;
	log_info("pop3", conn_id(s->c), "login user=%s messages=%zu", s->account,
		 s->md.count);
	pop3_reply_ok(s, "Logged in, %zu messages (%llu octets)", s->md.live_count,
		      (unsigned long long)s->md.live_bytes);
}

static void
pop3_auth_failed(struct pop3_session *s, const char *user, bool temp)
{
	log_info("pop3", conn_id(s->c), "auth-failed user=%s temp=%d",
		 user != NULL ? user : "-", temp);
	if (temp) {
		pop3_reply_err(s, "[SYS/TEMP] Authentication is unavailable, try later");
		pop3_auth_reset(s);
		return;
	}
	auth_throttle_failure(s->env->throttle, conn_peer_addr(s->c), user,
			      ev_now(s->env->loop));
	pop3_session_fail_delayed(s, "-ERR [AUTH] Authentication failed");
	pop3_auth_reset(s);
}

static bool
pop3_auth_blocked(struct pop3_session *s, const char *user)
{
	if (!auth_throttle_blocked(s->env->throttle, conn_peer_addr(s->c), user,
				   ev_now(s->env->loop)))
		return false;
	pop3_reply_err(s, "[SYS/TEMP] Too many failed logins, try again later");
	pop3_auth_reset(s);
	return true;
}

void
pop3_cmd_user(struct pop3_session *s, const struct pop3_cmdline *cmd)
{
	if (!pop3_session_plaintext_ok(s)) {
		pop3_reply_err(s, "[AUTH] Plain-text login is not allowed without TLS (use STLS)");
		return;
	}
	if (cmd->argc != 1 || cmd->extra || cmd->args[0].len > 255) {
		pop3_client_error(s, "USER takes one name");
		return;
	}
	free(s->user);
	s->user = sv_dup(cmd->args[0]);
	pop3_reply_ok(s, "Send the password");
}

void
pop3_cmd_pass(struct pop3_session *s, const struct pop3_cmdline *cmd)
{
	char *user, *password;
	enum auth_sasl_result r;

	if (!pop3_session_plaintext_ok(s)) {
		pop3_reply_err(s, "[AUTH] Plain-text login is not allowed without TLS (use STLS)");
		return;
	}
	if (s->user == NULL) {
		pop3_client_error(s, "USER first");
		return;
	}
	if (pop3_auth_blocked(s, s->user))
		return;
	user = store_address_normalize(s->user);
	/* RFC 1939 7: the password is the rest of the line, spaces included. */
	password = sv_dup(cmd->rest);
	r = user == NULL ? AUTH_SASL_FAIL :
			   auth_login_check(user, password, cmd->rest.len,
					    pop3_auth_lookup, s,
					    s->env->auth_cache);
	explicit_bzero(password, cmd->rest.len);
	free(password);
	if (r == AUTH_SASL_OK)
		pop3_auth_login(s, user);
	else
		pop3_auth_failed(s, user != NULL ? user : s->user,
				 r == AUTH_SASL_TEMPFAIL);
	free(user);
}

/* Send a SASL challenge "+ base64". */
static void
pop3_auth_challenge(struct pop3_session *s, const uint8_t *data, size_t len)
{
	struct buf b;

	buf_init(&b, 8192);
	buf_append_str(&b, "+ ");
	base64_encode(&b, data, len);
	buf_append_str(&b, "\r\n");
	conn_write(s->c, b.data, b.len);
	buf_free(&b);
}

static void
pop3_auth_step(struct pop3_session *s, const uint8_t *resp, size_t len)
{
	const uint8_t *chal;
	size_t chal_len;
	enum auth_sasl_result r = auth_sasl_step(s->sasl, resp, len, &chal,
						 &chal_len);
	char *user;

	switch (r) {
	case AUTH_SASL_CONTINUE:
		pop3_auth_challenge(s, chal, chal_len);
		return;
	case AUTH_SASL_OK:
		if (chal_len > 0 && !s->sasl_final) {
			/* SCRAM server-final as a last challenge; the client
			   answers with an empty line (RFC 5034 4). */
			s->sasl_final = true;
			pop3_auth_challenge(s, chal, chal_len);
			return;
		}
		user = xstrdup(auth_sasl_user(s->sasl));
		pop3_auth_login(s, user);
		free(user);
		return;
	case AUTH_SASL_TEMPFAIL:
		pop3_auth_failed(s, auth_sasl_attempted_user(s->sasl), true);
		return;
	case AUTH_SASL_BAD_PROTOCOL:
		pop3_reply_err(s, "Malformed authentication exchange");
		pop3_auth_reset(s);
		return;
	case AUTH_SASL_FAIL:
		break;
	}
	user = auth_sasl_attempted_user(s->sasl) != NULL ?
		       xstrdup(auth_sasl_attempted_user(s->sasl)) : NULL;
	pop3_auth_failed(s, user, false);
	free(user);
}

/* Decode one client response line and feed it (or cancel on "*"). */
static void
pop3_auth_feed(struct pop3_session *s, struct strview line, bool initial)
{
	struct buf b;

	if (sv_eq(line, SV_LIT("*"))) {
		pop3_reply_err(s, "Authentication cancelled");
		pop3_auth_reset(s);
		return;
	}
	buf_init(&b, POP3_SASL_LINE_MAX_BYTES);
	if (!(initial && sv_eq(line, SV_LIT("="))) &&
	    base64_decode(&b, line.p, line.len) < 0) {
		buf_free(&b);
		pop3_reply_err(s, "Invalid base64 in the response");
		pop3_auth_reset(s);
		return;
	}
	pop3_auth_step(s, b.data, b.len);
	if (b.data != NULL)
		explicit_bzero(b.data, b.len);
	buf_free(&b);
}

void
pop3_auth_continue(struct pop3_session *s, struct strview line)
{
	pop3_auth_feed(s, line, false);
}

void
pop3_cmd_auth(struct pop3_session *s, const struct pop3_cmdline *cmd)
{
	char mech[32];

	if (cmd->argc == 0) {
		/* RFC 5034 does not define a bare AUTH; many clients send it
		   to list mechanisms (the pre-CAPA convention). Same list as
		   the CAPA SASL line: PLAIN only where it may be used. */
		pop3_reply_ok(s, "%s", "");
		if (pop3_session_plaintext_ok(s))
			conn_write_str(s->c, "PLAIN\r\n");
		conn_write_str(s->c, "SCRAM-SHA-256\r\n.\r\n");
		return;
	}
	if (cmd->argc > 2 || cmd->extra || cmd->args[0].len >= sizeof(mech)) {
		pop3_client_error(s, "Syntax: AUTH mechanism [initial-response]");
		return;
	}
	memcpy(mech, cmd->args[0].p, cmd->args[0].len);
	mech[cmd->args[0].len] = '\0';
	if (strcasecmp(mech, "PLAIN") != 0 && strcasecmp(mech, "SCRAM-SHA-256") != 0) {
		pop3_reply_err(s, "Unsupported mechanism");
		return;
	}
	if (strcasecmp(mech, "PLAIN") == 0 && !pop3_session_plaintext_ok(s)) {
		pop3_reply_err(s, "[AUTH] Plain-text mechanisms need TLS (use STLS)");
		return;
	}
	if (pop3_auth_blocked(s, NULL))
		return;
	s->sasl = auth_sasl_new(mech, pop3_auth_lookup, s, s->env->auth_cache);
	if (s->sasl == NULL) {
		pop3_reply_err(s, "Unsupported mechanism");
		return;
	}
	if (cmd->argc == 2)
		pop3_auth_feed(s, cmd->args[1], true);
	else
		pop3_auth_step(s, NULL, 0);
}

void
pop3_cmd_stls(struct pop3_session *s, const struct pop3_cmdline *cmd)
{
	if (cmd->argc != 0) {
		pop3_client_error(s, "STLS takes no arguments");
		return;
	}
	if (!pop3_session_stls_ok(s)) {
		pop3_reply_err(s, conn_is_tls(s->c) ? "Already using TLS" :
						      "TLS is not available");
		return;
	}
	pop3_auth_reset(s);
	pop3_reply_ok(s, "Begin TLS negotiation");
	/* Discards whatever the client pipelined after STLS (RFC 2595 3). */
	conn_starttls(s->c, s->env->tls);
}

void
pop3_cmd_capa(struct pop3_session *s, const struct pop3_cmdline *cmd)
{
	(void)cmd;
	pop3_reply_ok(s, "Capability list follows");
	conn_write_str(s->c, "TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n"
			     "PIPELINING\r\nEXPIRE NEVER\r\n"
			     "IMPLEMENTATION tern\r\n");
	if (s->state == POP3_STATE_AUTHORIZATION) {
		if (pop3_session_plaintext_ok(s))
			conn_write_str(s->c, "USER\r\nSASL PLAIN SCRAM-SHA-256\r\n");
		else
			conn_write_str(s->c, "SASL SCRAM-SHA-256\r\n");
		if (pop3_session_stls_ok(s))
			conn_write_str(s->c, "STLS\r\n");
	}
	conn_write_str(s->c, ".\r\n");
}
