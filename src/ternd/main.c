/* ternd: command line.
     ternd [-c FILE]                 run with a config (default
                                     /etc/tern/tern.conf)
     ternd --check-config [-c FILE]  validate and exit
     ternd --quickstart DIR [--domain DOMAIN] [--ports BASE] [--listen ADDR]
                                     create or reuse DIR and run */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "lib/cfg.h"
#include "lib/log.h"
#include "lib/strview.h"
#include "ternd/ternd.h"

#define TERND_DEFAULT_CONFIG "/etc/tern/tern.conf"

static void
usage(FILE *out)
{
	fprintf(out,
		"usage: ternd [-c FILE]\n"
		"       ternd --check-config [-c FILE]\n"
		"       ternd --quickstart DIR [--domain DOMAIN] [--ports BASE] [--listen ADDR]\n"
		"       ternd --config-doc\n");
}

static int
parse_args(int argc, char **argv, struct ternd_options *opt)
{
	opt->config_path = TERND_DEFAULT_CONFIG;
	opt->quickstart_base = -1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *next = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t n;

		if (strcmp(a, "--check-config") == 0) {
			opt->check_only = true;
			continue;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			exit(0);
		}
		if (next == NULL)
			return -1;
		if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
			opt->config_path = next;
		} else if (strcmp(a, "--quickstart") == 0) {
			opt->quickstart_dir = next;
		} else if (strcmp(a, "--domain") == 0) {
			opt->quickstart_domain = next;
		} else if (strcmp(a, "--listen") == 0) {
			opt->quickstart_listen = next;
		} else if (strcmp(a, "--ports") == 0) {
			if (parse_u64_cstr(next, 64000, &n) < 0) {
				fprintf(stderr, "ternd: --ports takes a number up to 64000\n");
				return -1;
			}
			opt->quickstart_base = (long)n;
		} else {
			return -1;
		}
		i++;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct ternd_options opt = { 0 };
	struct cfg *cfg;
	char err[1024];
	char *qs_config = NULL;
	int ret;

	if (argc == 2 && strcmp(argv[1], "--config-doc") == 0) {
		cfg_doc(stdout);
		return 0;
	}
	if (parse_args(argc, argv, &opt) < 0) {
		usage(stderr);
		return 2;
	}
	log_set_process("master");
	OPENSSL_init_ssl(0, NULL);
	if (opt.quickstart_dir != NULL) {
		qs_config = quickstart_prepare(&opt);
		if (qs_config == NULL)
			return 1;
		opt.config_path = qs_config;
	}
	cfg = cfg_load(opt.config_path, err, sizeof(err));
	if (cfg == NULL) {
		fprintf(stderr, "%s\n", err);
		free(qs_config);
		return 1;
	}
	if (opt.check_only) {
		printf("%s: ok\n", opt.config_path);
		cfg_free(&cfg);
		free(qs_config);
		return 0;
	}
	log_set_level(cfg->log_level);
	if (opt.quickstart_dir != NULL)
		quickstart_summary(cfg, opt.quickstart_dir);
	ret = master_run(&opt, cfg);
	cfg_free(&cfg);
	free(qs_config);
	return ret;
}
