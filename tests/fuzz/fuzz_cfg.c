/* libFuzzer target for the configuration file parser (cfg_parse) and
   the dump of what it accepted. The file is operator input, but it is
   parsed by the master as root, so it gets the same treatment as
   network bytes: no crash, no unbounded allocation. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/cfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	char error[256];
	struct cfg *c;

	if (devnull == NULL)
		devnull = fopen("/dev/null", "w");
	error[0] = '\0';
	c = cfg_parse("fuzz.conf", (const char *)data, size, error,
		      sizeof(error));
	if (c == NULL) {
		if (error[0] == '\0')
			abort();
		return 0;
	}
	if (devnull != NULL) {
		cfg_dump(c, devnull, false);
		cfg_dump(c, devnull, true);
	}
	(void)cfg_listener_find(c, "imap");
	(void)cfg_plan_find(c, "default");
	cfg_free(&c);
	if (c != NULL)
		abort();
	return 0;
}
