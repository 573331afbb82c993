#include "client/cli/session.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/base/error.h"
#include "client/base/options.h"
#include "client/base/sock.h"
#include "client/cli/signals.h"
#include "client/dialect/redirect.h"
#include "client/dialect/text.h"
#include "client/dialect/usp.h"
#include "client/mux/mux.h"
#include "client/relay/relay.h"
#include "client/transport/conn.h"
#include "client/transport/seal.h"

enum five_step
cli_shown_step(enum five_step step)
{
	return step == FIVE_ERR_TRUST ? FIVE_ERR_REFUSED : step;
}

/* Reads what in_fd holds right now, without waiting. */
static size_t
take_early(int in_fd, char *buf, size_t size)
{
	struct pollfd pfd = {.fd = in_fd, .events = POLLIN};
	ssize_t n;

	if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLIN))
		return 0;
	n = read(in_fd, buf, size);
	return n > 0 ? (size_t)n : 0;
}

/*
 * Standard input is a terminal: wait for the grant, and say that five is
 * now waiting for what is typed.  Returns 0, or -1 with err filled.
 */
static int
greet(struct five_conn *c, const struct five_hop *hop, unsigned replies, struct five_error *err)
{
	if (five_text_await(c, replies, err) != 0)
		return -1;
	fprintf(stderr, CLI_CONNECTED_FORMAT "\n", hop->service, hop->host);
	return 0;
}

/* The text dialect: the request lines, early behind them. */
static int
open_text(struct five_conn *c, const struct five_hop *hop, const void *early, size_t n,
          struct five_error *err)
{
	uint8_t *request;
	size_t len;
	int r;

	if (five_text_request(hop->service, &hop->o, early, n, &request, &len, err) != 0)
		return -1;
	r = five_text_open(c, hop->host, &hop->o, request, len, err);
	free(request);
	return r;
}

/* What one attempt is given: where (hop), the ends, the early bytes, and what it reports. */
struct attempt {
	const struct cli_request *req;
	const struct five_hop *hop;
	int in_fd, out_fd;
	bool out_is_socket;
	char *early; /* CLI_EARLY_MAX bytes, sent with the request; the relay adds to them */
	size_t n;
	bool input_read; /* the relay read in_fd past early: the attempt cannot be made again */
};

/* One session: to a->hop's server, relayed until it ends.  Returns 0, or -1 with err filled. */
static int
session_once(struct attempt *a, struct five_error *err)
{
	const struct five_options *o = &a->hop->o;
	struct five_conn c;
	struct relay_ends e;
	unsigned replies;
	int r;

	if (a->req->usp)
		r = five_usp_open(&c, a->hop->host, a->hop->service, o, a->early, a->n, err);
	else
		r = open_text(&c, a->hop, a->early, a->n, err);
	if (r != 0)
		return -1;
	if (c.note[0] != '\0')
		fprintf(stderr, "five: %s\n", c.note);
	/* USP's connect has been read: the service's bytes come next. */
	replies = a->req->usp ? 0 : c.replies_due + five_text_replies(o);
	if (!a->out_is_socket && isatty(a->in_fd)) {
		if ((r = greet(&c, a->hop, replies, err)) != 0)
			goto out;
		replies = 0;
	}
	e = (struct relay_ends){
	        .in_fd = a->in_fd,
	        .out_fd = a->out_fd,
	        .sock = c.fd,
	        .seal = c.seal,
	        .out_is_socket = a->out_is_socket,
	        .quiet_ms = a->out_is_socket ? 0 : cli_input_quiet_ms(a->in_fd),
	        .replies = replies,
	        .hold_input = a->req->wait_for_grant,
	        .timeout_ms = o->timeout_ms,
	        .initial = c.in,
	        .initial_len = c.in_len,
	        .stop_fd = cli_signals_catch(!a->out_is_socket),
	        .resend = a->early,
	        .resend_size = CLI_EARLY_MAX,
	        .resend_len = &a->n,
	        .input_read = &a->input_read,
	};
	r = five_relay(&e, err);
out:
	five_conn_close(&c);
	return r;
}

/*
 * A redirect is followed (section 2.13) while what was sent can be sent
 * again: the early bytes, and what the relay read before the grant while
 * it fits beside them.
 */
int
cli_session(const struct cli_request *req, int in_fd, int out_fd, bool out_is_socket,
            const void *taken, size_t taken_len, struct five_error *err)
{
	struct five_options o;
	struct five_hop hop;
	char early[CLI_EARLY_MAX];
	struct attempt a = {
	        .req = req,
	        .hop = &hop,
	        .in_fd = in_fd,
	        .out_fd = out_fd,
	        .out_is_socket = out_is_socket,
	        .early = early,
	};
	int r;

	if (five_options_resolve(&req->opts, &o, err) != 0)
		return -1;
	if (taken_len > sizeof(early))
		return five_fail(err, FIVE_ERR_USAGE, "more input taken than a request carries");
	if (taken_len > 0)
		memcpy(early, taken, taken_len);
	a.n = taken_len;
	/* In USP, what follows initialize during an exchange would be read as messages. */
	if (!req->wait_for_grant && !(req->usp && o.auth != NULL))
		a.n += take_early(in_fd, early + a.n, sizeof(early) - a.n);
	five_hop_start(&hop, req->host, req->service, &o);
	while ((r = session_once(&a, err)) != 0) {
		cli_signals_die_if_caught();
		if (a.input_read || !five_hop_next(&hop, err))
			break;
		fprintf(stderr, "five: redirected to %s port %s, service %s\n", hop.host, hop.port,
		        hop.service);
	}
	cli_signals_die_if_caught();
	return r;
}

int
cli_session_forwarded(const struct cli_request *req, int conn, struct five_error *err)
{
	five_sock_reset_on_close(conn);
	if (cli_session(req, conn, conn, true, NULL, 0, err) != 0)
		return -1;
	five_sock_end_in_order(conn);
	return 0;
}

int
cli_input_quiet_ms(int in_fd)
{
	return isatty(in_fd) ? 0 : CLI_INPUT_QUIET_MS;
}

void
cli_notice(void *arg, const char *text)
{
	fprintf(stderr, "five: %s\n", text);
}

void
cli_on_resume(void *arg, bool attached, const char *why, uint64_t ms)
{
	const char *host = arg;

	if (!attached)
		fprintf(stderr,
		        "five: %s: the connection broke (%s): attaching the session again\n", host,
		        why);
	else
		fprintf(stderr, "five: %s: the session is attached again, after %llu ms\n", host,
		        (unsigned long long)ms);
}

/* Runs on the session's engine thread: keeps the reason fived reset the stream for. */
static void
on_stream_end(void *arg, uint32_t id, const char *service, bool refused, const char *reason)
{
	char *why = arg;

	if (reason != NULL && why[0] == '\0')
		snprintf(why, FIVE_LINE_MAX, "%s", reason);
}

/*
 * A stream's OPEN of a redirected service is reset with "redirect" alone
 * (PROTOCOL.md 2.13): a connection of its own, which sends the service
 * nothing, learns where it lives.  Returns 0 with err that redirect, or
 * -1 with err why not.
 */
static int
learn_redirect(const struct five_hop *hop, struct five_error *err)
{
	struct five_options o = hop->o;
	int fd;

	o.detachable = 0;
	o.no_redirect = 1;
	/* Granted now, redirected no longer: the service sees an empty stream, ended. */
	if ((fd = five_connect(hop->host, hop->service, &o, err)) >= 0) {
		close(fd);
		return five_fail(err, FIVE_ERR_REFUSED, "redirect");
	}
	return err->step == FIVE_ERR_REDIRECT ? 0 : -1;
}

/*
 * Opens a detachable session to hop's server, whose stream's reset reason
 * goes to reset (a redirected stream's, before it, forgotten); NULL with
 * err filled.
 */
static struct five_session *
open_session(const struct five_hop *hop, char *reset, struct five_error *err)
{
	struct five_session *s = five_session_open(hop->host, &hop->o, err);

	reset[0] = '\0';
	if (s != NULL) {
		mux_on_resume(s, cli_on_resume, (void *)hop->host);
		mux_on_end(s, on_stream_end, reset);
	}
	return s;
}

/*
 * Opens the stream on s with early (n bytes) as its first data, following
 * redirects to sessions of their own as cli_session does (five_hop_next
 * tells the user, through the options' notice).  Returns the
 * session with *fd its stream's descriptor (s, or one that replaced it),
 * or NULL with err filled and s closed.
 */
static struct five_session *
open_stream(struct five_session *s, struct five_hop *hop, const char *early, size_t n, char *reset,
            int *fd, struct five_error *err)
{
	while ((*fd = five_session_stream(s, hop->service, early, n, err)) < 0) {
		five_session_close(s);
		cli_signals_die_if_caught();
		if (err->step != FIVE_ERR_REFUSED || strcmp(err->message, "redirect") != 0 ||
		    learn_redirect(hop, err) != 0 || !five_hop_next(hop, err))
			return NULL;
		if ((s = open_session(hop, reset, err)) == NULL)
			return NULL;
	}
	return s;
}

int
cli_session_detachable(const struct cli_request *req, int in_fd, int out_fd, struct five_error *err)
{
	struct five_options asked = req->opts, o;
	struct five_session *s;
	struct five_hop hop;
	struct relay_ends e;
	char early[CLI_EARLY_MAX], reset[FIVE_LINE_MAX] = "";
	size_t n = 0;
	bool relayed;
	int stop_fd, fd, r;

	asked.detachable = 1;
	asked.notice = cli_notice;
	if (five_options_resolve(&asked, &o, err) != 0)
		return -1;
	five_hop_start(&hop, req->host, req->service, &o);
	if ((s = open_session(&hop, reset, err)) == NULL)
		return -1;
	/* From the stream's first bytes on, a signal ends it as the protocol ends streams. */
	stop_fd = cli_signals_catch(true);
	n = take_early(in_fd, early, sizeof(early));
	if ((s = open_stream(s, &hop, early, n, reset, &fd, err)) == NULL) {
		cli_signals_die_if_caught();
		return -1;
	}
	if (isatty(in_fd))
		fprintf(stderr, CLI_CONNECTED_FORMAT "\n", hop.service, hop.host);
	e = (struct relay_ends){
	        .in_fd = in_fd,
	        .out_fd = out_fd,
	        .sock = fd,
	        .quiet_ms = cli_input_quiet_ms(in_fd),
	        .timeout_ms = o.timeout_ms > 0 ? o.timeout_ms : FIVE_DEFAULT_TIMEOUT_MS,
	        .stop_fd = stop_fd,
	};
	relayed = five_relay(&e, err) == 0;
	r = relayed ? 0 : -1;
	/*
	 * Ended in order: our end goes out before the session closes.
	 * Failed: the session closes first, which resets the stream, where our
	 * descriptor's close would end it.
	 */
	if (relayed) {
		close(fd);
		mux_await_streams_over(s, FIVE_LINGER_MS);
	}
	/*
	 * A stream that ends early (the session failed, fived reset it) ends
	 * the relay, quietly or, when the session's end reset it, with a
	 * reset seen before the session's own reason: that reason is the one
	 * to give, and its exit status.
	 */
	if (mux_failed(s, err) != 0)
		r = -1;
	five_session_close(s);
	if (!relayed)
		close(fd);
	cli_signals_die_if_caught();
	if (r == 0 && reset[0] != '\0')
		r = five_fail(err, FIVE_ERR_CONNECT, "stream reset: %s", reset);
	return r;
}
