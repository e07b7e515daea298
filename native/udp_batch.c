/*
 * udp_batch.c - batched UDP I/O for Node.js on Linux (recvmmsg/sendmmsg),
 * for TollGuard's embedded SIP proxy.  TypeScript face: src/sip/udp-batch.ts.
 *
 * Why: node:dgram pays one recvmsg + one JS callback (with a fresh Buffer and
 * an rinfo object holding an address string) per received datagram, and one
 * trip through dgram's JS layer + one sendmsg per sent datagram.  Here the
 * kernel fills up to RX_SLOTS datagrams per recvmmsg into a native arena that
 * JS sees through ONE Buffer created once, and the per-datagram metadata is a
 * preallocated Int32Array; sends are copied into a native queue and leave
 * with sendmmsg.
 *
 * Threading: everything here runs on the JS thread (uv callbacks of the
 * environment's own loop, N-API calls, finalizers), so no locking is needed.
 *
 * Plain C, N-API version 8, no dependencies.  Linux only (recvmmsg/sendmmsg).
 * Without it (another OS, no compiler at install time) the proxy stays on
 * node:dgram: native/install.js lets a failed build pass.
 */
#define _GNU_SOURCE
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- sizes ------------------------------------------------------------ */

#define RX_SLOTS 64 /* datagrams per recvmmsg */
/* 65536 > the largest UDP payload over IPv4 (65507) and IPv6 without
 * jumbograms (65527), so the kernel can never truncate into a slot.  The
 * arena is 4 MiB of address space, but only the pages a datagram actually
 * touched become resident. */
#define RX_SLOT_BYTES 65536
#define RX_MAX_PER_WAKEUP 256 /* so one busy socket cannot starve the loop */
#define META_FIELDS 10        /* see fill_meta() */
#define TX_SLOTS 64           /* datagrams per sendmmsg */
#define TX_BYTES (256 * 1024) /* copy area for queued payloads */
/* One spare byte: napi_get_value_string_latin1 always writes a NUL after
 * the bytes it copies, and a string may end exactly at TX_BYTES. */
#define TX_BUF_ALLOC (TX_BYTES + 1)
#define TX_MAX_DGRAM 65535

/* ---- memory shared with JS -------------------------------------------- */

/* The receive arena and the meta array are exposed to JS as external
 * buffers.  JS may keep (or even transfer) those objects after close(), so
 * the memory is freed only when the socket AND both JS wrappers are done
 * with it: a plain reference count (socket + arena Buffer + meta array). */
/* The two big buffers come straight from mmap: malloc would serve a
 * re-allocated 4 MiB arena from its heap after the first free (glibc's
 * dynamic mmap threshold), and touched pages would then stay resident. */
static void *big_alloc(size_t n) {
  void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
  return p == MAP_FAILED ? NULL : p;
}
static void big_free(void *p, size_t n) {
  if (p) munmap(p, n);
}

typedef struct {
  int refs;
  uint8_t *arena;
  int32_t *meta;
} rxmem_t;

static void rxmem_release(rxmem_t *m) {
  if (--m->refs > 0) return;
  big_free(m->arena, (size_t)RX_SLOTS * RX_SLOT_BYTES);
  free(m->meta);
  free(m);
}

static void rxmem_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)data;
  rxmem_release((rxmem_t *)hint);
}

/* ---- the socket ------------------------------------------------------- */

typedef struct {
  double rx_datagrams, rx_batches, rx_syscalls, rx_wakeups, rx_truncated,
      rx_errors;
  double tx_datagrams, tx_syscalls, tx_errors, tx_eagain, tx_dropped;
  int last_errno;
} stats_t;

typedef struct {
  napi_env env;
  int fd;     /* -1 once closed */
  int family; /* AF_INET or AF_INET6 */
  int closed;
  int refs;      /* JS handle finalizer + open uv handles */
  int uv_open;   /* uv handles not yet through their close callback */
  int events;    /* events uv_poll is currently started with (0 = stopped) */
  int want_write; /* sendmmsg hit EAGAIN; waiting for POLLOUT */
  int has_receiver;

  uv_poll_t poll;
  uv_prepare_t prepare; /* flushes sends queued outside receive callbacks */

  napi_ref self;     /* strong while open: an open socket is never GC'd */
  napi_ref receiver; /* JS function (arena, count, meta) */
  napi_ref arena_ref, meta_ref, resource_ref;
  napi_async_context actx;
  napi_async_cleanup_hook_handle cleanup;

  rxmem_t *rx;
  struct mmsghdr rmsg[RX_SLOTS];
  struct iovec riov[RX_SLOTS];
  struct sockaddr_storage rname[RX_SLOTS];
  /* SO_TIMESTAMPNS control data: when the kernel queued each datagram. */
  char rctl[RX_SLOTS][CMSG_SPACE(sizeof(struct timespec))];

  /* Send queue: messages [tq_head, tq_count) are pending; their bytes live
   * in tbuf.  The queue is reset to empty once everything left. */
  unsigned tq_head, tq_count;
  size_t tq_bytes;
  struct mmsghdr tmsg[TX_SLOTS];
  struct iovec tiov[TX_SLOTS];
  struct sockaddr_storage tname[TX_SLOTS];
  uint8_t *tbuf;

  stats_t st;
  int rcvbuf, sndbuf; /* what getsockopt reports after setsockopt */
} sock_t;

static void sock_unref(sock_t *s) {
  if (--s->refs > 0) return;
  if (s->rx) rxmem_release(s->rx);
  big_free(s->tbuf, TX_BUF_ALLOC);
  free(s);
}

/* ---- small helpers ---------------------------------------------------- */

#define CHECK(call)                                                         \
  do {                                                                      \
    if ((call) != napi_ok) return NULL;                                     \
  } while (0)

/* Throw an Error like Node's errno exceptions: code/errno/syscall set. */
static void throw_errno(napi_env env, int err, const char *syscall,
                        const char *detail) {
  char name[64], text[128], msg[384];
  uv_err_name_r(-err, name, sizeof name);
  uv_strerror_r(-err, text, sizeof text);
  snprintf(msg, sizeof msg, "%s %s (%s)%s%s", syscall, name, text,
           detail ? " " : "", detail ? detail : "");
  napi_value e, m, c, v;
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m) != napi_ok ||
      napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &c) != napi_ok ||
      napi_create_error(env, c, m, &e) != napi_ok)
    return;
  if (napi_create_int32(env, -err, &v) == napi_ok)
    napi_set_named_property(env, e, "errno", v);
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &v) == napi_ok)
    napi_set_named_property(env, e, "syscall", v);
  napi_throw(env, e);
}

/* Report an exception left by a JS callback the way Node reports an
 * exception thrown from any callback: 'uncaughtException', else exit. */
static void report_pending_exception(napi_env env) {
  bool pending = false;
  napi_value err;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending &&
      napi_get_and_clear_last_exception(env, &err) == napi_ok)
    napi_fatal_exception(env, err);
}

static uint32_t arg_u32(napi_env env, napi_value v, uint32_t dflt) {
  uint32_t r;
  return napi_get_value_uint32(env, v, &r) == napi_ok ? r : dflt;
}

/* Handles are externals type-tagged by createSocket, so an external made
 * by some other addon can never be mistaken for a sock_t. */
static const napi_type_tag SOCK_TAG = {0x7564705f62617463ULL,
                                       0x685f736f636b6574ULL};

/* Fetch the sock_t behind a JS handle; throws on a bad handle. */
static sock_t *get_sock(napi_env env, napi_value v) {
  void *p = NULL;
  napi_valuetype t;
  bool tagged = false;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external ||
      napi_check_object_type_tag(env, v, &SOCK_TAG, &tagged) != napi_ok ||
      !tagged || napi_get_value_external(env, v, &p) != napi_ok || !p) {
    napi_throw_type_error(env, NULL, "invalid udp_batch handle");
    return NULL;
  }
  return (sock_t *)p;
}

/* Text address (+ optional "%scope") -> sockaddr of the socket's family.
 * An IPv4 literal given to an IPv6 socket becomes ::ffff:a.b.c.d.
 * Returns 0, or -1 if the text is not an address literal. */
static int text_to_sockaddr(int family, const char *txt, int port,
                            struct sockaddr_storage *ss, socklen_t *len) {
  memset(ss, 0, sizeof *ss);
  if (family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, txt, &a->sin_addr) != 1) return -1;
    *len = sizeof *a;
    return 0;
  }
  struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
  char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  snprintf(buf, sizeof buf, "%s", txt);
  char *pct = strchr(buf, '%');
  if (pct) {
    *pct++ = 0;
    char *end;
    unsigned long id = strtoul(pct, &end, 10);
    a->sin6_scope_id = (*pct && !*end) ? (uint32_t)id : if_nametoindex(pct);
    if (!a->sin6_scope_id) return -1;
  }
  a->sin6_family = AF_INET6;
  a->sin6_port = htons((uint16_t)port);
  struct in_addr v4;
  if (inet_pton(AF_INET6, buf, &a->sin6_addr) != 1) {
    if (inet_pton(AF_INET, buf, &v4) != 1) return -1;
    a->sin6_addr.s6_addr[10] = a->sin6_addr.s6_addr[11] = 0xff;
    memcpy(&a->sin6_addr.s6_addr[12], &v4, 4);
  }
  *len = sizeof *a;
  return 0;
}

/* Numeric form used across the JS boundary: IPv4 = one host-order uint32;
 * IPv6 = four host-order uint32 words, most significant first. */
static void sockaddr_to_words(const struct sockaddr_storage *ss, int32_t *w) {
  if (ss->ss_family == AF_INET) {
    w[0] = (int32_t)ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr);
    w[1] = w[2] = w[3] = 0;
  } else {
    const uint8_t *b = ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;
    for (int i = 0; i < 4; i++) {
      uint32_t x;
      memcpy(&x, b + 4 * i, 4);
      w[i] = (int32_t)ntohl(x);
    }
  }
}

static int sockaddr_port(const struct sockaddr_storage *ss) {
  return ntohs(ss->ss_family == AF_INET
                   ? ((const struct sockaddr_in *)ss)->sin_port
                   : ((const struct sockaddr_in6 *)ss)->sin6_port);
}

/* ---- polling / sending ------------------------------------------------ */

static void on_poll(uv_poll_t *h, int status, int events);

/* (Re)start uv_poll with exactly the events we need right now. */
static void update_poll(sock_t *s) {
  int ev = (s->has_receiver ? UV_READABLE : 0) | (s->want_write ? UV_WRITABLE : 0);
  if (s->closed || ev == s->events) return;
  if (ev == 0)
    uv_poll_stop(&s->poll);
  else
    uv_poll_start(&s->poll, ev, on_poll);
  s->events = ev;
}

/* Send everything queued with as few sendmmsg calls as possible.
 * - partial result: continue with the remainder;
 * - hard error (not EAGAIN): the kernel reports it for the first unsent
 *   message only, so skip that one message, count it, keep going;
 * - EAGAIN (socket send buffer full): keep the rest queued and wait for
 *   POLLOUT; further send() calls append until the queue is full and are
 *   then dropped and counted (tail drop, like a full kernel queue). */
static void tx_flush(sock_t *s) {
  if (s->fd < 0 || s->want_write) return;
  while (s->tq_head < s->tq_count) {
    int r = sendmmsg(s->fd, s->tmsg + s->tq_head, s->tq_count - s->tq_head,
                     MSG_DONTWAIT);
    if (r > 0) {
      s->tq_head += (unsigned)r;
      s->st.tx_datagrams += r;
      s->st.tx_syscalls++;
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      s->st.tx_eagain++;
      s->want_write = 1;
      update_poll(s);
      return;
    }
    s->st.tx_errors++;
    s->st.last_errno = r < 0 ? errno : EIO;
    s->tq_head++;
  }
  s->tq_head = s->tq_count = 0;
  s->tq_bytes = 0;
  uv_prepare_stop(&s->prepare); /* nothing pending: let the loop idle/exit */
}

/* Runs once per loop iteration before the loop blocks: whatever timers,
 * immediates or other callbacks queued leaves now, batched. */
static void on_prepare(uv_prepare_t *h) {
  sock_t *s = (sock_t *)h->data;
  if (!s->closed) tx_flush(s);
}

/* ---- receiving -------------------------------------------------------- */

/* µs between the kernel's receive timestamp of a datagram and now; -1 without one. */
static int32_t queued_us(const struct msghdr *h, const struct timespec *now) {
  for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c != NULL; c = CMSG_NXTHDR((struct msghdr *)h, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPNS) continue;
    struct timespec ts;
    memcpy(&ts, CMSG_DATA(c), sizeof ts);
    int64_t us = ((int64_t)now->tv_sec - ts.tv_sec) * 1000000 + (now->tv_nsec - ts.tv_nsec) / 1000;
    if (us < 0) return 0; /* the clock was stepped back */
    return us > INT32_MAX ? INT32_MAX : (int32_t)us;
  }
  return -1;
}

/* Meta record per kept datagram (Int32, META_FIELDS each):
 *   [0] offset in arena  [1] length  [2] source port
 *   [3] address form, 4 or 6.  An IPv4-mapped source (::ffff:a.b.c.d: an
 *       IPv4 peer of a dual-stack udp6 socket) is given as 4, because the
 *       proxy names IPv4 peers a.b.c.d everywhere, and a send to a.b.c.d
 *       on that socket maps the address back (text_to_sockaddr).
 *   [4..7] source address words (IPv4: [4] only)
 *   [8] IPv6 scope id, 0 if none (the kernel sets it for link-local).
 *   [9] how long the datagram waited in the socket queue, in µs (-1 when
 *       the kernel gave no timestamp; capped at INT32_MAX). */
static int fill_meta(sock_t *s, int n) {
  int32_t *m = s->rx->meta;
  int kept = 0;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now); /* SO_TIMESTAMPNS uses the realtime clock */
  for (int i = 0; i < n; i++) {
    const struct msghdr *h = &s->rmsg[i].msg_hdr;
    if (h->msg_flags & MSG_TRUNC) { /* cannot happen with 64 KiB slots */
      s->st.rx_truncated++;
      continue;
    }
    const struct sockaddr_storage *ss = &s->rname[i];
    const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)ss;
    int32_t *r = m + kept * META_FIELDS;
    r[0] = i * RX_SLOT_BYTES;
    r[1] = (int32_t)s->rmsg[i].msg_len;
    r[2] = sockaddr_port(ss);
    if (ss->ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr)) {
      uint32_t v4;
      memcpy(&v4, &a6->sin6_addr.s6_addr[12], 4);
      r[3] = 4;
      r[4] = (int32_t)ntohl(v4);
      r[5] = r[6] = r[7] = r[8] = 0;
    } else {
      r[3] = ss->ss_family == AF_INET ? 4 : 6;
      sockaddr_to_words(ss, r + 4);
      r[8] = ss->ss_family == AF_INET6 ? (int32_t)a6->sin6_scope_id : 0;
    }
    r[9] = queued_us(h, &now);
    kept++;
  }
  return kept;
}

/* One JS call per recvmmsg batch.  napi_make_callback gives the usual Node
 * callback semantics: async_hooks context, and process.nextTick/microtasks
 * run when it returns.  Returns -1 if the callback threw. */
static int deliver(sock_t *s, int count) {
  napi_env env = s->env;
  napi_handle_scope scope;
  int rc = 0;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return -1;
  napi_value fn, recv, argv[3], result;
  if (napi_get_reference_value(env, s->receiver, &fn) == napi_ok && fn &&
      napi_get_reference_value(env, s->resource_ref, &recv) == napi_ok &&
      napi_get_reference_value(env, s->arena_ref, &argv[0]) == napi_ok &&
      napi_create_int32(env, count, &argv[1]) == napi_ok &&
      napi_get_reference_value(env, s->meta_ref, &argv[2]) == napi_ok) {
    if (napi_make_callback(env, s->actx, recv, fn, 3, argv, &result) !=
        napi_ok) {
      rc = -1;
      report_pending_exception(env);
    }
  }
  napi_close_handle_scope(env, scope);
  /* Whatever the callback (and its ticks) queued leaves in one sendmmsg. */
  if (!s->closed) tx_flush(s);
  return rc;
}

static void rx_drain(sock_t *s) {
  unsigned total = 0;
  s->st.rx_wakeups++;
  /* s->closed is re-checked after every JS call: the callback may close the
   * socket; the fd is then gone but s and the arena stay valid until the uv
   * close callbacks run on a later loop phase. */
  while (!s->closed && s->has_receiver && total < RX_MAX_PER_WAKEUP) {
    for (int i = 0; i < RX_SLOTS; i++) {
      s->rmsg[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_storage);
      s->rmsg[i].msg_hdr.msg_controllen = sizeof s->rctl[i];
      s->rmsg[i].msg_hdr.msg_flags = 0;
    }
    int n = recvmmsg(s->fd, s->rmsg, RX_SLOTS, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        s->st.rx_errors++;
        s->st.last_errno = errno;
      }
      break;
    }
    if (n == 0) break;
    s->st.rx_syscalls++;
    total += (unsigned)n;
    int kept = fill_meta(s, n);
    if (kept > 0) {
      s->st.rx_batches++;
      s->st.rx_datagrams += kept;
      if (deliver(s, kept) < 0) break; /* let uncaughtException settle */
    }
    /* A short batch means the queue was drained; epoll is level-triggered,
     * so anything arriving now wakes us again.  Saves one EAGAIN syscall. */
    if (n < RX_SLOTS) break;
  }
}

static void on_poll(uv_poll_t *h, int status, int events) {
  sock_t *s = (sock_t *)h->data;
  if (s->closed) return;
  if (status < 0) {
    /* libuv saw POLLERR, stopped the handle and reports UV_EBADF.  For an
     * unconnected UDP socket that means a queued socket error (e.g. an ICMP
     * error with IP_RECVERR): read it (this clears it), count it, and
     * resume polling instead of going deaf. */
    int err = 0;
    socklen_t l = sizeof err;
    getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &l);
    s->st.rx_errors++;
    s->st.last_errno = err ? err : -status;
    s->events = 0; /* the handle is stopped now */
    update_poll(s);
    return;
  }
  if (events & UV_WRITABLE) {
    s->want_write = 0;
    update_poll(s);
    tx_flush(s);
  }
  if (events & UV_READABLE) rx_drain(s);
}

/* ---- close / lifetime ------------------------------------------------- */

static void on_uv_closed(uv_handle_t *h) {
  sock_t *s = (sock_t *)h->data;
  if (--s->uv_open == 0 && s->cleanup) {
    /* Tells an env teardown in progress that we are done (or unregisters
     * the hook if the user closed us first). */
    napi_remove_async_cleanup_hook(s->cleanup);
    s->cleanup = NULL;
  }
  sock_unref(s);
}

/* Native side of close: no N-API calls, so it is usable from a finalizer. */
static void sock_close_native(sock_t *s) {
  if (s->closed) return;
  tx_flush(s); /* best effort, non-blocking: queued datagrams still leave */
  s->closed = 1;
  uv_poll_stop(&s->poll); /* removes the fd from epoll before close() */
  uv_prepare_stop(&s->prepare);
  if (s->fd >= 0) close(s->fd);
  s->fd = -1;
  uv_close((uv_handle_t *)&s->poll, on_uv_closed);
  uv_close((uv_handle_t *)&s->prepare, on_uv_closed);
}

static void del_ref(napi_env env, napi_ref *r) {
  if (*r) napi_delete_reference(env, *r);
  *r = NULL;
}

static void sock_close(sock_t *s) {
  if (s->closed) return;
  sock_close_native(s);
  napi_env env = s->env;
  del_ref(env, &s->receiver);
  del_ref(env, &s->arena_ref);
  del_ref(env, &s->meta_ref);
  del_ref(env, &s->resource_ref);
  if (s->actx) napi_async_destroy(env, s->actx);
  s->actx = NULL;
  del_ref(env, &s->self); /* the JS handle may now be collected */
}

/* Environment teardown (process exit, worker termination): close, and
 * finish asynchronously once libuv has closed our handles. */
static void on_env_cleanup(napi_async_cleanup_hook_handle h, void *arg) {
  (void)h;
  sock_close((sock_t *)arg);
}

static void handle_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  sock_t *s = (sock_t *)data;
  sock_close_native(s); /* normally already closed (self ref is strong) */
  sock_unref(s);
}

/* ---- JS entry points -------------------------------------------------- */

#define ARGS(n)                                                             \
  size_t argc = n;                                                          \
  napi_value argv[n];                                                       \
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL))

/* createSocket(family 4|6, recvBufBytes, sendBufBytes) -> handle */
static napi_value js_create_socket(napi_env env, napi_callback_info info) {
  ARGS(3);
  uint32_t fam = arg_u32(env, argv[0], 4);
  if (fam != 4 && fam != 6) {
    napi_throw_range_error(env, NULL, "family must be 4 or 6");
    return NULL;
  }
  int rcv = (int)arg_u32(env, argv[1], 0), snd = (int)arg_u32(env, argv[2], 0);

  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));

  sock_t *s = calloc(1, sizeof *s);
  rxmem_t *rx = calloc(1, sizeof *rx);
  if (s) s->tbuf = big_alloc(TX_BUF_ALLOC);
  if (rx) {
    rx->arena = big_alloc((size_t)RX_SLOTS * RX_SLOT_BYTES);
    rx->meta = calloc(RX_SLOTS * META_FIELDS, sizeof(int32_t));
  }
  if (!s || !s->tbuf || !rx || !rx->arena || !rx->meta) {
    if (rx) {
      big_free(rx->arena, (size_t)RX_SLOTS * RX_SLOT_BYTES);
      free(rx->meta);
      free(rx);
    }
    if (s) big_free(s->tbuf, TX_BUF_ALLOC);
    free(s);
    napi_throw_error(env, "ENOMEM", "udp_batch: out of memory");
    return NULL;
  }
  s->env = env;
  s->family = fam == 4 ? AF_INET : AF_INET6;
  s->rx = rx;
  rx->refs = 1; /* the socket's; the JS wrappers add theirs below */

  s->fd = socket(s->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s->fd < 0) {
    int e = errno;
    s->refs = 1; /* nothing else holds it yet */
    sock_unref(s);
    throw_errno(env, e, "socket", NULL);
    return NULL;
  }
  if (rcv > 0) setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
  if (snd > 0) setsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd);
  socklen_t l = sizeof s->rcvbuf;
  getsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &s->rcvbuf, &l);
  l = sizeof s->sndbuf;
  getsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &s->sndbuf, &l);

  for (int i = 0; i < RX_SLOTS; i++) {
    s->riov[i].iov_base = rx->arena + (size_t)i * RX_SLOT_BYTES;
    s->riov[i].iov_len = RX_SLOT_BYTES;
    s->rmsg[i].msg_hdr.msg_iov = &s->riov[i];
    s->rmsg[i].msg_hdr.msg_iovlen = 1;
    s->rmsg[i].msg_hdr.msg_name = &s->rname[i];
    s->rmsg[i].msg_hdr.msg_control = s->rctl[i];
  }
  /* Kernel receive timestamps, so JS can tell how long datagrams waited in the socket queue (the
   * proxy's overload signal: a busy event loop can keep up with its timers while the backlog in
   * the kernel grows). Without them the age is reported as -1. */
  int on = 1;
  setsockopt(s->fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
  for (int i = 0; i < TX_SLOTS; i++) {
    s->tmsg[i].msg_hdr.msg_iov = &s->tiov[i];
    s->tmsg[i].msg_hdr.msg_iovlen = 1;
    s->tmsg[i].msg_hdr.msg_name = &s->tname[i];
  }

  /* From here on the uv handles exist and must go through uv_close. */
  uv_poll_init(loop, &s->poll, s->fd);
  uv_prepare_init(loop, &s->prepare);
  s->poll.data = s->prepare.data = s;
  s->uv_open = 2;
  s->refs = 3; /* two uv handles + the JS handle's finalizer */

  napi_value handle, arena, meta_ab, meta, resource, name;
  if (napi_create_external(env, s, handle_finalize, NULL, &handle) != napi_ok) {
    s->refs = 2;
    sock_close_native(s);
    napi_throw_error(env, NULL, "udp_batch: cannot create handle");
    return NULL;
  }
  napi_create_reference(env, handle, 1, &s->self);
  napi_type_tag_object(env, handle, &SOCK_TAG);

  /* Created ONCE; every batch reuses them (JS copies what it keeps). */
  if (napi_create_external_buffer(env, (size_t)RX_SLOTS * RX_SLOT_BYTES,
                                  rx->arena, rxmem_finalize, rx,
                                  &arena) == napi_ok) {
    rx->refs++;
    napi_create_reference(env, arena, 1, &s->arena_ref);
  }
  if (napi_create_external_arraybuffer(env, rx->meta,
                                       RX_SLOTS * META_FIELDS * sizeof(int32_t),
                                       rxmem_finalize, rx,
                                       &meta_ab) == napi_ok) {
    rx->refs++;
    if (napi_create_typedarray(env, napi_int32_array, RX_SLOTS * META_FIELDS,
                               meta_ab, 0, &meta) == napi_ok)
      napi_create_reference(env, meta, 1, &s->meta_ref);
  }
  if (napi_create_object(env, &resource) == napi_ok &&
      napi_create_string_utf8(env, "UDPBATCH", NAPI_AUTO_LENGTH, &name) ==
          napi_ok &&
      napi_async_init(env, resource, name, &s->actx) == napi_ok)
    napi_create_reference(env, resource, 1, &s->resource_ref);
  napi_add_async_cleanup_hook(env, on_env_cleanup, s, &s->cleanup);

  if (!s->arena_ref || !s->meta_ref || !s->resource_ref || !s->cleanup) {
    sock_close(s);
    napi_throw_error(env, NULL, "udp_batch: cannot set up socket");
    return NULL;
  }
  return handle;
}

/* The socket of a handle for an operation that needs it open: throws (a
 * TypeError for a bad handle, EBADF naming op once closed) and returns NULL
 * otherwise. */
static sock_t *open_sock(napi_env env, napi_value v, const char *op) {
  sock_t *s = get_sock(env, v);
  if (s && s->closed) {
    throw_errno(env, EBADF, op, "(socket is closed)");
    return NULL;
  }
  return s;
}

/* bind(handle, address, port) -> bound port; throws an errno Error. */
static napi_value js_bind(napi_env env, napi_callback_info info) {
  ARGS(3);
  sock_t *s = open_sock(env, argv[0], "bind");
  if (!s) return NULL;
  char txt[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  size_t n;
  if (napi_get_value_string_utf8(env, argv[1], txt, sizeof txt, &n) != napi_ok) {
    napi_throw_type_error(env, NULL, "address must be a string");
    return NULL;
  }
  uint32_t port = arg_u32(env, argv[2], 0);
  struct sockaddr_storage ss;
  socklen_t len;
  char d[sizeof txt + 16]; /* "address:port" for the error message */
  snprintf(d, sizeof d, "%s:%u", txt, (unsigned)port);
  /* n == sizeof txt - 1: the text was cut to fit, so it is no address */
  if (n >= sizeof txt - 1 || port > 65535 ||
      text_to_sockaddr(s->family, txt, (int)port, &ss, &len) < 0) {
    throw_errno(env, EINVAL, "bind", d);
    return NULL;
  }
  if (bind(s->fd, (struct sockaddr *)&ss, len) < 0) {
    throw_errno(env, errno, "bind", d);
    return NULL;
  }
  len = sizeof ss;
  getsockname(s->fd, (struct sockaddr *)&ss, &len);
  napi_value r;
  CHECK(napi_create_int32(env, sockaddr_port(&ss), &r));
  return r;
}

/* setReceiver(handle, fn | null): fn(arena, count, meta) per batch. */
static napi_value js_set_receiver(napi_env env, napi_callback_info info) {
  ARGS(2);
  sock_t *s = get_sock(env, argv[0]);
  if (!s || s->closed) return NULL;
  napi_valuetype t;
  CHECK(napi_typeof(env, argv[1], &t));
  if (t != napi_function && t != napi_null && t != napi_undefined) {
    napi_throw_type_error(env, NULL, "receiver must be a function or null");
    return NULL;
  }
  del_ref(env, &s->receiver);
  if (t == napi_function) CHECK(napi_create_reference(env, argv[1], 1, &s->receiver));
  s->has_receiver = t == napi_function;
  update_poll(s);
  return NULL;
}

/* send(handle, data, port, a0[, a1, a2, a3, scope])
 * data: a string of latin1 bytes (one char per byte, every char <= 0xFF:
 * the proxy keeps SIP messages as such strings), copied straight into the
 * send queue; or a Uint8Array (Buffers are Uint8Arrays; its byteOffset is
 * honoured).  A char above 0xFF is sent as its low byte (V8's one-byte
 * write truncates), as Buffer.from(str, 'latin1') would.
 * Address words as in the meta array, from the wrapper's text cache.
 * Returns false if the datagram was dropped because the queue is full and
 * the socket buffer is full (EAGAIN). */
static napi_value js_send(napi_env env, napi_callback_info info) {
  ARGS(8);
  sock_t *s = open_sock(env, argv[0], "send");
  if (!s) return NULL;
  const uint8_t *src = NULL;
  size_t total;
  napi_valuetype vt;
  CHECK(napi_typeof(env, argv[1], &vt));
  bool is_string = vt == napi_string;
  if (is_string) {
    /* Length only (a NULL buffer): the size and queue rules below apply
     * before a byte is copied, and then it is copied once, into the queue
     * (no intermediate Buffer). */
    CHECK(napi_get_value_string_latin1(env, argv[1], NULL, 0, &total));
  } else {
    bool is_ta = false;
    napi_typedarray_type tt;
    void *d;
    if (napi_is_typedarray(env, argv[1], &is_ta) != napi_ok || !is_ta ||
        napi_get_typedarray_info(env, argv[1], &tt, &total, &d, NULL, NULL) !=
            napi_ok ||
        tt != napi_uint8_array) {
      napi_throw_type_error(env, NULL,
                            "data must be a latin1 string or a Uint8Array");
      return NULL;
    }
    src = d; /* typedarray_info's data pointer already includes byteOffset */
  }
  if (total > TX_MAX_DGRAM) {
    throw_errno(env, EMSGSIZE, "send", NULL);
    return NULL;
  }
  uint32_t port = arg_u32(env, argv[2], 0);
  if (port == 0 || port > 65535) {
    napi_throw_range_error(env, NULL, "port must be 1..65535");
    return NULL;
  }

  /* Make room: flush if out of slots or bytes; if that cannot free space
   * (EAGAIN), the new datagram is dropped and counted. */
  if (s->tq_count == TX_SLOTS || s->tq_bytes + total > TX_BYTES) tx_flush(s);
  napi_value ok;
  if (s->tq_count == TX_SLOTS || s->tq_bytes + total > TX_BYTES) {
    s->st.tx_dropped++;
    CHECK(napi_get_boolean(env, false, &ok));
    return ok;
  }

  unsigned k = s->tq_count;
  uint8_t *dst = s->tbuf + s->tq_bytes;
  if (is_string) {
    size_t copied = 0;
    /* total + 1: room for the NUL it appends (see TX_BUF_ALLOC); the next
     * queued message overwrites that byte. */
    CHECK(napi_get_value_string_latin1(env, argv[1], (char *)dst, total + 1,
                                       &copied));
    total = copied; /* == total: the string cannot change in between */
  } else if (total) {
    memcpy(dst, src, total);
  }
  s->tiov[k].iov_base = s->tbuf + s->tq_bytes;
  s->tiov[k].iov_len = total;
  struct sockaddr_storage *ss = &s->tname[k];
  if (s->family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    a->sin_addr.s_addr = htonl(arg_u32(env, argv[3], 0));
    s->tmsg[k].msg_hdr.msg_namelen = sizeof *a;
  } else {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    memset(a, 0, sizeof *a);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    for (int i = 0; i < 4; i++) {
      uint32_t w = htonl(arg_u32(env, argv[3 + i], 0));
      memcpy(&a->sin6_addr.s6_addr[4 * i], &w, 4);
    }
    a->sin6_scope_id = arg_u32(env, argv[7], 0);
    s->tmsg[k].msg_hdr.msg_namelen = sizeof *a;
  }
  s->tq_count++;
  s->tq_bytes += total;
  if (s->tq_count == TX_SLOTS)
    tx_flush(s);
  else
    uv_prepare_start(&s->prepare, on_prepare); /* no-op if already active */
  CHECK(napi_get_boolean(env, true, &ok));
  return ok;
}

static napi_value js_flush(napi_env env, napi_callback_info info) {
  ARGS(1);
  sock_t *s = get_sock(env, argv[0]);
  if (s && !s->closed) tx_flush(s);
  return NULL;
}

/* close(handle): idempotent; safe from inside the receive callback. */
static napi_value js_close(napi_env env, napi_callback_info info) {
  ARGS(1);
  sock_t *s = get_sock(env, argv[0]);
  if (s) sock_close(s);
  return NULL;
}

/* ref/unref(handle): whether an open socket keeps the event loop alive. */
static napi_value js_ref(napi_env env, napi_callback_info info) {
  ARGS(2);
  sock_t *s = get_sock(env, argv[0]);
  bool on = true;
  napi_get_value_bool(env, argv[1], &on);
  if (s && !s->closed) {
    if (on)
      uv_ref((uv_handle_t *)&s->poll);
    else
      uv_unref((uv_handle_t *)&s->poll);
  }
  return NULL;
}

static void set_num(napi_env env, napi_value o, const char *k, double v) {
  napi_value x;
  if (napi_create_double(env, v, &x) == napi_ok)
    napi_set_named_property(env, o, k, x);
}

static napi_value js_stats(napi_env env, napi_callback_info info) {
  ARGS(1);
  sock_t *s = get_sock(env, argv[0]);
  if (!s) return NULL;
  napi_value o;
  CHECK(napi_create_object(env, &o));
  const stats_t *t = &s->st;
  set_num(env, o, "rxDatagrams", t->rx_datagrams);
  set_num(env, o, "rxBatches", t->rx_batches);
  set_num(env, o, "rxSyscalls", t->rx_syscalls);
  set_num(env, o, "rxWakeups", t->rx_wakeups);
  set_num(env, o, "rxTruncated", t->rx_truncated);
  set_num(env, o, "rxErrors", t->rx_errors);
  set_num(env, o, "txDatagrams", t->tx_datagrams);
  set_num(env, o, "txSyscalls", t->tx_syscalls);
  set_num(env, o, "txErrors", t->tx_errors);
  set_num(env, o, "txEagain", t->tx_eagain);
  set_num(env, o, "txDropped", t->tx_dropped);
  set_num(env, o, "txQueued", s->tq_count - s->tq_head);
  set_num(env, o, "lastErrno", t->last_errno);
  return o;
}

/* bufferSizes(handle) -> {recv, send}: what getsockopt reported after the
 * setsockopt at creation (Linux doubles the value asked for, capped by
 * net.core.rmem_max/wmem_max). */
static napi_value js_buffer_sizes(napi_env env, napi_callback_info info) {
  ARGS(1);
  sock_t *s = get_sock(env, argv[0]);
  if (!s) return NULL;
  napi_value o;
  CHECK(napi_create_object(env, &o));
  set_num(env, o, "recv", s->rcvbuf);
  set_num(env, o, "send", s->sndbuf);
  return o;
}

/* A JS array of n int32 values (NULL with an exception pending on failure). */
static napi_value int32_array(napi_env env, const int32_t *v, uint32_t n) {
  napi_value arr, x;
  CHECK(napi_create_array_with_length(env, n, &arr));
  for (uint32_t i = 0; i < n; i++) {
    CHECK(napi_create_int32(env, v[i], &x));
    CHECK(napi_set_element(env, arr, i, x));
  }
  return arr;
}

/* address(handle) -> [family, port, a0, a1, a2, a3, scope] of the bound
 * socket. */
static napi_value js_address(napi_env env, napi_callback_info info) {
  ARGS(1);
  sock_t *s = get_sock(env, argv[0]);
  if (!s) return NULL;
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (s->closed || getsockname(s->fd, (struct sockaddr *)&ss, &len) < 0) {
    throw_errno(env, s->closed ? EBADF : errno, "getsockname", NULL);
    return NULL;
  }
  int32_t v[7];
  v[0] = ss.ss_family == AF_INET ? 4 : 6;
  v[1] = sockaddr_port(&ss);
  sockaddr_to_words(&ss, v + 2);
  v[6] = ss.ss_family == AF_INET6
             ? (int32_t)((struct sockaddr_in6 *)&ss)->sin6_scope_id
             : 0;
  return int32_array(env, v, 7);
}

/* parseAddress(text, family) -> [a0, a1, a2, a3, scope] or null.
 * Used by the JS wrapper on a cache miss only. */
static napi_value js_parse_address(napi_env env, napi_callback_info info) {
  ARGS(2);
  char txt[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  size_t n;
  napi_value r;
  if (napi_get_value_string_utf8(env, argv[0], txt, sizeof txt, &n) != napi_ok) {
    napi_throw_type_error(env, NULL, "address must be a string");
    return NULL;
  }
  int fam = arg_u32(env, argv[1], 4) == 6 ? AF_INET6 : AF_INET;
  struct sockaddr_storage ss;
  socklen_t len;
  if (n >= sizeof txt - 1 || text_to_sockaddr(fam, txt, 0, &ss, &len) < 0) {
    CHECK(napi_get_null(env, &r));
    return r;
  }
  int32_t w[5];
  sockaddr_to_words(&ss, w);
  w[4] = fam == AF_INET6 ? (int32_t)((struct sockaddr_in6 *)&ss)->sin6_scope_id : 0;
  return int32_array(env, w, 5);
}

/* formatAddress(family, a0, a1, a2, a3, scope) -> text.  Cache-miss path
 * only.  Formatted the way node:dgram reports addresses (node's
 * AddressToJS): libuv's inet_ntop, and "%<interface>" after a link-local
 * IPv6 address with a scope id. */
static napi_value js_format_address(napi_env env, napi_callback_info info) {
  ARGS(6);
  char txt[INET6_ADDRSTRLEN + 1 + UV_IF_NAMESIZE];
  uint8_t b[16];
  int fam = arg_u32(env, argv[0], 4) == 6 ? AF_INET6 : AF_INET;
  for (int i = 0; i < (fam == AF_INET ? 1 : 4); i++) {
    uint32_t w = htonl(arg_u32(env, argv[1 + i], 0));
    memcpy(b + 4 * i, &w, 4);
  }
  if (uv_inet_ntop(fam, b, txt, INET6_ADDRSTRLEN) != 0) txt[0] = 0;
  uint32_t scope = arg_u32(env, argv[5], 0);
  struct in6_addr a6;
  memcpy(&a6, b, sizeof a6);
  if (fam == AF_INET6 && scope && IN6_IS_ADDR_LINKLOCAL(&a6)) {
    size_t n = strlen(txt), room = sizeof txt - n - 1;
    txt[n] = '%';
    if (uv_if_indextoiid(scope, txt + n + 1, &room) != 0) txt[n] = 0;
  }
  napi_value r;
  CHECK(napi_create_string_utf8(env, txt, NAPI_AUTO_LENGTH, &r));
  return r;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  const struct {
    const char *name;
    napi_callback fn;
  } fns[] = {
      {"createSocket", js_create_socket}, {"bind", js_bind},
      {"setReceiver", js_set_receiver},   {"send", js_send},
      {"flush", js_flush},                {"close", js_close},
      {"ref", js_ref},                    {"stats", js_stats},
      {"address", js_address},            {"parseAddress", js_parse_address},
      {"formatAddress", js_format_address}, {"bufferSizes", js_buffer_sizes},
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    if (napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn,
                             NULL, &f) != napi_ok ||
        napi_set_named_property(env, exports, fns[i].name, f) != napi_ok)
      return NULL;
  }
  napi_value v;
  if (napi_create_int32(env, META_FIELDS, &v) == napi_ok)
    napi_set_named_property(env, exports, "META_FIELDS", v);
  return exports;
}
