/* Tests for lib/cfg: the config parser and its error messages. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "lib/cfg.h"

#define CERT "certificate d {\ncert = c.pem\nkey = k.pem\n}\n"

static struct cfg *
parse(const char *text, char *err, size_t errlen)
{
	return cfg_parse("t.conf", text, strlen(text), err, errlen);
}

static void
test_cfg_defaults(void)
{
	char err[256];
	struct cfg *c = parse(CERT, err, sizeof(err));

	test_assert(c != NULL);
	if (c == NULL) {
		fprintf(stderr, "%s\n", err);
		return;
	}
	test_assert(c->listener_count == 7);
	test_assert(c->smtp_max_message_bytes == 50u << 20);
	test_assert(c->imap_idle_timeout_ms >= 30 * 60 * 1000);
	test_assert(cfg_plan_find(c, "essential")->quota_bytes == 10ULL << 30);
	test_assert(cfg_plan_find(c, "standard")->send_per_hour == 3000);
	test_assert(cfg_plan_find(c, "professional")->quota_bytes == 60ULL << 30);
	test_assert(!c->plaintext_auth_loopback);
	cfg_free(&c);
	test_assert(c == NULL);
}

static void
test_cfg_values(void)
{
	static const char text[] =
		"# comment\n"
		"hostname = mx.example.org\n"
		"data_dir = /srv/tern\n"
		"plaintext_auth_loopback = yes\n"
		"smtp_max_message_size = 25M\n"
		"smtp_timeout = 90s\n"
		"queue_max_age = 2d\n"
		"log_level = debug\n"
		"\n"
		"listener in {\n"
		"\taddress = 127.0.0.1\n"
		"\tport = 2525\n"
		"\tprotocol = smtp\n"
		"}\n"
		"listener sub {\r\n"
		"  port = 4650\r\n"
		"  protocol = submission\r\n"
		"  tls = implicit\r\n"
		"}\r\n"
		"certificate main {\n cert = /etc/c.pem\n key = k.pem\n}\n"
		"plan tiny {\n quota = 1M\n send_per_hour = 5\n}\n"
		"plan essential {\n quota = 2G\n}\n";
	char err[256];
	struct cfg *c = parse(text, err, sizeof(err));

	test_assert(c != NULL);
	if (c == NULL) {
		fprintf(stderr, "%s\n", err);
		return;
	}
	test_assert_strcmp(c->hostname, "mx.example.org");
	test_assert_strcmp(c->data_dir, "/srv/tern");
	test_assert(c->plaintext_auth_loopback);
	test_assert(c->smtp_max_message_bytes == 25u << 20);
	test_assert(c->smtp_timeout_ms == 90000);
	test_assert(c->queue_max_age_ms == 2ULL * 86400000);
	test_assert(c->log_level == LOG_DEBUG);
	test_assert(c->listener_count == 2);
	test_assert(c->listeners[0].port == 2525);
	test_assert(c->listeners[0].tls == CFG_TLS_NONE);
	test_assert_strcmp(c->listeners[0].address, "127.0.0.1");
	test_assert(c->listeners[1].protocol == CFG_PROTO_SUBMISSION);
	test_assert(c->listeners[1].tls == CFG_TLS_IMPLICIT);
	test_assert_strcmp(c->listeners[1].address, "0.0.0.0");
	test_assert_strcmp(c->certs[0].cert_file, "/etc/c.pem");
	/* relative to the config file's directory ("t.conf" has none) */
	test_assert_strcmp(c->certs[0].key_file, "k.pem");
	test_assert(cfg_plan_find(c, "tiny")->quota_bytes == 1u << 20);
	test_assert(cfg_plan_find(c, "tiny")->send_per_hour == 5);
	test_assert(cfg_plan_find(c, "essential")->quota_bytes == 2ULL << 30);
	test_assert(c->plan_count == 4);
	cfg_free(&c);
}

static void
test_cfg_errors(void)
{
	static const struct {
		const char *text, *error;
	} cases[] = {
		{ "bogus = 1\n", "t.conf:1: unknown key 'bogus'" },
		{ "\n\nworkers = many\n", "t.conf:3: workers: expected a number" },
		{ "workers = 100000\n", "t.conf:1: workers: number out of range" },
		{ "workers = -1\n", "t.conf:1: workers: expected a number" },
		{ "smtp_max_message_size = 10Q\n",
		  "t.conf:1: smtp_max_message_size: expected a size like 512K, 50M or 10G" },
		{ "smtp_timeout = soon\n",
		  "t.conf:1: smtp_timeout: expected a duration like 30s, 5m, 4h or 5d" },
		{ "imap_idle_timeout = 5m\n",
		  "t.conf:1: imap_idle_timeout: duration out of range" },
		{ "plaintext_auth_loopback = maybe\n",
		  "t.conf:1: plaintext_auth_loopback: expected yes or no" },
		{ "hostname\n", "t.conf:1: expected 'key = value'" },
		{ "}\n", "t.conf:1: '}' without an open block" },
		{ "listener x {\nport = 1\n", "t.conf:2: block listener is not closed with '}'" },
		{ "listener x {\nprotocol = smtp\n}\n", "t.conf:3: listener x: port is required" },
		{ "listener x {\nport = 1\nprotocol = ftp\n}\n",
		  "t.conf:3: protocol: expected smtp, submission, imap or pop3" },
		{ "listener x {\nport = 70000\n}\n", "t.conf:2: port: number out of range" },
		{ "listener x {\nhostname = a\n}\n", "t.conf:2: unknown key 'hostname' in listener" },
		{ "listener x {\nport = 1\nprotocol = imap\ntls = implicit\n}\n",
		  "t.conf:5: listener x uses TLS but no certificate block is configured" },
		{ "widget x {\n}\n", "t.conf:1: unknown block type 'widget'" },
		{ "listener a/b {\n}\n",
		  "t.conf:1: listener needs a name of letters, digits, '-', '_' or '.'" },
		{ "listener x {\nlistener y {\n", "t.conf:2: blocks cannot be nested" },
		{ "certificate c {\ncert = a\n}\n", "t.conf:3: certificate c: cert and key are required" },
		{ "hostname = a\x01\n", "t.conf:1: control character in line" },
		{ "listener a {\nport=1\nprotocol=smtp\n}\nlistener b {\nport=1\nprotocol=imap\n}\n",
		  "t.conf:8: listeners a and b use the same address and port" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[256] = "";
		struct cfg *c = parse(cases[i].text, err, sizeof(err));
		test_assert_idx(c == NULL, i);
		test_assert_strcmp(err, cases[i].error);
		cfg_free(&c);
	}
}

static void
test_cfg_dump_roundtrip(void)
{
	char err[256], *text = NULL;
	size_t len = 0;
	struct cfg *c = parse("hostname = h.example\nsmtp_timeout = 90s\n" CERT, err,
			      sizeof(err));
	FILE *f = open_memstream(&text, &len);
	struct cfg *c2;

	cfg_dump(c, f, false);
	fclose(f);
	c2 = parse(text, err, sizeof(err));
	test_assert(c2 != NULL);
	if (c2 != NULL) {
		test_assert_strcmp(c2->hostname, "h.example");
		test_assert(c2->smtp_timeout_ms == 90000);
		test_assert(c2->listener_count == c->listener_count);
	}
	free(text);
	text = NULL;
	f = open_memstream(&text, &len);
	cfg_dump(c, f, true);
	fclose(f);
	test_assert(strstr(text, "smtp_timeout = 90s") != NULL);
	test_assert(strstr(text, "smtp_max_recipients") == NULL);
	free(text);
	cfg_free(&c);
	cfg_free(&c2);
}

static const struct test_case tests[] = {
	{ "cfg_defaults", test_cfg_defaults },
	{ "cfg_values", test_cfg_values },
	{ "cfg_errors", test_cfg_errors },
	{ "cfg_dump_roundtrip", test_cfg_dump_roundtrip },
	{ NULL, NULL },
};

int
main(int argc, char **argv)
{
	return test_run(argc, argv, tests);
}
