/* SMTP AUTH (RFC 4954) on top of the SASL state machine of src/auth/:
   PLAIN, LOGIN and SCRAM-SHA-256, initial responses (4), "*" cancel
   (4: 501), 334 challenges, 235 2.7.0 / 535 5.7.8 / 538 5.7.11 / 454
   4.7.0 replies (6), the SCRAM server-final message sent as a last
   challenge (RFC 4954 4 has no "additional data with success").
   Security: plaintext mechanisms only over TLS or on loopback when the
   config allows; failed logins are throttled per IP and per user and
   answered after a growing delay (timer + paused input, never a sleep);
   SASL payloads are never logged. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/auth.h"
#include "lib/base64.h"
#include "lib/cfg.h"
#include "lib/conn.h"
#include "lib/ev.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "smtp/smtp_int.h"

/* auth_lookup_fn: the account of a (normalised) address. */
static int
smtp_auth_lookup(void *ctx, const char *username, struct auth_user *user_r)
{
	struct smtp_session *s = ctx;
	struct store_account acct;
	char *norm = store_address_normalize(username);
	int r;

	if (norm == NULL)
		return 0;
	memset(&acct, 0, sizeof(acct));
	r = store_account_get(s->env->store, norm, &acct);
	free(norm);
	if (r < 0)
		return -1;
	if (r == 0)
		return 0;
	user_r->name = acct.address;
	user_r->password_hash = acct.password_hash;
	user_r->scram_secrets = acct.scram;
	acct.address = acct.password_hash = acct.scram = NULL;
	store_account_clear(&acct);
	return 1;
}

void
smtp_auth_clear(struct smtp_session *s)
{
	auth_sasl_free(&s->sasl);
	s->sasl_final_sent = false;
	if (s->delay != NULL)
		ev_timer_del(s->env->loop, &s->delay);
	free(s->delayed_reply);
	s->delayed_reply = NULL;
}

static void
smtp_auth_end(struct smtp_session *s)
{
	auth_sasl_free(&s->sasl);
	s->sasl_final_sent = false;
	s->state = SMTP_S_READY;
}

static void
smtp_auth_delay_fired(struct ev_loop *loop, void *ctx)
{
	struct smtp_session *s = ctx;

	s->delay = NULL;
	if (s->delayed_is_error)
		smtp_reply_error(s, "%s", s->delayed_reply);
	else
		smtp_reply(s, "%s", s->delayed_reply);
	free(s->delayed_reply);
	s->delayed_reply = NULL;
	s->state = s->delayed_state;
	smtp_session_resume(s);
}

/* Send reply now, or after delay ms with input paused (the session
   waits, so nothing pipelined runs before the answer). */
static void
smtp_auth_answer(struct smtp_session *s, const char *reply, bool error,
		 unsigned int delay, unsigned int next_state)
{
	if (delay == 0) {
		s->state = next_state;
		if (error)
			smtp_reply_error(s, "%s", reply);
		else
			smtp_reply(s, "%s", reply);
		return;
	}
	s->state = SMTP_S_WAIT;
	s->delayed_state = next_state;
	s->delayed_reply = xstrdup(reply);
	s->delayed_is_error = error;
	conn_pause_input(s->c);
	s->delay = ev_timer_add(s->env->loop, delay, smtp_auth_delay_fired, s);
}

/* Per IP and per account (RFC 4954 has no rule; as IMAP and POP3 do):
   past the failure limit the answer is a temporary failure whatever the
   credentials, so a correct guess is never revealed. True: replied. */
static bool
smtp_auth_blocked(struct smtp_session *s, const char *user)
{
	char safe[128];

	if (!auth_throttle_blocked(s->env->throttle, conn_peer_addr(s->c),
				   user, ev_now(s->env->loop)))
		return false;
	log_info("smtp", smtp_session_id(s), "auth-blocked ip=%s user=%s",
		 conn_peer_addr(s->c),
		 log_sanitize(safe, sizeof(safe), user != NULL ? user : "",
			      user != NULL ? strlen(user) : 0));
	auth_throttle_failure(s->env->throttle, conn_peer_addr(s->c), user,
			      ev_now(s->env->loop));
	smtp_auth_end(s);
	smtp_reply(s, "454 4.7.0 Too many failed logins, try again later");
	return true;
}

static void
smtp_auth_send_challenge(struct smtp_session *s, const uint8_t *data,
			 size_t len, unsigned int delay)
{
	struct buf b;

	buf_init(&b, SMTP_AUTH_LINE_MAX);
	if (buf_append_str(&b, "334 ") < 0 ||
	    base64_encode(&b, data, len) < 0) {
		buf_free(&b);
		smtp_auth_end(s);
		smtp_reply(s, "454 4.7.0 Temporary authentication failure");
		return;
	}
	smtp_auth_answer(s, buf_cstr(&b), false, delay, SMTP_S_AUTH);
	buf_free(&b);
}

/* Successful login: load the account and its plan. The 235 waits
   delay ms, as long as a failure would (earlier failures of this IP or
   account), so parallel guessing sees no early success. */
static void
smtp_auth_success(struct smtp_session *s, const char *user,
		  unsigned int delay)
{
	struct store_account acct;
	time_t now = ev_now(s->env->loop);
	int r;

	memset(&acct, 0, sizeof(acct));
	r = store_account_get(s->env->store, user, &acct);
	if (r > 0) {
		memset(&s->plan, 0, sizeof(s->plan));
		if (acct.plan != NULL &&
		    store_plan_get(s->env->store, acct.plan, &s->plan) < 0)
			r = -1;
	}
	if (r <= 0) {
		store_account_clear(&acct);
		smtp_auth_end(s);
		smtp_reply(s, "454 4.7.0 Temporary authentication failure");
		return;
	}
	auth_throttle_success(s->env->throttle, conn_peer_addr(s->c), user,
			      now);
	s->authed = true;
	s->account_id = acct.id;
	free(s->account);
	s->account = xstrdup(acct.address);
	store_account_clear(&acct);
	smtp_auth_end(s);
	log_info("smtp", smtp_session_id(s), "auth-ok user=%s delay=%u",
		 s->account, delay);
	smtp_auth_answer(s, "235 2.7.0 Authentication successful", false,
			 delay, SMTP_S_READY);
}

static void
smtp_auth_failure(struct smtp_session *s, const char *reply)
{
	char user[128];
	const char *attempted = auth_sasl_attempted_user(s->sasl);
	time_t now = ev_now(s->env->loop);
	unsigned int delay;

	if (smtp_auth_blocked(s, attempted))
		return;
	log_sanitize(user, sizeof(user), attempted != NULL ? attempted : "",
		     attempted != NULL ? strlen(attempted) : 0);
	auth_throttle_failure(s->env->throttle, conn_peer_addr(s->c),
			      attempted, now);
	delay = auth_throttle_delay_ms(s->env->throttle, conn_peer_addr(s->c),
				       attempted, now);
	log_info("smtp", smtp_session_id(s), "auth-failed user=%s delay=%u",
		 user, delay);
	smtp_auth_end(s);
	smtp_auth_answer(s, reply, true, delay, SMTP_S_READY);
}

static void
smtp_auth_step(struct smtp_session *s, const uint8_t *resp, size_t len)
{
	const uint8_t *chal;
	size_t chal_len;
	enum auth_sasl_result r;
	const char *user;
	unsigned int delay = 0;

	r = auth_sasl_step(s->sasl, resp, len, &chal, &chal_len);
	switch (r) {
	case AUTH_SASL_CONTINUE:
		smtp_auth_send_challenge(s, chal, chal_len, 0);
		return;
	case AUTH_SASL_OK:
		user = auth_sasl_user(s->sasl);
		/* The SCRAM server-final message proves the password was
		   right: the block and the delay come before it. */
		if (!s->sasl_final_sent) {
			if (smtp_auth_blocked(s, user))
				return;
			delay = auth_throttle_delay_ms(s->env->throttle,
						       conn_peer_addr(s->c),
						       user,
						       ev_now(s->env->loop));
		}
		if (chal_len > 0 && !s->sasl_final_sent) {
			/* SCRAM server-final as a challenge; the client
			   answers with an empty line. */
			s->sasl_final_sent = true;
			smtp_auth_send_challenge(s, chal, chal_len, delay);
			return;
		}
		smtp_auth_success(s, user, delay);
		return;
	case AUTH_SASL_TEMPFAIL:
		smtp_auth_end(s);
		smtp_reply(s, "454 4.7.0 Temporary authentication failure");
		return;
	case AUTH_SASL_FAIL:
		smtp_auth_failure(s, "535 5.7.8 Authentication credentials "
				     "invalid");
		return;
	case AUTH_SASL_BAD_PROTOCOL:
		smtp_auth_failure(s, "501 5.5.2 Malformed authentication "
				     "data");
		return;
	}
}

/* base64 text, or "=" for empty (initial response only). */
static void
smtp_auth_feed(struct smtp_session *s, struct strview text, bool initial)
{
	struct buf b;

	buf_init(&b, SMTP_AUTH_LINE_MAX);
	if (!(initial && text.len == 1 && text.p[0] == '=') &&
	    base64_decode(&b, text.p, text.len) < 0) {
		buf_free(&b);
		smtp_auth_end(s);
		smtp_reply_error(s, "501 5.5.2 Cannot decode response");
		return;
	}
	smtp_auth_step(s, b.data, b.len);
	buf_free(&b);
}

void
smtp_auth_cmd(struct smtp_session *s, struct strview args)
{
	struct strview mech, ir;
	bool has_ir;
	char name[SMTP_MECH_MAX + 1];

	if (s->authed) {
		smtp_reply_error(s, "503 5.5.1 Already authenticated");
		return;
	}
	if (s->tx.active) {
		smtp_reply_error(s, "503 5.5.1 AUTH not allowed during a "
				    "mail transaction");
		return;
	}
	if (smtp_parse_auth(args, &mech, &ir, &has_ir) != SMTP_PARSE_OK) {
		smtp_reply_error(s, "501 5.5.4 Syntax: AUTH mechanism "
				    "[initial-response]");
		return;
	}
	if (!smtp_session_auth_allowed(s)) {
		smtp_reply_error(s, "538 5.7.11 Encryption required for "
				    "requested authentication mechanism");
		return;
	}
	if (auth_throttle_blocked(s->env->throttle, conn_peer_addr(s->c), NULL,
				  ev_now(s->env->loop))) {
		log_info("smtp", smtp_session_id(s), "auth-blocked ip=%s",
			 conn_peer_addr(s->c));
		smtp_reply(s, "454 4.7.0 Too many failed logins, try again "
			      "later");
		return;
	}
	memcpy(name, mech.p, mech.len);
	name[mech.len] = '\0';
	s->sasl = auth_sasl_new(name, smtp_auth_lookup, s,
				s->env->auth_cache);
	if (s->sasl == NULL) {
		smtp_reply_error(s, "504 5.5.4 Unrecognized authentication "
				    "type");
		return;
	}
	if (has_ir)
		smtp_auth_feed(s, ir, true);
	else
		smtp_auth_step(s, NULL, 0);
}

void
smtp_auth_response(struct smtp_session *s, struct strview line)
{
	if (line.len == 1 && line.p[0] == '*') {
		smtp_auth_end(s);
		smtp_reply_error(s, "501 5.0.0 Authentication cancelled");
		return;
	}
	smtp_auth_feed(s, line, false);
}
