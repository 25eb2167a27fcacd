// Socket calls Node's `net` module cannot make: original destination of a NATed connection, SO_MARK,
// IP_TRANSPARENT, and sockets created inside another network namespace. Plain N-API (ABI-stable across Node
// versions), no C++. Every failure throws an Error whose message names the call, its arguments, the errno text
// and a likely cause; `code` is the errno name (EPERM, ...) and `syscall` the failing call.
#define _GNU_SOURCE
#include <node_api.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

// From <linux/netfilter_ipv4.h> and <linux/netfilter_ipv6/ip6_tables.h>; those headers clash with the libc
// socket headers on some distributions, and the values are kernel ABI that cannot change.
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

#define CHECK(call)                                                                                                    \
  do {                                                                                                                 \
    if ((call) != napi_ok) return NULL;                                                                                \
  } while (0)

// ---------------------------------------------------------------------------------------------------------------
// Errors

static const char *errno_name(int err) {
  const char *n = strerrorname_np(err);
  return n ? n : "EUNKNOWN";
}

// A likely cause for the errors an operator can act on; the agent prints these at start-up and per pod.
static const char *hint_for(const char *syscall, const char *what, int err) {
  if (err == EPERM || err == EACCES) {
    if (strcmp(syscall, "setns") == 0) return "the agent needs CAP_SYS_ADMIN";
    if (strcmp(syscall, "open") == 0) return "the agent needs root to open another process's netns";
    if (strcmp(syscall, "bind") == 0) return "binding a port below 1024 needs CAP_NET_BIND_SERVICE";
    return "the agent needs CAP_NET_ADMIN";  // SO_MARK, IP_TRANSPARENT
  }
  switch (err) {
    case ENOENT:
      if (strcmp(syscall, "open") == 0) return "the network namespace does not exist (pod deleted?)";
      break;
    case EINVAL:
      if (strcmp(syscall, "setns") == 0) return "the path is not a network namespace";
      break;
    case EADDRINUSE:
      return "another socket holds this address; both must set SO_REUSEPORT to share it";
    case EADDRNOTAVAIL:
      return "the address is not local to this netns; set transparent (IP_TRANSPARENT) to bind a foreign address";
    case EBADF:
      return "the fd is not open";
    case ENOTSOCK:
      return "the fd is not a socket";
    case ENOPROTOOPT:
      if (what && strstr(what, "ORIGINAL_DST")) return "connection tracking is not active in this netns";
      break;
  }
  return NULL;
}

static void throw_errno(napi_env env, int err, const char *syscall, const char *args) {
  char msg[512];
  const char *hint = hint_for(syscall, args, err);
  snprintf(msg, sizeof msg, "%s(%s): %s%s%s", syscall, args ? args : "", strerror(err), hint ? " \xE2\x80\x94 " : "",
           hint ? hint : "");
  napi_value js_msg, js_code, js_err, js_syscall, js_errno;
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &js_msg) != napi_ok) return;
  if (napi_create_string_utf8(env, errno_name(err), NAPI_AUTO_LENGTH, &js_code) != napi_ok) return;
  if (napi_create_error(env, js_code, js_msg, &js_err) != napi_ok) return;
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &js_syscall);
  napi_create_int32(env, err, &js_errno);
  napi_set_named_property(env, js_err, "syscall", js_syscall);
  napi_set_named_property(env, js_err, "errno", js_errno);
  napi_throw(env, js_err);
}

// ---------------------------------------------------------------------------------------------------------------
// Argument helpers

static int arg_int32(napi_env env, napi_value v, const char *name, int32_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) {
    char m[128];
    snprintf(m, sizeof m, "%s must be a number", name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", m);
    return 0;
  }
  return napi_get_value_int32(env, v, out) == napi_ok;
}

static int arg_string(napi_env env, napi_value v, const char *name, char *buf, size_t cap) {
  napi_valuetype t;
  size_t len;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_string) {
    char m[128];
    snprintf(m, sizeof m, "%s must be a string", name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", m);
    return 0;
  }
  if (napi_get_value_string_utf8(env, v, buf, cap, &len) != napi_ok) return 0;
  if (len + 1 >= cap) {
    char m[128];
    snprintf(m, sizeof m, "%s is too long", name);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", m);
    return 0;
  }
  return 1;
}

// Optional property of an options object: returns 0 when absent/undefined, 1 when read, -1 on a thrown error.
static int opt_uint32(napi_env env, napi_value obj, const char *key, uint32_t *out) {
  napi_value v;
  napi_valuetype t;
  if (obj == NULL) return 0;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok) return -1;
  if (t == napi_undefined || t == napi_null) return 0;
  if (t != napi_number) {
    char m[128];
    snprintf(m, sizeof m, "options.%s must be a number", key);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", m);
    return -1;
  }
  return napi_get_value_uint32(env, v, out) == napi_ok ? 1 : -1;
}

static int opt_bool(napi_env env, napi_value obj, const char *key, int *out) {
  napi_value v;
  napi_valuetype t;
  bool b;
  if (obj == NULL) return 0;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok) return -1;
  if (t == napi_undefined || t == napi_null) return 0;
  if (napi_coerce_to_bool(env, v, &v) != napi_ok || napi_get_value_bool(env, v, &b) != napi_ok) return -1;
  *out = b;
  return 1;
}

// Parses an IPv4 or IPv6 literal into a sockaddr; the family follows the literal.
static int parse_addr(const char *ip, int port, struct sockaddr_storage *ss, socklen_t *len) {
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    *len = sizeof *a4;
    return AF_INET;
  }
  if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)port);
    *len = sizeof *a6;
    return AF_INET6;
  }
  return -1;
}

static int socket_family(int fd, int *family) {
  socklen_t len = sizeof *family;
  return getsockopt(fd, SOL_SOCKET, SO_DOMAIN, family, &len);
}

// ---------------------------------------------------------------------------------------------------------------
// Socket options shared by the fd functions and the netns thread. They return 0 or set *failed to the option name.

static int apply_transparent(int fd, int family, int on, const char **failed) {
  // IPV6_TRANSPARENT and IP_TRANSPARENT set the same socket flag, but each is only accepted at its own level.
  int r = family == AF_INET6 ? setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &on, sizeof on)
                             : setsockopt(fd, SOL_IP, IP_TRANSPARENT, &on, sizeof on);
  if (r < 0) *failed = family == AF_INET6 ? "IPV6_TRANSPARENT" : "IP_TRANSPARENT";
  return r;
}

static int apply_mark(int fd, uint32_t mark, const char **failed) {
  int r = setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark);
  if (r < 0) *failed = "SO_MARK";
  return r;
}

static int apply_reuseport(int fd, int on, const char **failed) {
  int r = setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on);
  if (r < 0) *failed = "SO_REUSEPORT";
  return r;
}

// ---------------------------------------------------------------------------------------------------------------
// Sockets inside another network namespace

typedef struct {
  // inputs
  char ns_path[4096];
  int family;
  int listen;  // 1: bind + listen; 0: plain unconnected socket
  struct sockaddr_storage addr;
  socklen_t addr_len;
  int has_mark;
  uint32_t mark;
  int transparent, reuseport, backlog;
  // outputs
  int fd;
  int err;
  const char *syscall;  // failing call
  const char *option;   // failing socket option, for setsockopt
} ns_job;

static void *ns_thread(void *p) {
  ns_job *j = p;
  int one = 1;
  // setns() moves only the calling thread, so a throwaway thread lets the JS thread stay in the agent's netns.
  // A socket keeps the netns it was created in for its whole life, so the fd stays valid after the thread exits.
  int nsfd = open(j->ns_path, O_RDONLY | O_CLOEXEC);
  if (nsfd < 0) {
    j->err = errno, j->syscall = "open";
    return NULL;
  }
  if (setns(nsfd, CLONE_NEWNET) < 0) {
    j->err = errno, j->syscall = "setns";
    close(nsfd);
    return NULL;
  }
  close(nsfd);
  int fd = socket(j->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    j->err = errno, j->syscall = "socket";
    return NULL;
  }
  j->syscall = "setsockopt";
  if (j->listen && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) {
    j->option = "SO_REUSEADDR";
    goto fail;
  }
  if (j->reuseport && apply_reuseport(fd, 1, &j->option) < 0) goto fail;
  if (j->has_mark && apply_mark(fd, j->mark, &j->option) < 0) goto fail;
  if (j->transparent && apply_transparent(fd, j->family, 1, &j->option) < 0) goto fail;
  if (j->listen) {
    j->syscall = "bind";
    if (bind(fd, (struct sockaddr *)&j->addr, j->addr_len) < 0) goto fail;
    j->syscall = "listen";
    if (listen(fd, j->backlog) < 0) goto fail;
  }
  j->fd = fd;
  j->syscall = NULL;
  return NULL;
fail:
  j->err = errno;
  close(fd);
  return NULL;
}

static napi_value run_ns_job(napi_env env, ns_job *j, const char *args) {
  pthread_t t;
  j->fd = -1;
  int r = pthread_create(&t, NULL, ns_thread, j);
  if (r != 0) {
    throw_errno(env, r, "pthread_create", args);
    return NULL;
  }
  pthread_join(t, NULL);  // sub-millisecond; joining keeps the API synchronous
  if (j->fd < 0) {
    char detail[4400];
    if (j->option)
      snprintf(detail, sizeof detail, "%s in netns %s", j->option, args);
    else if (strcmp(j->syscall, "open") == 0 || strcmp(j->syscall, "setns") == 0)
      snprintf(detail, sizeof detail, "%s", j->ns_path);
    else
      snprintf(detail, sizeof detail, "netns %s", args);
    throw_errno(env, j->err, j->syscall, detail);
    return NULL;
  }
  napi_value out;
  CHECK(napi_create_int32(env, j->fd, &out));
  return out;
}

static int read_socket_options(napi_env env, napi_value opts, ns_job *j) {
  int r;
  if ((r = opt_uint32(env, opts, "mark", &j->mark)) < 0) return 0;
  j->has_mark = r == 1;
  if (opt_bool(env, opts, "transparent", &j->transparent) < 0) return 0;
  return 1;
}

// listenInNetns(nsPath, ip, port, {mark?, transparent?, reusePort?, backlog?}) -> fd
static napi_value listen_in_netns(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_valuetype t;
  ns_job j;  // on the stack, not static: worker_threads may call concurrently
  char ip[INET6_ADDRSTRLEN + 8], args[4300];
  int32_t port;
  uint32_t backlog = 511;  // Node's default listen backlog
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  memset(&j, 0, sizeof j);
  if (argc < 3) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "listenInNetns(nsPath, ip, port, options?)");
    return NULL;
  }
  if (!arg_string(env, argv[0], "nsPath", j.ns_path, sizeof j.ns_path)) return NULL;
  if (!arg_string(env, argv[1], "ip", ip, sizeof ip)) return NULL;
  if (!arg_int32(env, argv[2], "port", &port)) return NULL;
  if (port < 0 || port > 65535) {
    napi_throw_range_error(env, "ERR_SOCKET_BAD_PORT", "port must be 0..65535");
    return NULL;
  }
  napi_value opts = NULL;
  if (argc > 3 && napi_typeof(env, argv[3], &t) == napi_ok && t == napi_object) opts = argv[3];
  if (!read_socket_options(env, opts, &j)) return NULL;
  if (opt_bool(env, opts, "reusePort", &j.reuseport) < 0) return NULL;
  if (opt_uint32(env, opts, "backlog", &backlog) < 0) return NULL;
  j.backlog = (int)backlog;
  j.listen = 1;
  j.family = parse_addr(ip, port, &j.addr, &j.addr_len);
  if (j.family < 0) {
    napi_throw_type_error(env, "ERR_INVALID_IP_ADDRESS", "ip must be an IPv4 or IPv6 literal");
    return NULL;
  }
  snprintf(args, sizeof args, "%s, %s%s%s:%d", j.ns_path, j.family == AF_INET6 ? "[" : "", ip,
           j.family == AF_INET6 ? "]" : "", port);
  return run_ns_job(env, &j, args);
}

// socketInNetns(nsPath, '4'|'6', {mark?, transparent?}) -> unconnected non-blocking fd
static napi_value socket_in_netns(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_valuetype t;
  ns_job j;
  char fam[8], args[4200];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  memset(&j, 0, sizeof j);
  if (argc < 2) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "socketInNetns(nsPath, family, options?)");
    return NULL;
  }
  if (!arg_string(env, argv[0], "nsPath", j.ns_path, sizeof j.ns_path)) return NULL;
  if (!arg_string(env, argv[1], "family", fam, sizeof fam)) return NULL;
  if (strcmp(fam, "4") == 0)
    j.family = AF_INET;
  else if (strcmp(fam, "6") == 0)
    j.family = AF_INET6;
  else {
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "family must be '4' or '6'");
    return NULL;
  }
  napi_value opts = NULL;
  if (argc > 2 && napi_typeof(env, argv[2], &t) == napi_ok && t == napi_object) opts = argv[2];
  if (!read_socket_options(env, opts, &j)) return NULL;
  snprintf(args, sizeof args, "%s, IPv%s", j.ns_path, fam);
  return run_ns_job(env, &j, args);
}

// ---------------------------------------------------------------------------------------------------------------
// Options on an existing fd (e.g. a Node socket's _handle.fd)

static napi_value make_addr(napi_env env, const struct sockaddr_storage *ss) {
  char buf[INET6_ADDRSTRLEN];
  int port;
  const char *fam;
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *a = (const void *)ss;
    inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
    port = ntohs(a->sin_port), fam = "IPv4";
  } else {
    const struct sockaddr_in6 *a = (const void *)ss;
    inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
    port = ntohs(a->sin6_port), fam = "IPv6";
  }
  napi_value o, v;
  CHECK(napi_create_object(env, &o));
  CHECK(napi_create_string_utf8(env, buf, NAPI_AUTO_LENGTH, &v));
  CHECK(napi_set_named_property(env, o, "address", v));
  CHECK(napi_create_int32(env, port, &v));
  CHECK(napi_set_named_property(env, o, "port", v));
  CHECK(napi_create_string_utf8(env, fam, NAPI_AUTO_LENGTH, &v));
  CHECK(napi_set_named_property(env, o, "family", v));
  return o;
}

// The errors meaning "this connection was not NATed": no conntrack entry (ENOENT), conntrack not active in the
// netns (ENOPROTOOPT), or a family the lookup does not handle (EOPNOTSUPP, e.g. v4 lookup on a v6 socket).
static int not_natted(int err) { return err == ENOENT || err == ENOPROTOOPT || err == EOPNOTSUPP; }

// getOriginalDst(fd) -> {address, port, family} | null
static napi_value get_original_dst(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  int32_t fd;
  int family;
  char args[64];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || !arg_int32(env, argv[0], "fd", &fd)) return NULL;
  snprintf(args, sizeof args, "%d, SO_ORIGINAL_DST", fd);
  if (socket_family(fd, &family) < 0) {
    throw_errno(env, errno, "getsockopt", args);
    return NULL;
  }
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  int r, err;
  if (family == AF_INET6) {
    r = getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &ss, &len);
    // A dual-stack v6 socket can carry an IPv4 connection whose conntrack entry is IPv4.
    if (r < 0 && not_natted(errno)) {
      len = sizeof ss;
      r = getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &ss, &len);
    }
  } else {
    r = getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &ss, &len);
  }
  if (r < 0) {
    err = errno;
    if (not_natted(err)) {
      CHECK(napi_get_null(env, &out));
      return out;
    }
    throw_errno(env, err, "getsockopt", args);
    return NULL;
  }
  return make_addr(env, &ss);
}

// setMark(fd, mark)
static napi_value set_mark(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd;
  uint32_t mark;
  const char *opt;
  char args[64];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || !arg_int32(env, argv[0], "fd", &fd)) return NULL;
  if (napi_get_value_uint32(env, argv[1], &mark) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "mark must be a number");
    return NULL;
  }
  snprintf(args, sizeof args, "%d, SO_MARK, 0x%x", fd, mark);
  if (apply_mark(fd, mark, &opt) < 0) throw_errno(env, errno, "setsockopt", args);
  return NULL;
}

// getMark(fd) -> number
static napi_value get_mark(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  int32_t fd;
  uint32_t mark = 0;
  socklen_t len = sizeof mark;
  char args[64];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || !arg_int32(env, argv[0], "fd", &fd)) return NULL;
  if (getsockopt(fd, SOL_SOCKET, SO_MARK, &mark, &len) < 0) {
    snprintf(args, sizeof args, "%d, SO_MARK", fd);
    throw_errno(env, errno, "getsockopt", args);
    return NULL;
  }
  CHECK(napi_create_uint32(env, mark, &out));
  return out;
}

// setTransparent(fd, on) and setReusePort(fd, on) share their argument handling.
static napi_value set_flag(napi_env env, napi_callback_info info, int reuseport) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd;
  int family = AF_INET;
  bool on = true;
  const char *opt = reuseport ? "SO_REUSEPORT" : "IP_TRANSPARENT";
  char args[96];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || !arg_int32(env, argv[0], "fd", &fd)) return NULL;
  if (argc > 1) {
    napi_value b;
    CHECK(napi_coerce_to_bool(env, argv[1], &b));
    CHECK(napi_get_value_bool(env, b, &on));
  }
  int r = socket_family(fd, &family);
  if (r == 0) r = reuseport ? apply_reuseport(fd, on, &opt) : apply_transparent(fd, family, on, &opt);
  if (r < 0) {
    snprintf(args, sizeof args, "%d, %s, %d", fd, opt, on);
    throw_errno(env, errno, "setsockopt", args);
  }
  return NULL;
}
static napi_value set_transparent(napi_env env, napi_callback_info info) { return set_flag(env, info, 0); }
static napi_value set_reuse_port(napi_env env, napi_callback_info info) { return set_flag(env, info, 1); }

// bindFd(fd, ip, port): bind before connect, to choose (or spoof, with IP_TRANSPARENT) the source address.
static napi_value bind_fd(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd, port;
  char ip[INET6_ADDRSTRLEN + 8], args[128];
  struct sockaddr_storage ss;
  socklen_t len;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "bindFd(fd, ip, port)");
    return NULL;
  }
  if (!arg_int32(env, argv[0], "fd", &fd) || !arg_string(env, argv[1], "ip", ip, sizeof ip) ||
      !arg_int32(env, argv[2], "port", &port))
    return NULL;
  if (port < 0 || port > 65535 || parse_addr(ip, port, &ss, &len) < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "bindFd needs an IP literal and a port 0..65535");
    return NULL;
  }
  if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
    snprintf(args, sizeof args, "%d, %s%s%s:%d", fd, ss.ss_family == AF_INET6 ? "[" : "", ip,
             ss.ss_family == AF_INET6 ? "]" : "", port);
    throw_errno(env, errno, "bind", args);
  }
  return NULL;
}

// ---------------------------------------------------------------------------------------------------------------

static napi_value init(napi_env env, napi_value exports) {
  // napi_enumerable so that Object.keys(addon) lists the functions.
#define FN(name, fn) {name, NULL, fn, NULL, NULL, NULL, napi_enumerable, NULL}
  napi_property_descriptor props[] = {
      FN("getOriginalDst", get_original_dst), FN("setMark", set_mark),
      FN("getMark", get_mark),                FN("setTransparent", set_transparent),
      FN("setReusePort", set_reuse_port),     FN("listenInNetns", listen_in_netns),
      FN("socketInNetns", socket_in_netns),   FN("bindFd", bind_fd),
  };
#undef FN
  CHECK(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
