/* Connection: one blocking connection to one Redis server, over hiredis.
 *
 * I/O model.  hiredis owns the socket (redisConnectWithTimeout,
 * redisConnectUnixWithTimeout), the output buffer (redisAppendCommandArgv)
 * and the protocol reader, whose callbacks (reply.c) build Python objects.
 * We drive the I/O ourselves so that the GIL is released exactly around
 * the blocking system calls and never while Python objects are touched:
 *
 *     append commands      GIL held   (reads the argument objects)
 *     redisBufferWrite     GIL released, until the output buffer is empty
 *     redisReaderGetReply  GIL held   (callbacks create objects)
 *     redisBufferRead      GIL released, one read(2) into the reader
 *
 * A Connection is used by one thread at a time (pools hand each thread its
 * own); `busy` turns a second concurrent caller into a RuntimeError instead
 * of a corrupted stream.
 *
 * Liveness.  Between commands nothing is expected from the server, so a
 * readable socket before a command means the server closed it (restart,
 * CLIENT KILL, idle timeout) or the stream is out of step: it is replaced
 * before anything is sent, and the command goes to the new connection.
 * Any error while a command is in flight (timeout, EOF, protocol error,
 * KeyboardInterrupt) closes the connection: a late reply must never be read
 * as the answer to the next command.
 *
 * Fork.  pyrc_fork_generation is bumped in the child by a pthread_atfork
 * handler.  A context opened in an older generation belongs to the parent:
 * the child closes only its own copy of the descriptor and connects anew.
 * It is the one C global of the module: a counter of this process's forks,
 * not a Python object.
 */
#include "connection.h" /* Python.h first: it sets _GNU_SOURCE */
#include "fault.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <structmember.h>

static volatile unsigned long pyrc_fork_generation = 0;
static int pyrc_atfork_registered = 0;

static void
pyrc_after_fork_child(void)
{
    pyrc_fork_generation++;
}

/* The handler is registered when the first Connection is initialised, not
 * when the module is imported: importing pyredcache registers nothing
 * process-wide.  No connection can be opened before its own __init__, so
 * none misses the handler.  Called with the GIL held: no race. */
static int
pyrc_register_atfork(void)
{
    if (!pyrc_atfork_registered) {
        if (pthread_atfork(NULL, NULL, pyrc_after_fork_child) != 0) {
            PyErr_SetString(PyExc_OSError, "pthread_atfork failed");
            return -1;
        }
        pyrc_atfork_registered = 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* helpers                                                             */

/* Initialisation.  Connection.__new__ leaves every configuration field
 * NULL; __init__ checks all its arguments first and then sets every field
 * at once, self->host last, so `host != NULL` means "initialised": a
 * failed __init__ leaves the connection as it was.  tp_clear sets host to
 * NULL first.  Everything that needs the configuration goes through
 * pyrc_conn_enter() (or a getter below), which refuses an uninitialised
 * connection with AttributeError, as the pure twin's missing attributes
 * do. */
static int
conn_check_initialised(ConnectionObject *self)
{
    if (self->host == NULL) {
        PyErr_SetString(PyExc_AttributeError,
                        "Connection is not initialised: its __init__() was "
                        "not called, or failed");
        return -1;
    }
    return 0;
}

PyObject *
pyrc_conn_describe(ConnectionObject *self)
{
    if (self->host == NULL) {
        return PyUnicode_FromString("(not initialised)");
    }
    if (self->unix_socket_path != NULL && self->unix_socket_path != Py_None) {
        return Py_NewRef(self->unix_socket_path);
    }
    return PyUnicode_FromFormat("%U:%d", self->host, self->port);
}

/* Raise exc_type with "<prefix> <host:port>: <detail>". */
static void
raise_for(ConnectionObject *self, PyObject *exc_type, const char *prefix,
          const char *detail)
{
    PyObject *where = pyrc_conn_describe(self);
    if (where == NULL) {
        return;
    }
    PyErr_Format(exc_type, "%s %U: %s", prefix, where, detail);
    Py_DECREF(where);
}

/* Close the socket and free the context.  The GIL must be held: the
 * reader may hold a half-built reply made of Python objects. */
void
pyrc_conn_drop(ConnectionObject *self)
{
    redisContext *ctx = self->ctx;
    self->ctx = NULL;
    if (ctx != NULL) {
        redisFree(ctx);
    }
    pyrc_reply_clear_error(&self->rctx);
}

/* socket_timeout and socket_connect_timeout when not given, seconds: a
 * cache that hangs is worse than a miss.  None (given) means no bound. */
#define PYRC_DEFAULT_TIMEOUT_S 1

/* obj: the argument, NULL when not given (the default), None for ever. */
static int
timeout_from_object(PyObject *obj, const char *name, struct timeval *tv,
                    PyObject **out)
{
    if (obj == NULL) {
        tv->tv_sec = PYRC_DEFAULT_TIMEOUT_S;
        tv->tv_usec = 0;
        *out = PyFloat_FromDouble((double)PYRC_DEFAULT_TIMEOUT_S);
        return *out == NULL ? -1 : 0;
    }
    if (obj == Py_None) {
        tv->tv_sec = 0;
        tv->tv_usec = 0;
        *out = Py_NewRef(Py_None);
        return 0;
    }
    if (PyBool_Check(obj) || !(PyFloat_Check(obj) || PyLong_Check(obj))) {
        PyErr_Format(PyExc_TypeError,
                     "%s must be a number of seconds or None, not %.100s",
                     name, Py_TYPE(obj)->tp_name);
        return -1;
    }
    double secs = PyFloat_AsDouble(obj);
    if (secs == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    if (!(secs > 0.0) || secs > 1e9) {
        PyErr_Format(PyExc_ValueError,
                     "%s must be > 0 seconds, got %R", name, obj);
        return -1;
    }
    tv->tv_sec = (time_t)secs;
    tv->tv_usec = (suseconds_t)((secs - (double)tv->tv_sec) * 1e6);
    if (tv->tv_sec == 0 && tv->tv_usec == 0) {
        tv->tv_usec = 1; /* {0,0} would mean "forever" to setsockopt */
    }
    *out = PyFloat_FromDouble(secs);
    return *out == NULL ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* argument encoding                                                    */

/* An argument longer than this makes the server reset the connection
 * (proto-max-bulk-len, 512 MiB by default), which the caller would see as
 * a ConnectionError from a dead server: it is refused before anything is
 * sent.  Exported as PROTO_MAX_BULK_LEN; the twin has the same limit. */
#define PYRC_PROTO_MAX_BULK_LEN 536870912LL

static int
bulk_too_long(size_t len)
{
    PyErr_Format(PyExc_ValueError,
                 "command argument of %zu bytes is over %lld bytes, Redis's "
                 "limit for one bulk string (proto-max-bulk-len)",
                 len, PYRC_PROTO_MAX_BULK_LEN);
    return -1;
}

/* One command argument as bytes for redisAppendCommandArgv.  Numbers are
 * formatted into `scratch` (32 bytes); other conversions that need memory
 * leave a new reference in *keep, to be released after the append.  *ptr
 * points into arg itself (bytes, str) or into *keep: the caller keeps arg
 * alive until the bytes are copied (see pyrc_command_sequences).  On
 * failure *keep is NULL. */
static int
encode_arg(PyObject *arg, const char **ptr, size_t *len, char *scratch,
           PyObject **keep)
{
    PyTypeObject *tp = Py_TYPE(arg);
    *keep = NULL;
    if (tp == &PyBytes_Type) {
        *ptr = PyBytes_AS_STRING(arg);
        *len = (size_t)PyBytes_GET_SIZE(arg);
        if (*len > (size_t)PYRC_PROTO_MAX_BULK_LEN) {
            return bulk_too_long(*len);
        }
        return 0;
    }
    if (tp == &PyUnicode_Type) {
        Py_ssize_t n;
        *ptr = PyUnicode_AsUTF8AndSize(arg, &n);
        if (*ptr == NULL) {
            return -1;
        }
        *len = (size_t)n;
        if (*len > (size_t)PYRC_PROTO_MAX_BULK_LEN) {
            return bulk_too_long(*len);
        }
        return 0;
    }
    if (PyBool_Check(arg)) {
        PyErr_SetString(PyExc_TypeError,
                        "invalid command argument of type 'bool': convert "
                        "it to int or str first");
        return -1;
    }
    if (PyLong_Check(arg)) {
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(arg, &overflow);
        if (v == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (!overflow) {
            *len = (size_t)snprintf(scratch, 32, "%lld", v);
            *ptr = scratch;
            return 0;
        }
        PyObject *s = PyNumber_ToBase(arg, 10);
        if (s == NULL) {
            return -1;
        }
        *keep = PyUnicode_AsUTF8String(s);
        Py_DECREF(s);
        if (*keep == NULL) {
            return -1;
        }
        *ptr = PyBytes_AS_STRING(*keep);
        *len = (size_t)PyBytes_GET_SIZE(*keep);
        return 0;
    }
    if (PyFloat_Check(arg)) {
        /* repr(): the shortest string that round-trips */
        char *s = PyOS_double_to_string(PyFloat_AS_DOUBLE(arg), 'r', 0,
                                        Py_DTSF_ADD_DOT_0, NULL);
        if (s == NULL) {
            return -1;
        }
        *keep = PyBytes_FromString(s);
        PyMem_Free(s);
        if (*keep == NULL) {
            return -1;
        }
        *ptr = PyBytes_AS_STRING(*keep);
        *len = (size_t)PyBytes_GET_SIZE(*keep);
        return 0;
    }
    if (PyBytes_Check(arg) || PyByteArray_Check(arg) || PyMemoryView_Check(arg)) {
        *keep = PyBytes_FromObject(arg);
        if (*keep == NULL) {
            return -1;
        }
        *ptr = PyBytes_AS_STRING(*keep);
        *len = (size_t)PyBytes_GET_SIZE(*keep);
        if (*len > (size_t)PYRC_PROTO_MAX_BULK_LEN) {
            Py_CLEAR(*keep);
            return bulk_too_long(*len);
        }
        return 0;
    }
    if (PyUnicode_Check(arg)) {
        Py_ssize_t n;
        *ptr = PyUnicode_AsUTF8AndSize(arg, &n);
        if (*ptr == NULL) {
            return -1;
        }
        *len = (size_t)n;
        if (*len > (size_t)PYRC_PROTO_MAX_BULK_LEN) {
            return bulk_too_long(*len);
        }
        return 0;
    }
    PyErr_Format(PyExc_TypeError,
                 "invalid command argument of type '%.100s': expected "
                 "bytes, str, int or float", tp->tp_name);
    return -1;
}


void
pyrc_encoded_free(encoded_t *e)
{
    if (e->argc != e->argc_small) {
        PyMem_Free(e->argc);
    }
    if (e->argv != e->argv_small) {
        PyMem_Free((void *)e->argv);
    }
    if (e->argvlen != e->argvlen_small) {
        PyMem_Free(e->argvlen);
    }
    if (e->scratch != e->scratch_small) {
        PyMem_Free(e->scratch);
    }
    e->argc = NULL;
    e->argv = NULL;
    e->argvlen = NULL;
    e->scratch = NULL;
    Py_CLEAR(e->keep);
}

/* Size the arrays for ncmds commands of nargs arguments in all. */
static int
encoded_init(encoded_t *e, Py_ssize_t ncmds, Py_ssize_t nargs)
{
    e->ncmds = ncmds;
    e->nargs = nargs;
    e->filled = 0;
    e->keep = NULL;
    if (ncmds == 1) {
        e->argc = e->argc_small;
    }
    else {
        e->argc = PyMem_Malloc(sizeof(int) * (size_t)ncmds);
    }
    if (nargs <= PYRC_SMALL_ARGS) {
        e->argv = e->argv_small;
        e->argvlen = e->argvlen_small;
        e->scratch = e->scratch_small;
    }
    else {
        e->argv = PyMem_Malloc(sizeof(char *) * (size_t)nargs);
        e->argvlen = PyMem_Malloc(sizeof(size_t) * (size_t)nargs);
        e->scratch = PyMem_Malloc(32 * (size_t)nargs);
    }
    if (e->argc == NULL || e->argv == NULL || e->argvlen == NULL || e->scratch == NULL) {
        pyrc_encoded_free(e);
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* Encode command number i from its n argument objects. */
static int
encoded_add(encoded_t *e, Py_ssize_t i, PyObject *const *items, Py_ssize_t n)
{
    e->argc[i] = (int)n;
    for (Py_ssize_t j = 0; j < n; j++) {
        Py_ssize_t k = e->filled++;
        PyObject *keep;
        if (encode_arg(items[j], &e->argv[k], &e->argvlen[k],
                       e->scratch + 32 * k, &keep) < 0) {
            return -1;
        }
        if (keep != NULL) {
            if (e->keep == NULL && (e->keep = PyList_New(0)) == NULL) {
                Py_DECREF(keep);
                return -1;
            }
            int rc = PyList_Append(e->keep, keep);
            Py_DECREF(keep);
            if (rc < 0) {
                return -1;
            }
        }
    }
    return 0;
}

/* The most arguments in one call: argc is an int for hiredis, and the
 * arrays take up to 64 bytes per argument. */
static int
check_nargs(Py_ssize_t total, Py_ssize_t n)
{
    if (n > INT_MAX || total > PY_SSIZE_T_MAX / 64 - n) {
        PyErr_SetString(PyExc_ValueError, "too many command arguments");
        return -1;
    }
    return 0;
}

/* Encode one command given as an argument vector (owned by the caller for
 * the whole call, as METH_FASTCALL arguments are). */
static int
encode_argv(encoded_t *e, PyObject *const *args, Py_ssize_t nargs)
{
    if (check_nargs(0, nargs) < 0) {
        return -1;
    }
    if (encoded_init(e, 1, nargs) < 0) {
        return -1;
    }
    if (encoded_add(e, 0, args, nargs) < 0) {
        pyrc_encoded_free(e);
        return -1;
    }
    return 0;
}

/* Encode the commands of `cmds`, a tuple of tuples (from
 * pyrc_command_sequences), which the caller keeps alive until the encoded
 * form is no longer used. */
int
pyrc_encode_commands(encoded_t *e, PyObject *cmds)
{
    Py_ssize_t ncmds = PyTuple_GET_SIZE(cmds), nargs = 0;
    for (Py_ssize_t i = 0; i < ncmds; i++) {
        Py_ssize_t n = PyTuple_GET_SIZE(PyTuple_GET_ITEM(cmds, i));
        if (n == 0) {
            PyErr_SetString(PyExc_ValueError,
                            "a command needs at least one argument (its name)");
            return -1;
        }
        if (check_nargs(nargs, n) < 0) {
            return -1;
        }
        nargs += n;
    }
    if (encoded_init(e, ncmds, nargs) < 0) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < ncmds; i++) {
        PyObject *cmd = PyTuple_GET_ITEM(cmds, i);
        if (encoded_add(e, i, &PyTuple_GET_ITEM(cmd, 0), PyTuple_GET_SIZE(cmd)) < 0) {
            pyrc_encoded_free(e);
            return -1;
        }
    }
    return 0;
}

/* Turn an iterable of commands into a tuple of tuples.
 *
 * Ownership.  The encoded arguments point into the argument objects
 * (bytes, str), and they are read after the GIL has been released (the
 * connect in pyrc_conn_ensure_connected) and after Python code has run (an
 * iterator, __buffer__, a finalizer during an allocation).  A list may be
 * changed by another thread or by that code meanwhile, and an item it
 * replaced is freed: so every level is a tuple, which owns references to
 * its items for as long as the caller holds it.  Tuples given are used as
 * they are (the common case allocates nothing), lists are copied. */
PyObject *
pyrc_command_sequences(PyObject *commands)
{
    PyObject *outer, *result = NULL;
    if (PyTuple_CheckExact(commands)) {
        outer = Py_NewRef(commands);
    }
    else if (PyList_CheckExact(commands)) {
        outer = PyList_AsTuple(commands);
    }
    else {
        PyObject *it = PyObject_GetIter(commands);
        if (it == NULL) {
            if (PyErr_ExceptionMatches(PyExc_TypeError)) {
                PyErr_SetString(PyExc_TypeError,
                                "commands must be an iterable of commands");
            }
            return NULL;
        }
        outer = PySequence_Tuple(it);
        Py_DECREF(it);
    }
    if (outer == NULL) {
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(outer);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(outer, i);
        PyObject *cmd;
        if (PyTuple_CheckExact(item) && result == NULL) {
            continue; /* usable as it is, as long as all before it were */
        }
        if (PyUnicode_Check(item) || PyBytes_Check(item)) {
            PyErr_SetString(PyExc_TypeError,
                            "each command must be a sequence of arguments "
                            "(a tuple or list), not a string");
            goto error;
        }
        if (result == NULL) {
            /* The first item that is not a tuple: copy the outer tuple,
             * whose items up to here are tuples. */
            result = PyTuple_New(n);
            if (result == NULL) {
                goto error;
            }
            for (Py_ssize_t j = 0; j < i; j++) {
                PyTuple_SET_ITEM(result, j, Py_NewRef(PyTuple_GET_ITEM(outer, j)));
            }
        }
        if (PyTuple_CheckExact(item)) {
            cmd = Py_NewRef(item);
        }
        else {
            /* PySequence_Tuple may run Python code (an iterator); `outer`
             * keeps `item` alive meanwhile. */
            PyObject *it = PyObject_GetIter(item);
            if (it == NULL) {
                if (PyErr_ExceptionMatches(PyExc_TypeError)) {
                    PyErr_SetString(PyExc_TypeError,
                                    "each command must be a sequence of "
                                    "arguments (a tuple or list)");
                }
                goto error;
            }
            cmd = PySequence_Tuple(it);
            Py_DECREF(it);
            if (cmd == NULL) {
                goto error;
            }
        }
        PyTuple_SET_ITEM(result, i, cmd);
    }
    if (result == NULL) {
        return outer;
    }
    Py_DECREF(outer);
    return result;
error:
    Py_XDECREF(result);
    Py_DECREF(outer);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* I/O                                                                  */

/* Map a failed hiredis call to an exception, close the connection. */
void
pyrc_conn_raise_io_error(ConnectionObject *self, int err, int saved_errno,
               const char *errstr)
{
    pyrc_state *st = self->st;
    char detail[160];
    snprintf(detail, sizeof(detail), "%s", errstr);
    pyrc_conn_drop(self);
    int timed_out = (err == REDIS_ERR_IO &&
                     (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK));
#ifdef REDIS_ERR_TIMEOUT
    timed_out = timed_out || err == REDIS_ERR_TIMEOUT;
#endif
    if (timed_out) {
        PyObject *where = pyrc_conn_describe(self);
        if (where != NULL) {
            PyErr_Format(st->TimeoutError,
                         "Timeout reading from %U after %R seconds",
                         where, self->socket_timeout);
            Py_DECREF(where);
        }
    }
    else if (err == REDIS_ERR_PROTOCOL) {
        raise_for(self, st->ProtocolError, "Protocol error from", detail);
    }
    else if (err == REDIS_ERR_EOF) {
        raise_for(self, st->ConnectionError, "Server closed the connection:", detail);
    }
    else if (err == REDIS_ERR_OOM) {
        PyErr_NoMemory();
    }
    else {
        raise_for(self, st->ConnectionError, "Error while talking to", detail);
    }
}

/* Write the whole output buffer. 0, or -1 with an exception set (and the
 * connection closed).
 *
 * One write(2) per turn, the GIL released around it only.  A signal
 * interrupts a write that blocks on a full socket buffer (a server that
 * does not read): hiredis returns REDIS_OK with nothing written on EINTR,
 * and a partial write returns too, so between writes Python's handlers
 * run, as in read_reply.  A handler that raised (KeyboardInterrupt)
 * abandons the commands half-written: the connection is closed. */
static int
flush_output(ConnectionObject *self)
{
    redisContext *ctx = self->ctx;
    (void)PYRC_FAULT_CTX(buffer_write, ctx, REDIS_ERR_IO);
    for (;;) {
        int done = 0, rc, saved_errno;
        Py_BEGIN_ALLOW_THREADS
        rc = redisBufferWrite(ctx, &done);
        saved_errno = errno;
        Py_END_ALLOW_THREADS
        if (rc != REDIS_OK) {
            pyrc_conn_raise_io_error(self, ctx->err, saved_errno, ctx->errstr);
            return -1;
        }
        if (done) {
            return 0;
        }
        if (PyErr_CheckSignals() < 0) {
            pyrc_conn_drop(self);
            return -1;
        }
    }
}

/* Busy-poll: wait for the reply by spinning on a non-blocking recv(2)
 * for at most budget_us microseconds, before falling back to a blocking
 * read.  Called without the GIL.
 *
 * Why: a blocking read puts the thread to sleep, and waking it when the
 * reply lands costs tens of microseconds on virtual machines (the idle
 * vCPU halts and must be woken by the host), often more than the server
 * takes to answer.  A client that spins while a same-host or same-rack
 * server answers sees the reply as soon as it lands.  This is the trade
 * Linux makes with SO_BUSY_POLL and KVM with halt-polling
 * (Documentation/virt/kvm/halt-polling.rst): bounded CPU for latency.
 *
 * Returns 1 when bytes were read and fed to the reader, 0 when the budget
 * ran out or the socket reported end of file or an error (the blocking
 * read that follows reports those as usual). */
static int
spin_read(redisContext *ctx, long budget_us)
{
    char buf[16 * 1024];
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const long long budget_ns = (long long)budget_us * 1000;
    for (;;) {
        ssize_t n = recv(ctx->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0) {
            /* fails only when out of memory, which the reader records:
             * the next redisReaderGetReply reports it */
            (void)PYRC_FAULT_READER(spin_feed, ctx->reader);
            (void)redisReaderFeed(ctx->reader, buf, (size_t)n);
            return 1;
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            return 0;
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
        long long spent = (long long)(t.tv_sec - t0.tv_sec) * 1000000000LL
                          + (t.tv_nsec - t0.tv_nsec);
        if (spent >= budget_ns) {
            return 0;
        }
    }
}

/* The spin budget for the next wait, microseconds.  After SPIN_MISS_LIMIT
 * spins in a row that ended empty (a distant server, a blocking command,
 * an overloaded machine) the next SPIN_BACKOFF waits block at once; then
 * one spin probes whether spinning pays again. */
#define SPIN_MISS_LIMIT 4
#define SPIN_BACKOFF 64

long
pyrc_conn_spin_budget(ConnectionObject *self)
{
    if (self->busy_poll_us == 0) {
        return 0;
    }
    if (self->spin_skip > 0) {
        self->spin_skip--;
        return 0;
    }
    return self->busy_poll_us;
}

void
pyrc_conn_spin_account(ConnectionObject *self, int hit)
{
    if (hit) {
        self->spin_hits_total++;
        self->spin_misses = 0;
        return;
    }
    self->spin_misses_total++;
    if (++self->spin_misses >= SPIN_MISS_LIMIT) {
        /* stays at the limit: one more empty probe backs off again */
        self->spin_misses = SPIN_MISS_LIMIT;
        self->spin_skip = SPIN_BACKOFF;
    }
}

/* Read one whole reply.  Returns a new reference, or NULL with an
 * exception set (and the connection closed).  A callback exception is
 * left in self->rctx for the caller: the reply itself was read whole. */
static PyObject *
read_reply(ConnectionObject *self)
{
    redisContext *ctx = self->ctx;
    void *reply = NULL;
    for (;;) {
        if (redisReaderGetReply(ctx->reader, &reply) != REDIS_OK) {
            pyrc_conn_raise_io_error(self, ctx->reader->err, 0, ctx->reader->errstr);
            return NULL;
        }
        if (reply != NULL) {
            return (PyObject *)reply;
        }
        int rc = REDIS_OK, saved_errno = 0, hit = 0;
        long budget = pyrc_conn_spin_budget(self);
        Py_BEGIN_ALLOW_THREADS
        if (budget > 0) {
            hit = spin_read(ctx, budget);
        }
        if (!hit) {
            (void)PYRC_FAULT_CTX(buffer_read, ctx, REDIS_ERR_OOM);
            rc = redisBufferRead(ctx);
            saved_errno = errno;
        }
        Py_END_ALLOW_THREADS
        if (budget > 0) {
            pyrc_conn_spin_account(self, hit);
        }
        if (rc != REDIS_OK) {
            pyrc_conn_raise_io_error(self, ctx->err, saved_errno, ctx->errstr);
            return NULL;
        }
        /* A signal (EINTR) makes redisBufferRead return with nothing read;
         * let Python handlers run, and abandon the reply if one raised. */
        if (PyErr_CheckSignals() < 0) {
            pyrc_conn_drop(self);
            return NULL;
        }
    }
}

/* Send encoded commands and read one reply each.  The context must be
 * connected.  Returns a new list, or NULL with an exception set. */
static PyObject *
roundtrip(ConnectionObject *self, encoded_t *e)
{
    redisContext *ctx = self->ctx;
    Py_ssize_t k = 0;
    for (Py_ssize_t i = 0; i < e->ncmds; i++) {
        if (PYRC_FAULT_CTX(append, ctx, REDIS_ERR_OOM) ||
            redisAppendCommandArgv(ctx, e->argc[i], e->argv + k,
                                   e->argvlen + k) != REDIS_OK) {
            /* only fails on out-of-memory; part of the pipeline may be in
             * the output buffer, so the connection cannot be reused */
            pyrc_conn_drop(self);
            PyErr_NoMemory();
            return NULL;
        }
        k += e->argc[i];
    }
    if (flush_output(self) < 0) {
        return NULL;
    }
    PyObject *replies = PyList_New(e->ncmds);
    if (replies == NULL) {
        pyrc_conn_drop(self);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < e->ncmds; i++) {
        PyObject *reply = read_reply(self);
        if (reply == NULL) {
            Py_DECREF(replies);
            return NULL;
        }
        PyList_SET_ITEM(replies, i, reply);
    }
    /* Every reply was read, so the stream is in step even if a callback
     * failed (out of memory building an object): raise that now. */
    if (pyrc_reply_take_error(&self->rctx) < 0) {
        Py_DECREF(replies);
        return NULL;
    }
    return replies;
}

/* Run commands during connect() (AUTH, SELECT); error replies raise. */
static int
handshake_command(ConnectionObject *self, PyObject *cmd)
{
    encoded_t e;
    if (encode_argv(&e, &PyTuple_GET_ITEM(cmd, 0), PyTuple_GET_SIZE(cmd)) < 0) {
        return -1;
    }
    PyObject *replies = roundtrip(self, &e);
    pyrc_encoded_free(&e);
    if (replies == NULL) {
        return -1;
    }
    PyObject *reply = PyList_GET_ITEM(replies, 0);
    if (PyObject_TypeCheck(reply, (PyTypeObject *)self->st->ResponseError)) {
        PyErr_SetObject((PyObject *)Py_TYPE(reply), reply);
        Py_DECREF(replies);
        return -1;
    }
    Py_DECREF(replies);
    return 0;
}

static int
do_connect(ConnectionObject *self)
{
    redisContext *ctx;
    pyrc_conn_drop(self);

    const char *path = NULL, *host = NULL;
    PyObject *path_obj = NULL;
    if (self->unix_socket_path != Py_None) {
        /* A file system path, encoded as os.fsencode() does (a path whose
         * bytes are not UTF-8 reaches Python as surrogate escapes). */
        path_obj = PyUnicode_EncodeFSDefault(self->unix_socket_path);
        if (path_obj == NULL) {
            return -1;
        }
        path = PyBytes_AS_STRING(path_obj);
        if (strlen(path) != (size_t)PyBytes_GET_SIZE(path_obj)) {
            Py_DECREF(path_obj);
            PyErr_SetString(PyExc_ValueError, "unix_socket_path: embedded null byte");
            return -1;
        }
    }
    else {
        host = PyUnicode_AsUTF8(self->host);
        if (host == NULL) {
            return -1;
        }
    }
    /* host belongs to self->host, path to path_obj, both alive across the
     * connect; no Python object is touched below. */
    int port = self->port, has_tv = self->has_connect_timeout;
    struct timeval tv = self->connect_tv;
    Py_BEGIN_ALLOW_THREADS
    if (path != NULL) {
        ctx = has_tv ? redisConnectUnixWithTimeout(path, tv) : redisConnectUnix(path);
    }
    else {
        ctx = has_tv ? redisConnectWithTimeout(host, port, tv) : redisConnect(host, port);
    }
    if (PYRC_FAULT(connect)) { redisFree(ctx); ctx = NULL; }
    Py_END_ALLOW_THREADS
    Py_XDECREF(path_obj);
    if (ctx == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    if (ctx->err) {
        char detail[160];
        snprintf(detail, sizeof(detail), "%s", ctx->errstr);
        redisFree(ctx);
        raise_for(self, self->st->ConnectionError, "Error connecting to", detail);
        return -1;
    }
    redisReader *reader = pyrc_reader_create(&self->rctx);
    if (reader == NULL) {
        redisFree(ctx);
        PyErr_NoMemory();
        return -1;
    }
    redisReaderFree(ctx->reader);
    ctx->reader = reader;
    if (PYRC_FAULT_CTX(set_timeout, ctx, REDIS_ERR_IO) ||
        redisSetTimeout(ctx, self->timeout_tv) != REDIS_OK) {
        char detail[160];
        snprintf(detail, sizeof(detail), "%s", ctx->errstr);
        redisFree(ctx);
        raise_for(self, self->st->ConnectionError, "Error configuring", detail);
        return -1;
    }
    self->ctx = ctx;
    self->generation = pyrc_fork_generation;

    PyObject *cmd = NULL;
    if (self->password != Py_None) {
        if (self->username != Py_None) {
            cmd = Py_BuildValue("(sOO)", "AUTH", self->username, self->password);
        }
        else {
            cmd = Py_BuildValue("(sO)", "AUTH", self->password);
        }
        if (cmd == NULL || handshake_command(self, cmd) < 0) {
            goto error;
        }
        Py_CLEAR(cmd);
    }
    if (self->db != 0) {
        cmd = Py_BuildValue("(si)", "SELECT", self->db);
        if (cmd == NULL || handshake_command(self, cmd) < 0) {
            goto error;
        }
        Py_CLEAR(cmd);
    }
    return 0;
error:
    Py_XDECREF(cmd);
    pyrc_conn_drop(self);
    return -1;
}

/* Make sure a live context of this process is there. */
int
pyrc_conn_ensure_connected(ConnectionObject *self)
{
    if (self->ctx != NULL) {
        if (self->generation != pyrc_fork_generation) {
            /* made by the parent before fork(): close our copy only */
            pyrc_conn_drop(self);
        }
        else {
            struct pollfd pfd = {.fd = self->ctx->fd, .events = POLLIN};
            redisReader *r = self->ctx->reader;
            int n = poll(&pfd, 1, 0);
            if (n == 0 && r->pos >= r->len) {
                return 0; /* quiet: alive as far as we can tell */
            }
            /* readable (EOF or stray bytes), hung up, poll failed, or
             * bytes past the last reply already read: out of step */
            pyrc_conn_drop(self);
        }
    }
    return do_connect(self);
}

int
pyrc_conn_enter(ConnectionObject *self)
{
    if (conn_check_initialised(self) < 0) {
        return -1;
    }
    /* Tested and set with the GIL held and no Python code in between, so
     * two threads cannot both get past here (the pure twin needs a lock
     * for the same guarantee). */
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError,
                        "Connection is in use by another thread; give each "
                        "thread its own connection (a pool does)");
        return -1;
    }
    self->busy = 1;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Python methods                                                       */

PyDoc_STRVAR(execute_command_doc,
"execute_command($self, /, *args)\n"
"--\n"
"\n"
"Send one command and return its decoded reply.\n"
"\n"
"args: the command name and its arguments; each bytes, str (sent as\n"
"UTF-8), int or float.  Returns bytes (bulk and status replies), int, list\n"
"or None.  Raises ResponseError for an error reply, ConnectionError when\n"
"the server cannot be reached or drops the connection, TimeoutError when no\n"
"reply comes within socket_timeout seconds, TypeError for an argument of\n"
"another type and ValueError for one longer than PROTO_MAX_BULK_LEN\n"
"(536870912) bytes, Redis's proto-max-bulk-len (nothing is sent then).");

static PyObject *
Connection_execute_command(ConnectionObject *self, PyObject *const *args,
                           Py_ssize_t nargs)
{
    if (nargs == 0) {
        PyErr_SetString(PyExc_TypeError,
                        "execute_command() needs at least the command name");
        return NULL;
    }
    encoded_t e;
    if (encode_argv(&e, args, nargs) < 0) {
        return NULL;
    }
    PyObject *replies = NULL, *reply = NULL;
    if (pyrc_conn_enter(self) < 0) {
        pyrc_encoded_free(&e);
        return NULL;
    }
    if (pyrc_conn_ensure_connected(self) == 0) {
        replies = roundtrip(self, &e);
    }
    self->busy = 0;
    pyrc_encoded_free(&e);
    if (replies == NULL) {
        return NULL;
    }
    reply = Py_NewRef(PyList_GET_ITEM(replies, 0));
    Py_DECREF(replies);
    if (PyObject_TypeCheck(reply, (PyTypeObject *)self->st->ResponseError)) {
        PyErr_SetObject((PyObject *)Py_TYPE(reply), reply);
        Py_DECREF(reply);
        return NULL;
    }
    return reply;
}

PyDoc_STRVAR(pipeline_doc,
"pipeline($self, commands, /)\n"
"--\n"
"\n"
"Write all commands at once and return their replies, in order.\n"
"\n"
"commands: an iterable of commands, each a sequence (tuple or list) of\n"
"arguments as for execute_command().  Returns a list with one reply per\n"
"command; an error reply takes its slot as a ResponseError instance\n"
"instead of being raised.  One round trip, whatever the number of\n"
"commands.  Raises ConnectionError, TimeoutError as execute_command() does;\n"
"TypeError or ValueError for a malformed command or an argument longer\n"
"than PROTO_MAX_BULK_LEN bytes, before anything is sent.  The commands are\n"
"copied (as tuples) before the socket is touched: changing the lists while\n"
"the call runs does not change what is sent.");

static PyObject *
Connection_pipeline(ConnectionObject *self, PyObject *commands)
{
    /* cmds owns every argument until the commands are in hiredis' output
     * buffer, whatever other threads do to the caller's lists while the
     * GIL is released to connect. */
    PyObject *cmds = pyrc_command_sequences(commands);
    if (cmds == NULL) {
        return NULL;
    }
    if (PyTuple_GET_SIZE(cmds) == 0) {
        Py_DECREF(cmds);
        return PyList_New(0);
    }
    encoded_t e;
    int rc = pyrc_encode_commands(&e, cmds);
    if (rc < 0) {
        Py_DECREF(cmds);
        return NULL;
    }
    PyObject *replies = NULL;
    if (pyrc_conn_enter(self) == 0) {
        if (pyrc_conn_ensure_connected(self) == 0) {
            replies = roundtrip(self, &e);
        }
        self->busy = 0;
    }
    pyrc_encoded_free(&e);
    Py_DECREF(cmds);
    return replies;
}

PyDoc_STRVAR(connect_doc,
"connect($self, /)\n"
"--\n"
"\n"
"Open the socket now (it is otherwise opened on first use), closing any\n"
"open one.  Raises ConnectionError when the server cannot be reached within\n"
"socket_connect_timeout seconds, ResponseError when AUTH or SELECT fails.");

static PyObject *
Connection_connect(ConnectionObject *self, PyObject *Py_UNUSED(ignored))
{
    if (pyrc_conn_enter(self) < 0) {
        return NULL;
    }
    int rc = do_connect(self);
    self->busy = 0;
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(close_doc,
"close($self, /)\n"
"--\n"
"\n"
"Close the socket; the next command opens a new one.");

static PyObject *
Connection_close(ConnectionObject *self, PyObject *Py_UNUSED(ignored))
{
    if (pyrc_conn_enter(self) < 0) {
        return NULL;
    }
    pyrc_conn_drop(self);
    self->busy = 0;
    Py_RETURN_NONE;
}

static PyObject *
Connection_get_connected(ConnectionObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->ctx != NULL &&
                           self->generation == pyrc_fork_generation);
}

static PyObject *
Connection_get_port(ConnectionObject *self, void *Py_UNUSED(closure))
{
    if (conn_check_initialised(self) < 0) {
        return NULL;
    }
    return PyLong_FromLong(self->port);
}

static PyObject *
Connection_get_db(ConnectionObject *self, void *Py_UNUSED(closure))
{
    if (conn_check_initialised(self) < 0) {
        return NULL;
    }
    return PyLong_FromLong(self->db);
}

static PyObject *
Connection_repr(ConnectionObject *self)
{
    if (self->host == NULL) {
        return PyUnicode_FromString("<pyredcache._core.Connection not initialised>");
    }
    PyObject *where = pyrc_conn_describe(self);
    if (where == NULL) {
        return NULL;
    }
    PyObject *r = PyUnicode_FromFormat("<pyredcache._core.Connection %U db=%d>",
                                       where, self->db);
    Py_DECREF(where);
    return r;
}

/* ------------------------------------------------------------------ */
/* construction and GC                                                  */

/* busy_poll: None for the default, or an int of microseconds in
 * 0..PYRC_BUSY_POLL_MAX_US. */
static int
busy_poll_from_object(PyObject *obj, long *out)
{
    if (obj == Py_None) {
        cpu_set_t cpus;
        int ncpu = sched_getaffinity(0, sizeof(cpus), &cpus) == 0 ? CPU_COUNT(&cpus) : 2;
        *out = ncpu > 1 ? PYRC_BUSY_POLL_DEFAULT_US : 0;
        return 0;
    }
    if (PyBool_Check(obj) || !PyLong_Check(obj)) {
        PyErr_Format(PyExc_TypeError,
                     "busy_poll must be an int of microseconds or None, not %.100s",
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    long us = PyLong_AsLong(obj);
    if (us == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        us = -1;
    }
    if (us < 0 || us > PYRC_BUSY_POLL_MAX_US) {
        PyErr_Format(PyExc_ValueError,
                     "busy_poll must be 0..%d microseconds, got %R",
                     PYRC_BUSY_POLL_MAX_US, obj);
        return -1;
    }
    *out = us;
    return 0;
}

static int
Connection_init(ConnectionObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {
        "host", "port", "unix_socket_path", "db", "username", "password",
        "socket_timeout", "socket_connect_timeout", "busy_poll", NULL,
    };
    PyObject *host = NULL, *port = NULL, *unix_path = Py_None, *db = NULL;
    PyObject *username = Py_None, *password = Py_None;
    PyObject *timeout = NULL, *connect_timeout = NULL; /* NULL: the default */
    PyObject *busy_poll = Py_None;
    /* The new configuration, moved into self only once all of it is valid:
     * a failed __init__ changes nothing. */
    PyObject *host_obj = NULL, *timeout_obj = NULL, *connect_timeout_obj = NULL;
    struct timeval timeout_tv, connect_tv;
    long port_v = 6379, db_v = 0, busy_poll_us = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OO$OOOOOOO:Connection", kwlist,
                                     &host, &port, &unix_path, &db, &username,
                                     &password, &timeout, &connect_timeout,
                                     &busy_poll)) {
        return -1;
    }
    if (self->ctx != NULL || self->host != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Connection is already initialised");
        goto error;
    }
    if (pyrc_register_atfork() < 0) {
        goto error;
    }
    if (host == NULL) {
        host_obj = PyUnicode_FromString("localhost");
        if (host_obj == NULL) {
            goto error;
        }
    }
    else if (!PyUnicode_Check(host)) {
        PyErr_Format(PyExc_TypeError, "host must be str, not %.100s",
                     Py_TYPE(host)->tp_name);
        goto error;
    }
    else {
        host_obj = Py_NewRef(host);
    }

    if (port != NULL) {
        if (PyBool_Check(port) || !PyLong_Check(port)) {
            PyErr_Format(PyExc_TypeError, "port must be int, not %.100s",
                         Py_TYPE(port)->tp_name);
            goto error;
        }
        port_v = PyLong_AsLong(port);
        if (port_v == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            port_v = -1;
        }
        if (port_v < 1 || port_v > 65535) {
            PyErr_Format(PyExc_ValueError,
                         "port must be an int in 1..65535, got %R", port);
            goto error;
        }
    }

    if (unix_path != Py_None && !PyUnicode_Check(unix_path)) {
        PyErr_Format(PyExc_TypeError, "unix_socket_path must be str or None, not %.100s",
                     Py_TYPE(unix_path)->tp_name);
        goto error;
    }

    if (db != NULL) {
        if (PyBool_Check(db) || !PyLong_Check(db)) {
            PyErr_Format(PyExc_TypeError, "db must be int, not %.100s",
                         Py_TYPE(db)->tp_name);
            goto error;
        }
        db_v = PyLong_AsLong(db);
        if (db_v == -1 && PyErr_Occurred()) {
            PyErr_Clear();
        }
        if (db_v < 0 || db_v > INT_MAX) {
            PyErr_Format(PyExc_ValueError, "db must be a non-negative int, got %R", db);
            goto error;
        }
    }

    if (username != Py_None && !PyUnicode_Check(username)) {
        PyErr_SetString(PyExc_TypeError, "username must be str or None");
        goto error;
    }
    if (password != Py_None && !PyUnicode_Check(password)) {
        PyErr_SetString(PyExc_TypeError, "password must be str or None");
        goto error;
    }
    if (username != Py_None && password == Py_None) {
        PyErr_SetString(PyExc_ValueError, "username needs a password");
        goto error;
    }

    if (timeout_from_object(timeout, "socket_timeout", &timeout_tv,
                            &timeout_obj) < 0) {
        goto error;
    }
    if (timeout_from_object(connect_timeout, "socket_connect_timeout",
                            &connect_tv, &connect_timeout_obj) < 0) {
        goto error;
    }
    if (busy_poll_from_object(busy_poll, &busy_poll_us) < 0) {
        goto error;
    }

    /* Everything is valid: set the configuration at once, host last (see
     * conn_check_initialised).  The fields are NULL here unless tp_clear
     * ran half-way; what they held is released once self is consistent. */
    PyObject *old[5] = {self->unix_socket_path, self->username, self->password,
                        self->socket_timeout, self->socket_connect_timeout};
    self->port = (int)port_v;
    self->db = (int)db_v;
    self->timeout_tv = timeout_tv;
    self->connect_tv = connect_tv;
    self->has_connect_timeout = connect_timeout != Py_None;
    self->busy_poll_us = busy_poll_us;
    self->unix_socket_path = Py_NewRef(unix_path);
    self->username = Py_NewRef(username);
    self->password = Py_NewRef(password);
    self->socket_timeout = timeout_obj;
    self->socket_connect_timeout = connect_timeout_obj;
    self->host = host_obj;
    for (size_t i = 0; i < sizeof(old) / sizeof(old[0]); i++) {
        Py_XDECREF(old[i]);
    }
    return 0;

error:
    Py_XDECREF(host_obj);
    Py_XDECREF(timeout_obj);
    Py_XDECREF(connect_timeout_obj);
    return -1;
}

static PyObject *
Connection_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    (void)args;
    (void)kwds;
    ConnectionObject *self = (ConnectionObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->st = pyrc_state_from_type(type);
    self->rctx.st = self->st;
    self->rctx.exc = NULL;
    return (PyObject *)self;
}

static int
Connection_traverse(ConnectionObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->host);
    Py_VISIT(self->unix_socket_path);
    Py_VISIT(self->username);
    Py_VISIT(self->password);
    Py_VISIT(self->socket_timeout);
    Py_VISIT(self->socket_connect_timeout);
    Py_VISIT(self->rctx.exc);
    return 0;
}

static int
Connection_clear(ConnectionObject *self)
{
    /* The reader may hold Python objects (a half-read reply); free it
     * before the rest.  host goes first: from then on the connection
     * counts as uninitialised (conn_check_initialised), whatever a
     * finalizer run by the DECREFs below tries. */
    pyrc_conn_drop(self);
    Py_CLEAR(self->host);
    Py_CLEAR(self->unix_socket_path);
    Py_CLEAR(self->username);
    Py_CLEAR(self->password);
    Py_CLEAR(self->socket_timeout);
    Py_CLEAR(self->socket_connect_timeout);
    Py_CLEAR(self->rctx.exc);
    return 0;
}

static void
Connection_dealloc(ConnectionObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    (void)Connection_clear(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyMethodDef Connection_methods[] = {
    {"execute_command", (PyCFunction)(void (*)(void))Connection_execute_command,
     METH_FASTCALL, execute_command_doc},
    {"pipeline", (PyCFunction)Connection_pipeline, METH_O, pipeline_doc},
    {"connect", (PyCFunction)Connection_connect, METH_NOARGS, connect_doc},
    {"close", (PyCFunction)Connection_close, METH_NOARGS, close_doc},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Connection_members[] = {
    {"host", T_OBJECT_EX, offsetof(ConnectionObject, host), READONLY,
     "Server host name or address (str)."},
    {"unix_socket_path", T_OBJECT_EX, offsetof(ConnectionObject, unix_socket_path),
     READONLY, "Path of the server's unix socket (str), or None for TCP."},
    {"username", T_OBJECT_EX, offsetof(ConnectionObject, username), READONLY,
     "ACL user name for AUTH (str or None)."},
    {"socket_timeout", T_OBJECT_EX, offsetof(ConnectionObject, socket_timeout),
     READONLY, "Seconds to wait for a reply (float; default 1.0), or None for ever."},
    {"socket_connect_timeout", T_OBJECT_EX,
     offsetof(ConnectionObject, socket_connect_timeout), READONLY,
     "Seconds to wait for the connection (float; default 1.0), or None for the\n"
     "OS's limit."},
    {"busy_poll", T_LONG, offsetof(ConnectionObject, busy_poll_us), READONLY,
     "Microseconds a wait for a reply spins before it sleeps (int); 0: never."},
    {"busy_poll_hits", T_ULONGLONG, offsetof(ConnectionObject, spin_hits_total),
     READONLY, "Waits whose reply came while spinning (int)."},
    {"busy_poll_misses", T_ULONGLONG, offsetof(ConnectionObject, spin_misses_total),
     READONLY, "Waits that spun for the whole budget, then slept (int)."},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef Connection_getset[] = {
    {"port", (getter)Connection_get_port, NULL, "Server TCP port (int).", NULL},
    {"db", (getter)Connection_get_db, NULL,
     "Database number selected on connect (int).", NULL},
    {"connected", (getter)Connection_get_connected, NULL,
     "True while a socket opened by this process is open.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(Connection_doc,
"Connection(host='localhost', port=6379, *, unix_socket_path=None, db=0, "
"username=None, password=None, socket_timeout=1.0, "
"socket_connect_timeout=1.0, busy_poll=None)\n"
"--\n"
"\n"
"One connection to one Redis server, over hiredis.\n"
"\n"
"busy_poll: microseconds (int, 0..1000000) that a wait for a reply spins\n"
"on the socket before it sleeps; None: 50 when this process may run on two\n"
"CPUs or more, else 0 (never spin).  Four spins in a row that end empty\n"
"make the next 64 waits sleep at once.\n"
"\n"
"socket_timeout bounds each wait for a reply, socket_connect_timeout the\n"
"connect (TCP or unix socket): seconds (float > 0), 1.0 each by default;\n"
"past it TimeoutError or ConnectionError is raised.  None waits for ever\n"
"(not recommended: a server that accepts and never answers, or is stopped,\n"
"hangs the call).  The socket is\n"
"opened on first use (AUTH and SELECT are sent then) and opened again when\n"
"the server dropped it (restart, CLIENT KILL, idle timeout).  The GIL is\n"
"released while waiting on the socket.  A connection serves one thread at\n"
"a time: a second thread using it concurrently gets RuntimeError.  In a\n"
"forked child the parent's socket is never used.");

static PyType_Slot Connection_slots[] = {
    {Py_tp_doc, (void *)Connection_doc},
    {Py_tp_new, Connection_new},
    {Py_tp_init, Connection_init},
    {Py_tp_dealloc, Connection_dealloc},
    {Py_tp_traverse, Connection_traverse},
    {Py_tp_clear, Connection_clear},
    {Py_tp_repr, Connection_repr},
    {Py_tp_methods, Connection_methods},
    {Py_tp_members, Connection_members},
    {Py_tp_getset, Connection_getset},
    {0, NULL},
};

static PyType_Spec Connection_spec = {
    .name = "pyredcache._core.Connection",
    .basicsize = sizeof(ConnectionObject),
    /* not a base type: PyType_GetModuleState needs the exact type */
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = Connection_slots,
};

int
pyrc_connection_exec(PyObject *module, pyrc_state *st)
{
    st->ConnectionType = (PyTypeObject *)PyType_FromModuleAndSpec(
        module, &Connection_spec, NULL);
    if (st->ConnectionType == NULL) {
        return -1;
    }
    if (PyModule_AddType(module, st->ConnectionType) < 0) {
        return -1;
    }
    if (PyModule_AddIntConstant(module, "PROTO_MAX_BULK_LEN",
                                (long)PYRC_PROTO_MAX_BULK_LEN) < 0) {
        return -1;
    }
    return 0;
}

int
pyrc_connection_traverse(pyrc_state *st, visitproc visit, void *arg)
{
    Py_VISIT(st->ConnectionType);
    return 0;
}

void
pyrc_connection_clear(pyrc_state *st)
{
    Py_CLEAR(st->ConnectionType);
}
