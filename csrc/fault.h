/* Fault injection: make a hiredis call (or a system call) fail on demand,
 * so that tests run the error paths that a healthy server and a healthy
 * malloc never reach.
 *
 * hiredis 0.14 allocates with libc malloc and has no allocator hooks, so
 * its out-of-memory paths (redisConnect* returning NULL, a reader that
 * cannot be created, redisAppendCommandArgv or redisReaderFeed out of
 * memory) cannot be provoked from outside.  Each such call site carries a
 * check:
 *
 *     if (PYRC_FAULT(connect)) { ... behave as if the call had failed ... }
 *
 * Debug builds only (PYREDCACHE_DEBUG_BUILD=1 defines PYRC_FAULT_INJECTION):
 * each site has a counter that tests arm from Python with
 * _core._set_fault(site, after, times=1): the site passes `after` more
 * times, then fails `times` times (-1: until disarmed), then passes again.
 * In release builds every check is the constant 0, so the compiler drops
 * it with its branch; only the site's name is still checked (it must be in
 * PYRC_FAULT_SITES).
 *
 * The counters are C ints, not Python objects, and are touched with the
 * GIL released too (connect, write and read sites run without it); tests
 * arm a site from the one thread that drives the connection.
 *
 * Helpers for the sites whose failure hiredis records in its structures:
 *   PYRC_FAULT_CTX(site, ctx, code): when the site fires, set ctx->err to
 *     code (REDIS_ERR_IO, REDIS_ERR_OOM, ...) with hiredis' message, and
 *     errno for REDIS_ERR_IO; hiredis calls that start with "return early
 *     when the context has seen an error" (redisBufferRead/Write) then
 *     fail at once.  Evaluates to 1 when it fired.
 *   PYRC_FAULT_READER(site, reader): when the site fires, put the reader
 *     in hiredis' out-of-memory state, as a failed allocation inside
 *     redisReaderFeed does: the feed and every later redisReaderGetReply
 *     return REDIS_ERR.  Evaluates to 1 when it fired.
 */
#ifndef PYRC_FAULT_H
#define PYRC_FAULT_H

#include "module.h"

#include <hiredis/hiredis.h>

/* Every site, in the order _core._fault_sites() lists them. */
#define PYRC_FAULT_SITES(X)                                                  \
    X(connect)        /* redisConnect* returns NULL (out of memory) */       \
    X(reader_create)  /* redisReaderCreateWithFunctions returns NULL */      \
    X(set_timeout)    /* redisSetTimeout fails (setsockopt) */               \
    X(append)         /* redisAppendCommandArgv fails (out of memory) */     \
    X(buffer_write)   /* redisBufferWrite fails (I/O error) */               \
    X(buffer_read)    /* redisBufferRead fails (reader out of memory) */     \
    X(spin_feed)      /* busy-poll's redisReaderFeed is out of memory */     \
    X(mpx_feed)       /* multi_pipeline's redisReaderFeed is out of memory */\
    X(mpx_poll)       /* multi_pipeline's poll() fails (ENOMEM) */           \
    X(mpx_send)       /* multi_pipeline's send() fails (EPIPE) */            \
    X(reader_feed)    /* Reader.feed()'s redisReaderFeed is out of memory */

enum {
#define PYRC_FAULT_ENUM(name) PYRC_FAULT_SITE_##name,
    PYRC_FAULT_SITES(PYRC_FAULT_ENUM)
#undef PYRC_FAULT_ENUM
    PYRC_FAULT_NSITES
};

#ifdef PYRC_FAULT_INJECTION

/* 1 when this pass of the site must fail (and count it), else 0. */
int pyrc_fault_hit(int site);
int pyrc_fault_ctx_error(redisContext *ctx, int code);
int pyrc_fault_reader_oom(redisReader *reader);
/* Adds _set_fault() and _fault_sites() to the module. */
int pyrc_fault_exec(PyObject *module);

#define PYRC_FAULT(site) pyrc_fault_hit(PYRC_FAULT_SITE_##site)
#define PYRC_FAULT_CTX(site, ctx, code) \
    (PYRC_FAULT(site) && pyrc_fault_ctx_error((ctx), (code)))
#define PYRC_FAULT_READER(site, reader) \
    (PYRC_FAULT(site) && pyrc_fault_reader_oom(reader))

#else /* release: nothing is injected, nothing is compiled */

#define PYRC_FAULT(site) ((void)PYRC_FAULT_SITE_##site, 0)
#define PYRC_FAULT_CTX(site, ctx, code) PYRC_FAULT(site)
#define PYRC_FAULT_READER(site, reader) PYRC_FAULT(site)

static inline int
pyrc_fault_exec(PyObject *module)
{
    (void)module;
    return 0;
}

#endif /* PYRC_FAULT_INJECTION */

#endif /* PYRC_FAULT_H */
