/*
 * MULTIPLEX framing (docs/PROTOCOL.md section 11): frames in, frames out.
 * Pure code: no I/O, no state beyond what the caller passes in.  The
 * server (src/server/mux/) and the client (src/client/mux/) keep their
 * streams; this checks that each frame is of its type's form.
 */
#ifndef FIVE_MUX_H
#define FIVE_MUX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MUX_HEADER_LEN  8
#define MUX_PAYLOAD_MAX 16384
#define MUX_FRAME_MAX   (MUX_HEADER_LEN + MUX_PAYLOAD_MAX)

/* OPEN's fields. */
#define MUX_SERVICE_MAX 64
#define MUX_VHOST_MAX   253
#define MUX_TOKEN_MAX   2048

/* RST's and GOAWAY's reasons. */
#define MUX_REASON_MAX 255

#define MUX_PING_LEN   8
#define MUX_WINDOW_LEN 4

/* Every window's size at the start (section 11.4). */
#define MUX_STREAM_WINDOW  (256 * 1024)
#define MUX_SESSION_WINDOW (1024 * 1024)

/* No window, nor any credit, may exceed this. */
#define MUX_WINDOW_LIMIT 0x7fffffffu

enum mux_type {
	MUX_DATA = 0x00,
	MUX_OPEN = 0x01,
	MUX_ACCEPT = 0x02,
	MUX_WINDOW = 0x03,
	MUX_FIN = 0x04,
	MUX_RST = 0x05,
	MUX_PING = 0x06,
	MUX_GOAWAY = 0x07,
	MUX_DETACHABLE = 0x08, /* section 12.2 */
	MUX_RECEIVED = 0x09,   /* section 12.3 */
};

/* DETACHABLE's answer and RECEIVED (section 12). */
#define MUX_TICKET_ID_LEN     16
#define MUX_TICKET_SECRET_LEN 32
#define MUX_TICKET_LEN        (MUX_TICKET_ID_LEN + MUX_TICKET_SECRET_LEN)
#define MUX_RECEIVED_LEN      8

enum mux_detach_code {
	MUX_DETACH_GRANTED = 0,
	MUX_DETACH_NOT_PERMITTED = 1,
	MUX_DETACH_LIMIT = 2,
};

#define MUX_FLAG_ACK 0x01

enum mux_rst_code {
	MUX_RST_REFUSED = 1,
	MUX_RST_UNAVAILABLE = 2,
	MUX_RST_RESET = 3,
	MUX_RST_LIMIT = 4,
	MUX_RST_SHUTDOWN = 5,
};

enum mux_goaway_code {
	MUX_GOAWAY_NORMAL = 0,
	MUX_GOAWAY_PROTOCOL = 1,
	MUX_GOAWAY_IDLE = 2,
	MUX_GOAWAY_LIMIT = 3,
};

/* One decoded frame.  Pointers point into the bytes it was decoded from. */
struct mux_frame {
	uint32_t id;
	enum mux_type type;
	uint8_t flags;
	const uint8_t *payload;
	size_t len;
	union {
		struct {
			char service[MUX_SERVICE_MAX + 1];
			char vhost[MUX_VHOST_MAX + 1];
			const uint8_t *token; /* not NUL-terminated */
			size_t token_len;
			const uint8_t *data; /* the stream's first data */
			size_t data_len;
		} open;
		uint32_t credit; /* WINDOW */
		struct {
			uint8_t code;
			char reason[MUX_REASON_MAX + 1];
			uint32_t last_id; /* GOAWAY */
		} end;                    /* RST, GOAWAY */
		struct {
			bool request; /* the client's: empty; the rest is the server's answer */
			uint8_t code; /* enum mux_detach_code */
			uint32_t timeout_s;
			uint8_t ticket[MUX_TICKET_LEN];
			char reason[MUX_REASON_MAX + 1];
		} detach;          /* DETACHABLE */
		uint64_t received; /* RECEIVED */
	} u;
};

enum mux_status {
	MUX_NEED_MORE = 0, /* no complete frame yet */
	MUX_OK = 1,        /* a frame was decoded */
	MUX_BAD = -1,      /* not the protocol: the session ends (*why says how) */
};

/*
 * Decodes the first frame of in[0..len) into *f and sets *used to its
 * length.  A header that can only be wrong (too long, unknown type or
 * flag) is reported as soon as its 8 bytes are in.  The caller checks
 * what depends on its streams (ids, windows).  OPEN's service and vhost
 * are checked for printable ASCII only: the names are judged as requests.
 */
enum mux_status mux_decode(const uint8_t *in, size_t len, struct mux_frame *f, size_t *used,
                           const char **why);

/* Writes a frame header into out[0..MUX_HEADER_LEN). */
void mux_header(uint8_t out[MUX_HEADER_LEN], uint32_t id, enum mux_type type, uint8_t flags,
                size_t len);

/*
 * Encoders: each writes one whole frame into out[0..size) and returns its
 * length, or 0 when it does not fit or a field is out of range.
 */
size_t mux_encode_open(uint8_t *out, size_t size, uint32_t id, const char *service,
                       const char *vhost, const char *token, const void *data, size_t data_len);
size_t mux_encode_window(uint8_t *out, size_t size, uint32_t id, uint32_t credit);
size_t mux_encode_ping(uint8_t *out, size_t size, uint8_t flags,
                       const uint8_t opaque[MUX_PING_LEN]);
/* RST (id != 0) or, with last_id, GOAWAY; reason is cut to MUX_REASON_MAX. */
size_t mux_encode_rst(uint8_t *out, size_t size, uint32_t id, uint8_t code, const char *reason);
size_t mux_encode_goaway(uint8_t *out, size_t size, uint32_t last_id, uint8_t code,
                         const char *reason);
/* DETACHABLE: the client's request, fived's grant, or its refusal (code != 0). */
size_t mux_encode_detach_request(uint8_t *out, size_t size);
size_t mux_encode_detach_grant(uint8_t *out, size_t size, uint32_t timeout_s,
                               const uint8_t ticket[MUX_TICKET_LEN]);
size_t mux_encode_detach_refusal(uint8_t *out, size_t size, uint8_t code, const char *reason);
size_t mux_encode_received(uint8_t *out, size_t size, uint64_t count);
/* A frame without payload (ACCEPT, FIN). */
size_t mux_encode_empty(uint8_t *out, size_t size, uint32_t id, enum mux_type type);

/*
 * A session frame (section 12.1: DATA, OPEN, ACCEPT, WINDOW, FIN, RST) is
 * counted, kept until the peer has it, and sent again after ATTACH; the
 * others belong to one connection.
 */
bool mux_type_counted(enum mux_type type);

/* A window after credit: -1 if it would pass MUX_WINDOW_LIMIT. */
int mux_window_add(uint64_t *window, uint32_t credit);

#endif
