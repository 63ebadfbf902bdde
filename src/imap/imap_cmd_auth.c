/* Commands of any state and of login: CAPABILITY, NOOP, LOGOUT (RFC 9051
   6.1), STARTTLS, AUTHENTICATE with SASL-IR (RFC 9051 6.2, RFC 4959),
   LOGIN (6.2.3; refused without TLS unless loopback is configured:
   LOGINDISABLED / PRIVACYREQUIRED), ENABLE (RFC 5161, 9051 6.3.1;
   CONDSTORE and QRESYNC, RFC 7162 3.1, 3.2.3), ID
   (RFC 2971) and NAMESPACE (RFC 2342). Failed logins are slowed by the
   auth throttle with a loop timer, never by sleeping; the delay comes
   before the answer, whatever it is, so timing tells nothing. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "imap/imap_int.h"
#include "lib/base64.h"
#include "lib/cfg.h"
#include "lib/conn.h"
#include "lib/ev.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "store/store.h"

enum imap_cmd_res
imap_cmd_capability(struct imap_session *s, struct imap_cmd *cmd)
{
	imap_session_printf(s, "* CAPABILITY %s", imap_session_capability(s));
	imap_cmd_ok(cmd, "OK Capability completed.");
	return IMAP_CMD_DONE;
}

enum imap_cmd_res
imap_cmd_noop(struct imap_session *s, struct imap_cmd *cmd)
{
	(void)s;
	imap_cmd_ok(cmd, "OK NOOP completed.");
	return IMAP_CMD_DONE;
}

static void
imap_logout_after(struct imap_session *s)
{
	s->closing = true;
	s->state = IMAP_STATE_LOGOUT;
	conn_close(s->c);
}

enum imap_cmd_res
imap_cmd_logout(struct imap_session *s, struct imap_cmd *cmd)
{
	imap_session_printf(s, "* BYE Logging out");
	imap_cmd_ok(cmd, "OK Logout completed.");
	cmd->after = imap_logout_after;
	return IMAP_CMD_DONE;
}

static void
imap_starttls_after(struct imap_session *s)
{
	if (conn_starttls(s->c, s->env->tls) < 0)
		imap_session_bye(s, "TLS initialization failed.");
}

enum imap_cmd_res
imap_cmd_starttls(struct imap_session *s, struct imap_cmd *cmd)
{
	if (cmd->argc != 0)
		imap_cmd_bad(cmd, "BAD STARTTLS takes no arguments.");
	else if (conn_is_tls(s->c))
		imap_cmd_bad(cmd, "BAD TLS is already active.");
	else if (s->env->tls == NULL)
		imap_cmd_bad(cmd, "BAD TLS support isn't enabled.");
	else {
		imap_cmd_ok(cmd, "OK Begin TLS negotiation now.");
		cmd->after = imap_starttls_after;
	}
	return IMAP_CMD_DONE;
}

/* ---- account lookup for auth ---- */

static int
imap_auth_lookup(void *ctx, const char *username, struct auth_user *user_r)
{
	struct imap_session *s = ctx;
	struct store_account acct;
	char *norm = store_address_normalize(username);
	int r;

	if (norm == NULL)
		return 0;
	r = store_account_get(s->env->store, norm, &acct);
	free(norm);
	if (r < 0)
		return -1;
	if (r == 0)
		return 0;
	user_r->name = xstrdup(acct.address);
	user_r->password_hash = acct.password_hash != NULL ?
					xstrdup(acct.password_hash) : NULL;
	user_r->scram_secrets = acct.scram != NULL ? xstrdup(acct.scram) :
						     NULL;
	store_account_clear(&acct);
	return 1;
}

static void
imap_auth_timer(struct ev_loop *loop, void *ctx)
{
	struct imap_session *s = ctx;

	(void)loop;
	s->delay_timer = NULL;
	imap_session_resume(s);
}

/* Run fn now, or after the throttle's delay for this IP and user. */
static enum imap_cmd_res
imap_auth_delay(struct imap_session *s, struct imap_cmd *cmd,
		const char *user, imap_cmd_fn *fn)
{
	struct auth_throttle *t = s->env->throttle;
	const char *ip = conn_peer_addr(s->c);
	time_t now = ev_now(s->env->loop);
	unsigned delay;

	if (t == NULL)
		return fn(s, cmd);
	if (auth_throttle_blocked(t, ip, user, now)) {
		imap_cmd_no(cmd, "NO [UNAVAILABLE] Too many failed logins, "
				 "try again later.");
		return IMAP_CMD_DONE;
	}
	delay = auth_throttle_delay_ms(t, ip, user, now);
	if (delay == 0)
		return fn(s, cmd);
	cmd->cont = fn;
	s->delay_timer = ev_timer_add(s->env->loop, delay, imap_auth_timer, s);
	return IMAP_CMD_WAIT;
}

static void
imap_auth_failed(struct imap_session *s, const char *user, const char *mech)
{
	char safe[128];

	if (s->env->throttle != NULL)
		auth_throttle_failure(s->env->throttle, conn_peer_addr(s->c),
				      user, ev_now(s->env->loop));
	log_info("imap", s->id, "login-failed mech=%s user=%s ip=%s", mech,
		 user != NULL ? log_sanitize(safe, sizeof(safe), user,
					     strlen(user)) : "-",
		 conn_peer_addr(s->c));
}

static void
imap_auth_succeeded(struct imap_session *s, struct imap_cmd *cmd,
		    const char *user)
{
	if (s->env->throttle != NULL)
		auth_throttle_success(s->env->throttle, conn_peer_addr(s->c),
				      user, ev_now(s->env->loop));
	if (imap_session_login(s, user) < 0) {
		imap_cmd_no(cmd, "NO [UNAVAILABLE] Temporary failure, try "
				 "again later.");
		return;
	}
	imap_cmd_reply(cmd, "OK [CAPABILITY %s] Logged in",
		       imap_session_capability(s));
}

/* ---- LOGIN ---- */

static enum imap_cmd_res
imap_login_check(struct imap_session *s, struct imap_cmd *cmd)
{
	const struct imap_arg *u = &cmd->args[0], *p = &cmd->args[1];
	enum auth_sasl_result r;
	char *norm;

	r = auth_login_check(u->str, p->str, p->len, imap_auth_lookup, s,
			     s->env->auth_cache);
	switch (r) {
	case AUTH_SASL_OK:
		norm = store_address_normalize(u->str);
		imap_auth_succeeded(s, cmd, norm != NULL ? norm : u->str);
		free(norm);
		break;
	case AUTH_SASL_TEMPFAIL:
		imap_cmd_no(cmd, "NO [UNAVAILABLE] Temporary authentication "
				 "failure.");
		break;
	default:
		imap_auth_failed(s, u->str, "LOGIN");
		imap_cmd_no(cmd, "NO [AUTHENTICATIONFAILED] Authentication "
				 "failed.");
		break;
	}
	return IMAP_CMD_DONE;
}

enum imap_cmd_res
imap_cmd_login(struct imap_session *s, struct imap_cmd *cmd)
{
	if (cmd->argc != 2 || !imap_arg_is_astring(&cmd->args[0]) ||
	    !imap_arg_is_astring(&cmd->args[1])) {
		imap_cmd_bad(cmd, "BAD Invalid LOGIN arguments.");
		return IMAP_CMD_DONE;
	}
	if (!imap_session_plaintext_ok(s)) {
		imap_cmd_no(cmd, "NO [PRIVACYREQUIRED] Plaintext "
				 "authentication disallowed on non-secure "
				 "(SSL/TLS) connections.");
		return IMAP_CMD_DONE;
	}
	if (cmd->args[0].len > AUTH_USERNAME_MAX_BYTES ||
	    memchr(cmd->args[0].str, '\0', cmd->args[0].len) != NULL) {
		imap_cmd_no(cmd, "NO [AUTHENTICATIONFAILED] Authentication "
				 "failed.");
		return IMAP_CMD_DONE;
	}
	return imap_auth_delay(s, cmd, cmd->args[0].str, imap_login_check);
}

/* ---- AUTHENTICATE ---- */

struct imap_auth_ctx {
	const char *mech;
	struct buf ir;
	bool has_ir;
	bool final_sent; /* SCRAM server-final sent as a challenge */
};

static enum imap_cmd_res
imap_auth_result(struct imap_session *s, struct imap_cmd *cmd,
		 enum auth_sasl_result r, const uint8_t *chal, size_t len)
{
	struct imap_auth_ctx *ac = cmd->ctx;
	struct buf b;

	if (r == AUTH_SASL_CONTINUE || (r == AUTH_SASL_OK && len > 0)) {
		buf_init(&b, 16 * 1024);
		if (buf_append_str(&b, "+ ") < 0 ||
		    base64_encode(&b, chal, len) < 0 ||
		    buf_append_str(&b, "\r\n") < 0) {
			buf_free(&b);
			r = AUTH_SASL_BAD_PROTOCOL;
		} else {
			imap_session_write(s, b.data, b.len);
			buf_free(&b);
			if (r == AUTH_SASL_OK)
				ac->final_sent = true;
			s->mode = IMAP_INPUT_SASL;
			return IMAP_CMD_WAIT;
		}
	}
	s->mode = IMAP_INPUT_BUSY;
	if (r == AUTH_SASL_OK) {
		imap_auth_succeeded(s, cmd, auth_sasl_user(s->sasl));
	} else if (r == AUTH_SASL_TEMPFAIL) {
		imap_cmd_no(cmd, "NO [UNAVAILABLE] Temporary authentication "
				 "failure.");
	} else {
		imap_auth_failed(s, auth_sasl_attempted_user(s->sasl),
				 ac->mech);
		imap_cmd_no(cmd, "NO [AUTHENTICATIONFAILED] Authentication "
				 "failed.");
	}
	auth_sasl_free(&s->sasl);
	return IMAP_CMD_DONE;
}

static enum imap_cmd_res
imap_auth_begin(struct imap_session *s, struct imap_cmd *cmd)
{
	struct imap_auth_ctx *ac = cmd->ctx;
	const uint8_t *chal = NULL;
	size_t len = 0;
	enum auth_sasl_result r;

	r = auth_sasl_step(s->sasl, ac->ir.data, ac->ir.len, &chal, &len);
	buf_free(&ac->ir);
	return imap_auth_result(s, cmd, r, chal, len);
}

void
imap_auth_sasl_line(struct imap_session *s, struct strview line)
{
	struct imap_cmd *cmd = s->cmd;
	const uint8_t *chal = NULL;
	size_t len = 0;
	enum auth_sasl_result r;
	struct buf dec;

	if (line.len == 1 && line.p[0] == '*') {
		auth_sasl_free(&s->sasl);
		imap_cmd_bad(cmd, "BAD Authentication aborted by client.");
		s->mode = IMAP_INPUT_BUSY;
		imap_session_cmd_done(s);
		return;
	}
	buf_init(&dec, IMAP_SASL_LINE_MAX_BYTES);
	if (base64_decode(&dec, line.p, line.len) < 0) {
		buf_free(&dec);
		auth_sasl_free(&s->sasl);
		imap_cmd_bad(cmd, "BAD Invalid base64 data in continued "
				  "response.");
		s->mode = IMAP_INPUT_BUSY;
		imap_session_cmd_done(s);
		return;
	}
	r = auth_sasl_step(s->sasl, dec.data, dec.len, &chal, &len);
	buf_free(&dec);
	if (imap_auth_result(s, cmd, r, chal, len) == IMAP_CMD_DONE)
		imap_session_cmd_done(s);
}

enum imap_cmd_res
imap_cmd_authenticate(struct imap_session *s, struct imap_cmd *cmd)
{
	struct imap_auth_ctx *ac;
	const char *mech;

	if (cmd->argc < 1 || cmd->argc > 2 ||
	    cmd->args[0].type != IMAP_ARG_ATOM ||
	    (cmd->argc == 2 && cmd->args[1].type != IMAP_ARG_ATOM)) {
		imap_cmd_bad(cmd, "BAD Invalid AUTHENTICATE arguments.");
		return IMAP_CMD_DONE;
	}
	mech = cmd->args[0].str;
	if ((strcasecmp(mech, "PLAIN") == 0 || strcasecmp(mech, "LOGIN") == 0) &&
	    !imap_session_plaintext_ok(s)) {
		imap_cmd_no(cmd, "NO [PRIVACYREQUIRED] Plaintext "
				 "authentication disallowed on non-secure "
				 "(SSL/TLS) connections.");
		return IMAP_CMD_DONE;
	}
	s->sasl = auth_sasl_new(mech, imap_auth_lookup, s, s->env->auth_cache);
	if (s->sasl == NULL) {
		imap_cmd_no(cmd, "NO Unsupported authentication mechanism.");
		return IMAP_CMD_DONE;
	}
	ac = arena_zalloc(cmd->arena, sizeof(*ac));
	ac->mech = arena_strdup(cmd->arena, mech);
	buf_init(&ac->ir, IMAP_SASL_LINE_MAX_BYTES);
	cmd->ctx = ac;
	if (cmd->argc == 2 && strcmp(cmd->args[1].str, "=") != 0 &&
	    base64_decode(&ac->ir, cmd->args[1].str, cmd->args[1].len) < 0) {
		buf_free(&ac->ir);
		auth_sasl_free(&s->sasl);
		imap_cmd_bad(cmd, "BAD Invalid base64 initial response.");
		return IMAP_CMD_DONE;
	}
	return imap_auth_delay(s, cmd, NULL, imap_auth_begin);
}

/* ---- ENABLE, ID, NAMESPACE ---- */

enum imap_cmd_res
imap_cmd_enable(struct imap_session *s, struct imap_cmd *cmd)
{
	struct buf b;
	size_t i;

	if (cmd->argc == 0) {
		imap_cmd_bad(cmd, "BAD ENABLE needs arguments.");
		return IMAP_CMD_DONE;
	}
	buf_init(&b, 1024);
	buf_append_str(&b, "* ENABLED");
	for (i = 0; i < cmd->argc; i++) {
		const struct imap_arg *a = &cmd->args[i];

		if (a->type != IMAP_ARG_ATOM) {
			buf_free(&b);
			imap_cmd_bad(cmd, "BAD Invalid ENABLE argument.");
			return IMAP_CMD_DONE;
		}
		if (strcasecmp(a->str, "IMAP4rev2") == 0 && !s->rev2) {
			s->rev2 = true;
			s->utf8 = true;
			buf_append_str(&b, " IMAP4rev2");
		} else if (strcasecmp(a->str, "UTF8=ACCEPT") == 0 &&
			   !s->utf8_accept) {
			/* also after IMAP4rev2 (which implies UTF-8), so
			   a client asking for both sees both */
			s->utf8 = true;
			s->utf8_accept = true;
			buf_append_str(&b, " UTF8=ACCEPT");
		} else if (strcasecmp(a->str, "CONDSTORE") == 0 &&
			   !s->condstore) {
			imap_condstore_enable(s);
			buf_append_str(&b, " CONDSTORE");
		} else if (strcasecmp(a->str, "QRESYNC") == 0 && !s->qresync) {
			/* RFC 7162 3.2.3: QRESYNC implies CONDSTORE */
			s->qresync = true;
			imap_condstore_enable(s);
			buf_append_str(&b, " QRESYNC");
		}
	}
	imap_session_printf(s, "%s", buf_cstr(&b));
	buf_free(&b);
	imap_cmd_ok(cmd, "OK Enabled.");
	return IMAP_CMD_DONE;
}

enum imap_cmd_res
imap_cmd_id(struct imap_session *s, struct imap_cmd *cmd)
{
	const struct imap_arg *a;
	char name[64] = "-";
	size_t i;

	if (cmd->argc != 1) {
		imap_cmd_bad(cmd, "BAD Invalid ID arguments.");
		return IMAP_CMD_DONE;
	}
	a = &cmd->args[0];
	if (a->type == IMAP_ARG_LIST) {
		if (a->count % 2 != 0 || a->count > IMAP_ID_PARAMS_MAX * 2) {
			imap_cmd_bad(cmd, "BAD Invalid ID parameters.");
			return IMAP_CMD_DONE;
		}
		for (i = 0; i + 1 < a->count; i += 2) {
			if (!imap_arg_is_string(&a->list[i])) {
				imap_cmd_bad(cmd, "BAD Invalid ID parameters.");
				return IMAP_CMD_DONE;
			}
			if (strcasecmp(a->list[i].str, "name") == 0 &&
			    imap_arg_is_string(&a->list[i + 1]))
				log_sanitize(name, sizeof(name),
					     a->list[i + 1].str,
					     a->list[i + 1].len);
		}
	} else if (!imap_arg_is_nil(a)) {
		imap_cmd_bad(cmd, "BAD Invalid ID arguments.");
		return IMAP_CMD_DONE;
	}
	log_info("imap", s->id, "id client=%s", name);
	imap_session_printf(s, "* ID (\"name\" \"tern\" \"vendor\" \"tern\")");
	imap_cmd_ok(cmd, "OK ID completed.");
	return IMAP_CMD_DONE;
}

enum imap_cmd_res
imap_cmd_namespace(struct imap_session *s, struct imap_cmd *cmd)
{
	imap_session_printf(s, "* NAMESPACE ((\"\" \"/\")) NIL NIL");
	imap_cmd_ok(cmd, "OK Namespace completed.");
	return IMAP_CMD_DONE;
}
