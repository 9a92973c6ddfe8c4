/* fc_api.c — see fc_api.h. */
#include "vmm/fc_api.h"
#include "util/log.h"
#include "util/proc.h"

#include <curl/curl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/un.h>

typedef struct {
	char *data;
	size_t len;
	bool overflow;
} RecvBuf;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void curl_easy_cleanupp(CURL **c)
{
	if (*c)
		curl_easy_cleanup(*c);
}

static void curl_slist_free_allp(struct curl_slist **l)
{
	if (*l)
		curl_slist_free_all(*l);
}

void fc_api_response_done(FcApiResponse *r)
{
	if (!r)
		return;
	free(r->body);
	free(r->error);
	r->body = r->error = NULL;
}

static size_t recv_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	RecvBuf *b = userdata;
	size_t n = size * nmemb;
	if (b->len + n > FC_API_MAX_RESPONSE) {
		b->overflow = true;
		return 0; /* makes curl fail with CURLE_WRITE_ERROR */
	}
	b->data = xrealloc(b->data, b->len + n + 1);
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = 0;
	return n;
}

char *fc_api_error_message(long status, const char *body)
{
	if (body && *body) {
		json_object *o = json_tokener_parse(body);
		json_object *m = NULL;
		if (o && json_object_object_get_ex(o, "fault_message", &m) &&
		    json_object_is_type(m, json_type_string)) {
			char *s = xasprintf("HTTP %ld: %s", status, json_object_get_string(m));
			json_object_put(o);
			return s;
		}
		json_object_put(o);
		return xasprintf("HTTP %ld: %.200s", status, body);
	}
	return xasprintf("HTTP %ld", status);
}

/* Map a curl transport failure to -errno; the socket's absence is the most
 * common cause and deserves its own code. */
static int curl_error_to_errno(CURLcode cc, const char *sock, const RecvBuf *b)
{
	switch (cc) {
	case CURLE_COULDNT_CONNECT: return access(sock, F_OK) < 0 ? -ENOENT : -ECONNREFUSED;
	case CURLE_OPERATION_TIMEDOUT: return -ETIMEDOUT;
	case CURLE_WRITE_ERROR: return b->overflow ? -EFBIG : -EIO;
	default: return -EIO;
	}
}

/* The server of curl's connection is checked after connect() and before a
 * byte is sent: the socket is noted when curl creates it (SOCKOPTFUNCTION),
 * and SO_PEERCRED must name the expected pid when the request is about to
 * go out (PREREQFUNCTION, libcurl >= 7.80; returning ALREADY_CONNECTED from
 * our own connect is ignored by libcurl 7.88). */
typedef struct {
	pid_t peer;
	curl_socket_t fd;
	bool wrong_peer;
} PeerCheck;

static int note_socket(void *clientp, curl_socket_t fd, curlsocktype purpose)
{
	PeerCheck *pc = clientp;
	(void)purpose;
	pc->fd = fd;
	return CURL_SOCKOPT_OK;
}

static int check_peer(void *clientp, char *primary_ip, char *local_ip, int primary_port,
		      int local_port)
{
	PeerCheck *pc = clientp;
	(void)primary_ip;
	(void)local_ip;
	(void)primary_port;
	(void)local_port;
	if (pc->fd == CURL_SOCKET_BAD || proc_check_socket_peer(pc->fd, pc->peer) < 0) {
		pc->wrong_peer = true;
		return CURL_PREREQFUNC_ABORT;
	}
	return CURL_PREREQFUNC_OK;
}

static void set_common_opts(CURL *c, const char *sock, const char *url, const char *method,
			    unsigned timeout_ms)
{
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_PROXY, ""); /* never route API calls via *_proxy env */
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
}

int fc_api_request(const char *sock, const char *method, const char *path, const char *body,
		   unsigned timeout_ms, FcApiResponse *r)
{
	return fc_api_request_to(sock, 0, method, path, body, timeout_ms, r);
}

int fc_api_request_to(const char *sock, pid_t peer, const char *method, const char *path,
		      const char *body, unsigned timeout_ms, FcApiResponse *r)
{
	PeerCheck pc = { .peer = peer, .fd = CURL_SOCKET_BAD };
	_cleanup_(curl_easy_cleanupp) CURL *c = NULL;
	_cleanup_(curl_slist_free_allp) struct curl_slist *hdr = NULL;
	_cleanup_free_ char *url = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	RecvBuf b = { 0 };

	*r = (FcApiResponse){ 0 };
	if (strlen(sock) >= sizeof(((struct sockaddr_un *)NULL)->sun_path)) {
		r->error = xasprintf("API socket path too long for a unix socket (%zu bytes)",
				     strlen(sock));
		return -ENAMETOOLONG;
	}
	pthread_once(&curl_once, curl_init_once);
	c = curl_easy_init();
	if (!c) {
		r->error = xstrdup("curl_easy_init failed");
		return -ENOMEM;
	}
	url = xasprintf("http://localhost%s", path);
	set_common_opts(c, sock, url, method, timeout_ms);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	if (peer > 0) {
		curl_easy_setopt(c, CURLOPT_SOCKOPTFUNCTION, note_socket);
		curl_easy_setopt(c, CURLOPT_SOCKOPTDATA, &pc);
		curl_easy_setopt(c, CURLOPT_PREREQFUNCTION, check_peer);
		curl_easy_setopt(c, CURLOPT_PREREQDATA, &pc);
	}
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, recv_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	hdr = curl_slist_append(hdr, "Accept: application/json");
	if (body) {
		hdr = curl_slist_append(hdr, "Content-Type: application/json");
		/* Firecracker's HTTP server does not do 100-continue. */
		hdr = curl_slist_append(hdr, "Expect:");
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);

	CURLcode cc = curl_easy_perform(c);
	if (cc != CURLE_OK && pc.wrong_peer) {
		r->error = xasprintf("%s %s: %s is served by another process than pid %d", method,
				     path, sock, (int)peer);
		free(b.data);
		return -EPERM;
	}
	if (cc != CURLE_OK) {
		int e = curl_error_to_errno(cc, sock, &b);
		if (cc == CURLE_COULDNT_CONNECT) /* curl would name "localhost port 80" */
			r->error = xasprintf("%s %s: connect to %s: %s", method, path, sock,
					     strerror(-e));
		else
			r->error = xasprintf("%s %s: %s", method, path,
					     errbuf[0] ? errbuf : curl_easy_strerror(cc));
		free(b.data);
		return e;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	r->body = b.data ? b.data : xstrdup("");
	if (r->status >= 200 && r->status < 300)
		return 0;
	r->error = fc_api_error_message(r->status, r->body);
	return r->status >= 400 && r->status < 500 ? -EINVAL : -EIO;
}
