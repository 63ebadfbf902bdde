/* COMPRESS (RFC 4978): "COMPRESS DEFLATE" switches both directions of
   the connection to raw deflate (RFC 1951, no zlib header) right after
   the tagged OK, which itself goes out uncompressed (section 3). Valid
   after login, inside TLS too (tern's TLS never compresses itself). A
   second COMPRESS is NO [COMPRESSIONACTIVE] (section 3); an unknown
   mechanism is BAD. The stream work is src/lib/conn.c's. */
#include "imap/imap_int.h"
#include "lib/conn.h"
#include "lib/log.h"

static void
imap_compress_start(struct imap_session *s)
{
	if (conn_compress_start(s->c) < 0) {
		log_warn("imap", s->id, "compress-start-failed");
		conn_abort(s->c, CONN_CLOSE_ERROR);
		return;
	}
	s->compressed = true;
	log_info("imap", s->id, "compress mechanism=deflate");
}

enum imap_cmd_res
imap_cmd_compress(struct imap_session *s, struct imap_cmd *cmd)
{
	if (cmd->argc != 1 || cmd->args[0].type != IMAP_ARG_ATOM) {
		imap_cmd_bad(cmd, "BAD COMPRESS takes one mechanism.");
		return IMAP_CMD_DONE;
	}
	if (!imap_arg_is_atom(&cmd->args[0], "DEFLATE")) {
		imap_cmd_bad(cmd, "BAD Unknown compression mechanism.");
		return IMAP_CMD_DONE;
	}
	if (s->compressed) {
		imap_cmd_no(cmd, "NO [COMPRESSIONACTIVE] DEFLATE is already "
				 "active.");
		return IMAP_CMD_DONE;
	}
	cmd->after = imap_compress_start;
	imap_cmd_ok(cmd, "OK DEFLATE active.");
	return IMAP_CMD_DONE;
}
