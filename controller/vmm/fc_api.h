/* fc_api.h — one HTTP/1.1 request to a Firecracker API socket (libcurl over
 * a unix socket), bounded by a timeout, plus the parsing of Firecracker's
 * error bodies ({"fault_message": "..."}).
 *
 * No state is kept between calls: each request opens its own connection, so
 * a restarted controller needs nothing but the socket path. Safe to call
 * from one thread at a time per process (curl_global_init runs once). */
#pragma once

#include "util/util.h"

#include <sys/types.h>

/* Upper bound on a response body we keep; Firecracker's are tiny. */
#define FC_API_MAX_RESPONSE (64u * 1024u)

typedef struct {
	long status; /* HTTP status; 0 when no response arrived */
	char *body;  /* response body, NUL-terminated, never NULL on success */
	char *error; /* human-readable failure: transport error or fault_message;
		      * NULL when the request succeeded (2xx) */
} FcApiResponse;

void fc_api_response_done(FcApiResponse *r); /* frees the members; NULL ok */

/* Send method (e.g. "PUT", "GET") to path (e.g. "/boot-source") with an
 * optional JSON body over the unix socket sock. Returns 0 when a 2xx status
 * came back; -EINVAL for 4xx (bad input, r->error holds the fault_message),
 * -EIO for other statuses, -ENAMETOOLONG when sock does not fit sun_path,
 * -ECONNREFUSED / -ENOENT when nothing listens, -ETIMEDOUT after timeout_ms.
 * r is always filled (status, body, error) and must be released with
 * fc_api_response_done(). */
int fc_api_request(const char *sock, const char *method, const char *path, const char *body,
		   unsigned timeout_ms, FcApiResponse *r);

/* fc_api_request to the VMM whose pid is peer: the connection is refused
 * (-EPERM, nothing sent) unless SO_PEERCRED of the socket names that pid,
 * so a request never reaches another process serving the path. peer 0:
 * no check. */
int fc_api_request_to(const char *sock, pid_t peer, const char *method, const char *path,
		      const char *body, unsigned timeout_ms, FcApiResponse *r);

/* The message to show an operator for an HTTP error reply: the body's
 * fault_message when it has one, else the (truncated) body, else
 * "HTTP <status>". Caller frees; never NULL. */
char *fc_api_error_message(long status, const char *body);
