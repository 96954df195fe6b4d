/* multi_pipeline: one pipeline on each of many connections, all in flight
 * at once.
 *
 * This is the fan-out under client-side sharding: a get_many over four
 * servers sends one MGET to each and waits for the four replies together,
 * so it costs about one round trip, not four.  Each job is (connection,
 * commands); its commands are formatted as RESP into a buffer of the job's
 * own, then one poll() loop writes every buffer and reads every reply
 * stream until each job has all its replies or has failed.
 *
 * I/O.  The sockets stay blocking (a Connection used alone relies on
 * that): every send() and recv() here passes MSG_DONTWAIT, so no call
 * blocks and nothing has to be switched back afterwards.  Bytes read go
 * into the connection's own hiredis reader with redisReaderFeed(), which
 * only copies memory; replies are taken out with redisReaderGetReply(),
 * whose callbacks (reply.c) build Python objects.
 *
 * GIL.  Released once per loop turn, around poll() and the send()/recv()/
 * redisReaderFeed() calls of every ready socket; held while replies are
 * parsed.  While it is released only C memory owned by the jobs is
 * touched: the output buffers, the descriptors, the readers' buffers.
 * The connections are marked busy for the whole call, so no other thread
 * uses them meanwhile.
 *
 * Failures belong to one job.  A server that refuses the connection,
 * drops it, sends bad RESP or stays silent for `timeout` seconds fails its
 * job: that connection is closed (its stream is out of step) and the
 * job's slot in the result holds the exception; the other jobs go on to
 * the end, so their connections stay in step and usable.  Only a signal
 * handler's exception (KeyboardInterrupt) or a bad argument aborts the
 * whole call: then every connection still in flight is closed.
 *
 * Concurrency.  At most `max_concurrency` jobs are in flight; when one
 * ends the next waiting one starts.  Starting a job connects it if needed
 * (a blocking connect, the GIL released, bounded by the connection's
 * socket_connect_timeout): connections are pooled, so that is rare.
 *
 * Callers in C.  The engine is pyrc_multiplex_run() (multiplex.h): it
 * runs jobs whose commands the caller has already formatted as RESP.
 * multi_pipeline() below parses its arguments into such jobs; redlock.c
 * sends one command to every master the same way.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "multiplex.h"
#include "fault.h"

#define JOB_WAITING 0
#define JOB_RUNNING 1
#define JOB_DONE 2

#define READ_CHUNK (16 * 1024)
/* Reads per socket per loop turn at most (1 MiB): a server that streams
 * faster than we read must not keep one turn going for ever, with the
 * replies unparsed and signals unchecked. */
#define READS_PER_TURN 64

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* no such flag: SIGPIPE is ignored by Python anyway */
#endif

typedef pyrc_mpx_job job_t;

/* The exception being raised, normalized, as a new reference. */
static PyObject *
take_exception(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (value != NULL && tb != NULL) {
        PyException_SetTraceback(value, tb);
    }
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
#endif
}

/* Digits of v in decimal, written backwards from end; returns the start. */
static char *
format_size(char *end, size_t v)
{
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return end;
}

/* Format the encoded commands as RESP arrays of bulk strings into one
 * buffer: "*<argc>\r\n" then "$<len>\r\n<bytes>\r\n" per argument. */
static int
format_resp(encoded_t *e, char **out, size_t *outlen)
{
    char digits[24];
    char *const dend = digits + sizeof(digits);
    size_t total = 0;
    Py_ssize_t k = 0;
    for (Py_ssize_t i = 0; i < e->ncmds; i++) {
        total += 3 + (size_t)(dend - format_size(dend, (size_t)e->argc[i]));
        for (int j = 0; j < e->argc[i]; j++, k++) {
            size_t len = e->argvlen[k];
            if (len > ((size_t)PY_SSIZE_T_MAX - total) / 2) {
                PyErr_SetString(PyExc_OverflowError, "pipeline too large");
                return -1;
            }
            total += 5 + (size_t)(dend - format_size(dend, len)) + len;
        }
    }
    char *buf = PyMem_Malloc(total ? total : 1);
    if (buf == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    char *p = buf;
    k = 0;
    for (Py_ssize_t i = 0; i < e->ncmds; i++) {
        char *d = format_size(dend, (size_t)e->argc[i]);
        *p++ = '*';
        memcpy(p, d, (size_t)(dend - d));
        p += dend - d;
        *p++ = '\r';
        *p++ = '\n';
        for (int j = 0; j < e->argc[i]; j++, k++) {
            size_t len = e->argvlen[k];
            d = format_size(dend, len);
            *p++ = '$';
            memcpy(p, d, (size_t)(dend - d));
            p += dend - d;
            *p++ = '\r';
            *p++ = '\n';
            if (len) {
                memcpy(p, e->argv[k], len);
            }
            p += len;
            *p++ = '\r';
            *p++ = '\n';
        }
    }
    *out = buf;
    *outlen = (size_t)(p - buf);
    return 0;
}

int
pyrc_multiplex_format(PyObject *commands, char **out, size_t *outlen,
                      Py_ssize_t *ncmds)
{
    encoded_t e;
    /* cmds owns the arguments until format_resp has copied their bytes. */
    PyObject *cmds = pyrc_command_sequences(commands);
    if (cmds == NULL) {
        return -1;
    }
    if (pyrc_encode_commands(&e, cmds) < 0) {
        Py_DECREF(cmds);
        return -1;
    }
    int rc = format_resp(&e, out, outlen);
    *ncmds = e.ncmds;
    pyrc_encoded_free(&e);
    Py_DECREF(cmds);
    return rc;
}

/* End a job with `result` (a new reference: replies or an exception). */
static void
finish(job_t *job, PyObject *result, Py_ssize_t *running)
{
    if (job->state == JOB_RUNNING) {
        (*running)--;
    }
    job->state = JOB_DONE;
    Py_CLEAR(job->replies);
    job->result = result;
}

/* End a job with the exception being raised; its stream is out of step,
 * so the connection is closed. */
static void
fail(job_t *job, Py_ssize_t *running)
{
    PyObject *exc = take_exception();
    pyrc_conn_drop(job->conn);
    finish(job, exc, running);
}

/* Raise `exc_type` with "<prefix> <host:port>: <detail>" and fail the job. */
static void
fail_with(job_t *job, PyObject *exc_type, const char *prefix,
          const char *detail, Py_ssize_t *running)
{
    PyObject *where = pyrc_conn_describe(job->conn);
    if (where != NULL) {
        PyErr_Format(exc_type, "%s %U: %s", prefix, where, detail);
        Py_DECREF(where);
    }
    fail(job, running);
}

/* Start a waiting job: connect if needed.  Never raises: a failure ends
 * the job with the exception. */
static void
start(job_t *job, Py_ssize_t *running)
{
    if (pyrc_conn_ensure_connected(job->conn) < 0) {
        finish(job, take_exception(), running);
        return;
    }
    job->state = JOB_RUNNING;
    (*running)++;
}

/* Take every whole reply the reader holds.  Ends the job when all came. */
static void
parse_replies(job_t *job, Py_ssize_t *running)
{
    redisReader *reader = job->conn->ctx->reader;
    while (job->nread < job->ncmds) {
        void *reply = NULL;
        if (redisReaderGetReply(reader, &reply) != REDIS_OK) {
            pyrc_state *st = job->conn->st;
            char detail[160];
            snprintf(detail, sizeof(detail), "%s", reader->errstr);
            fail_with(job, st->ProtocolError, "Protocol error from", detail,
                      running);
            return;
        }
        if (reply == NULL) {
            return;
        }
        PyList_SET_ITEM(job->replies, job->nread, (PyObject *)reply);
        job->nread++;
    }
    /* All replies are in, so the stream is in step even if a callback
     * failed building an object (out of memory): that fails this job
     * only, and the connection is kept. */
    if (pyrc_reply_take_error(&job->conn->rctx) < 0) {
        finish(job, take_exception(), running);
        return;
    }
    PyObject *replies = job->replies;
    job->replies = NULL;
    finish(job, replies, running);
}

/* Send what the kernel takes, without blocking.  Runs with the GIL
 * released: touches only the job's C memory. */
static void
do_send(job_t *job)
{
    int fd = job->conn->ctx->fd;
    while (job->sent < job->outlen) {
        ssize_t n = send(fd, job->out + job->sent, job->outlen - job->sent,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
        if (PYRC_FAULT(mpx_send)) { n = -1; errno = EPIPE; }
        if (n > 0) {
            job->sent += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            job->io_error = errno;
        }
        return;
    }
}

/* Read what has arrived into the connection's reader, without blocking.
 * Runs with the GIL released: redisReaderFeed() only copies bytes into
 * the reader's buffer; replies are parsed later, with the GIL. */
static void
do_recv(job_t *job)
{
    int fd = job->conn->ctx->fd;
    char buf[READ_CHUNK];
    for (int reads = 0; reads < READS_PER_TURN; reads++) {
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0) {
            (void)PYRC_FAULT_READER(mpx_feed, job->conn->ctx->reader);
            if (redisReaderFeed(job->conn->ctx->reader, buf, (size_t)n) != REDIS_OK) {
                job->feed_failed = 1;
                return;
            }
            job->fed = 1;
            if ((size_t)n < sizeof(buf)) {
                return; /* drained for now */
            }
            continue;
        }
        if (n == 0) {
            job->eof = 1;
            return;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            job->io_error = errno;
        }
        return;
    }
    /* more may be waiting: poll() reports it readable again at once */
}

/* Handle what do_send()/do_recv() saw for a running job (GIL held). */
static void
after_io(job_t *job, Py_ssize_t *running)
{
    pyrc_state *st = job->conn->st;
    if (job->fed) {
        job->fed = 0;
        parse_replies(job, running);
        if (job->state == JOB_DONE) {
            return;
        }
    }
    if (job->feed_failed) {
        PyErr_NoMemory();
        fail(job, running);
    }
    else if (job->io_error) {
        fail_with(job, st->ConnectionError, "Error while talking to",
                  strerror(job->io_error), running);
    }
    else if (job->eof) {
        fail_with(job, st->ConnectionError, "Server closed the connection:",
                  "end of stream", running);
    }
}

/* Busy-poll over all the sockets: poll() without waiting, for at most
 * budget_us microseconds (see spin_read in connection.c for why).  Called
 * without the GIL.  Returns what the last poll() returned: > 0 when a
 * socket is ready, 0 when the budget ran out, -1 on error (errno set). */
static int
spin_poll(struct pollfd *fds, nfds_t nfds, long budget_us)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const long long budget_ns = (long long)budget_us * 1000;
    for (;;) {
        int ready = poll(fds, nfds, 0);
        if (ready != 0) {
            return ready;
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((long long)(t.tv_sec - t0.tv_sec) * 1000000000LL
                + (t.tv_nsec - t0.tv_nsec) >= budget_ns) {
            return 0;
        }
    }
}

int
pyrc_multiplex_timeout_ms(PyObject *obj, int *ms)
{
    if (obj == Py_None) {
        *ms = -1;
        return 0;
    }
    if (PyBool_Check(obj) || !(PyFloat_Check(obj) || PyLong_Check(obj))) {
        PyErr_Format(PyExc_TypeError,
                     "timeout must be a number of seconds or None, not %.100s",
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    double secs = PyFloat_AsDouble(obj);
    if (secs == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    if (!(secs > 0.0) || !isfinite(secs) || secs > (double)INT_MAX / 1000.0) {
        PyErr_Format(PyExc_ValueError, "timeout must be > 0 seconds, got %R", obj);
        return -1;
    }
    *ms = (int)ceil(secs * 1000.0);
    return 0;
}

/* The engine: see multiplex.h. */
PyObject *
pyrc_multiplex_run(job_t *jobs, Py_ssize_t njobs, int wait_ms,
                   PyObject *timeout, Py_ssize_t max_concurrency,
                   struct timespec *first_send)
{
    PyObject *results = NULL;
    struct pollfd *fds = NULL;
    Py_ssize_t *fd_job = NULL;
    Py_ssize_t i, running = 0, next = 0;
    int sent_any = 0;

    if (first_send != NULL) {
        clock_gettime(CLOCK_MONOTONIC, first_send);
    }
    results = PyList_New(njobs);
    if (results == NULL || njobs == 0) {
        return results;
    }
    fds = PyMem_Calloc((size_t)njobs, sizeof(struct pollfd));
    fd_job = PyMem_Calloc((size_t)njobs, sizeof(Py_ssize_t));
    if (fds == NULL || fd_job == NULL) {
        PyErr_NoMemory();
        goto error;
    }
    for (i = 0; i < njobs; i++) {
        jobs[i].replies = PyList_New(jobs[i].ncmds);
        if (jobs[i].replies == NULL) {
            goto error;
        }
    }
    for (i = 0; i < njobs; i++) {
        if (pyrc_conn_enter(jobs[i].conn) < 0) {
            goto error;
        }
        jobs[i].entered = 1;
    }

    /* Jobs with no commands are done at once and touch no socket. */
    for (i = 0; i < njobs; i++) {
        if (jobs[i].ncmds == 0) {
            PyObject *empty = jobs[i].replies;
            jobs[i].replies = NULL;
            finish(&jobs[i], empty, &running);
        }
    }

    for (;;) {
        while (running < max_concurrency && next < njobs) {
            if (jobs[next].state == JOB_WAITING) {
                start(&jobs[next], &running);
            }
            next++;
        }
        if (running == 0) {
            break;
        }
        nfds_t nfds = 0;
        long budget = 0;    /* the largest spin budget of the running jobs */
        for (i = 0; i < njobs; i++) {
            if (jobs[i].state == JOB_RUNNING) {
                fds[nfds].fd = jobs[i].conn->ctx->fd;
                fd_job[nfds] = i;
                nfds++;
                long b = pyrc_conn_spin_budget(jobs[i].conn);
                if (b > budget) {
                    budget = b;
                }
            }
        }
        int ready, saved_errno, spin_hit = 0;
        nfds_t polled = 0;
        Py_BEGIN_ALLOW_THREADS
        /* A job's first send goes out before any poll(): its socket is
         * almost always writable, and this saves a poll() round. */
        for (nfds_t f = 0; f < nfds; f++) {
            job_t *job = &jobs[fd_job[f]];
            if (job->sent == 0) {
                if (!sent_any && first_send != NULL) {
                    clock_gettime(CLOCK_MONOTONIC, first_send);
                }
                sent_any = 1;
                do_send(job);
            }
            fds[f].events = POLLIN;
            if (job->sent < job->outlen) {
                fds[f].events |= POLLOUT;
            }
            fds[f].revents = 0;
            if (job->io_error) {
                fds[f].fd = -1;     /* failed already: poll() skips it */
            }
            else {
                polled++;
            }
        }
        ready = 0;
        if (polled && budget > 0) {
            ready = spin_poll(fds, nfds, budget);
            spin_hit = ready > 0;
        }
        if (polled && ready == 0) {
            ready = poll(fds, nfds, wait_ms);
        }
        if (PYRC_FAULT(mpx_poll)) { ready = -1; errno = ENOMEM; }
        saved_errno = errno;
        for (nfds_t f = 0; ready > 0 && f < nfds; f++) {
            job_t *job = &jobs[fd_job[f]];
            short revents = fds[f].revents;
            if (job->sent < job->outlen && (revents & (POLLOUT | POLLERR | POLLHUP))) {
                do_send(job);
            }
            if (!job->io_error && (revents & (POLLIN | POLLERR | POLLHUP))) {
                do_recv(job);
            }
        }
        Py_END_ALLOW_THREADS
        if (ready < 0) {
            if (saved_errno == EINTR) {
                if (PyErr_CheckSignals() < 0) {
                    goto error;
                }
                continue;
            }
            errno = saved_errno;
            PyErr_SetFromErrno(PyExc_OSError);
            goto error;
        }
        /* A signal that came while the GIL was released but outside a
         * blocking poll() (during a send, a recv, a spin) interrupted
         * nothing: check every turn, or sockets kept ready by a streaming
         * server would hold KeyboardInterrupt off until the end. */
        if (PyErr_CheckSignals() < 0) {
            goto error;
        }
        if (budget > 0) {
            /* a spin that ended empty is a miss for every connection it
             * waited on; one that saw sockets ready, a hit for those */
            for (nfds_t f = 0; f < nfds; f++) {
                if (fds[f].fd >= 0 && (!spin_hit || fds[f].revents != 0)) {
                    pyrc_conn_spin_account(jobs[fd_job[f]].conn, spin_hit);
                }
            }
        }
        for (nfds_t f = 0; f < nfds; f++) {
            job_t *job = &jobs[fd_job[f]];
            if (job->fed || job->io_error || job->eof || job->feed_failed) {
                after_io(job, &running);
            }
        }
        if (ready == 0 && polled > 0) {
            /* nothing moved for `timeout` seconds: every job still in
             * flight has timed out */
            for (nfds_t f = 0; f < nfds; f++) {
                job_t *job = &jobs[fd_job[f]];
                if (job->state != JOB_RUNNING) {
                    continue;
                }
                PyObject *where = pyrc_conn_describe(job->conn);
                if (where != NULL) {
                    if (timeout != NULL) {
                        PyErr_Format(job->conn->st->TimeoutError,
                                     "Timeout reading from %U after %R seconds",
                                     where, timeout);
                    }
                    else {
                        PyErr_Format(job->conn->st->TimeoutError,
                                     "Timeout reading from %U after %d ms",
                                     where, wait_ms);
                    }
                    Py_DECREF(where);
                }
                fail(job, &running);
            }
        }
    }

    for (i = 0; i < njobs; i++) {
        PyList_SET_ITEM(results, i, jobs[i].result);
        jobs[i].result = NULL;
        jobs[i].conn->busy = 0;
        jobs[i].entered = 0;
    }
    PyMem_Free(fds);
    PyMem_Free(fd_job);
    return results;

error:
    for (i = 0; i < njobs; i++) {
        job_t *job = &jobs[i];
        if (job->state == JOB_RUNNING) {
            /* abandoned half-way: the stream is out of step */
            pyrc_conn_drop(job->conn);
        }
        if (job->entered) {
            job->conn->busy = 0;
            job->entered = 0;
        }
        Py_CLEAR(job->replies);
        Py_CLEAR(job->result);
    }
    PyMem_Free(fds);
    PyMem_Free(fd_job);
    Py_XDECREF(results);
    return NULL;
}

PyDoc_STRVAR(multi_pipeline_doc,
"multi_pipeline(jobs, /, timeout=None, max_concurrency=64)\n"
"--\n"
"\n"
"Run one pipeline on each of many connections, all in flight at once.\n"
"\n"
"jobs: a sequence of (connection, commands) pairs, each connection a\n"
"distinct Connection and commands a sequence of commands as for\n"
"Connection.pipeline().  timeout: seconds any one wait for progress may\n"
"last (float, or None for ever); a job whose server is silent that long\n"
"fails with TimeoutError.  max_concurrency: how many jobs are in flight\n"
"at most (int >= 1).\n"
"\n"
"Returns a list with one item per job, in order: the list of its replies\n"
"(error replies as ResponseError instances in their slots), or, for a job\n"
"whose server could not be reached, dropped the connection, sent bad RESP\n"
"or timed out, the ConnectionError / TimeoutError / ProtocolError\n"
"instance, its connection closed.  The other jobs are not affected.\n"
"Raises TypeError or ValueError for malformed arguments and RuntimeError\n"
"for a connection in use elsewhere (or given twice), before anything is\n"
"sent.");

/* Free the RESP buffers multi_pipeline formatted (NULL where none yet). */
static void
free_buffers(job_t *jobs, Py_ssize_t njobs)
{
    for (Py_ssize_t i = 0; i < njobs; i++) {
        PyMem_Free((void *)jobs[i].out);
        jobs[i].out = NULL;
    }
}

static PyObject *
multi_pipeline(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
               PyObject *kwnames)
{
    static const char *const names[3] = {"jobs", "timeout", "max_concurrency"};
    PyObject *argv[3] = {NULL, Py_None, NULL};
    pyrc_state *st = pyrc_get_state(module);
    PyObject *seq = NULL, *results = NULL;
    job_t *jobs = NULL;
    Py_ssize_t njobs = 0, i;
    long max_concurrency = 64;
    int wait_ms;

    if (pyrc_parse_args("multi_pipeline", args, nargs, kwnames, names, 3, 1, 1,
                        argv) < 0) {
        return NULL;
    }
    if (pyrc_multiplex_timeout_ms(argv[1], &wait_ms) < 0) {
        return NULL;
    }
    if (argv[2] != NULL) {
        if (PyBool_Check(argv[2]) || !PyLong_Check(argv[2])) {
            PyErr_SetString(PyExc_TypeError, "max_concurrency must be an int");
            return NULL;
        }
        max_concurrency = PyLong_AsLong(argv[2]);
        if (max_concurrency == -1 && PyErr_Occurred()) {
            return NULL;
        }
        if (max_concurrency < 1) {
            PyErr_Format(PyExc_ValueError, "max_concurrency must be >= 1, got %ld",
                         max_concurrency);
            return NULL;
        }
    }
    /* A tuple, not PySequence_Fast: a list could be emptied by code that
     * iterating a job's commands runs, leaving the jobs' borrowed
     * connections dangling. */
    seq = PySequence_Tuple(argv[0]);
    if (seq == NULL) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_SetString(PyExc_TypeError,
                            "jobs must be a sequence of (connection, commands) pairs");
        }
        return NULL;
    }
    njobs = PyTuple_GET_SIZE(seq);
    if (njobs == 0) {
        Py_DECREF(seq);
        return PyList_New(0);
    }
    jobs = PyMem_Calloc((size_t)njobs, sizeof(job_t));
    if (jobs == NULL) {
        PyErr_NoMemory();
        goto error;
    }

    /* Check and encode everything before anything is sent.  The jobs
     * borrow their connections from `seq`, which stays alive until the
     * run is over. */
    for (i = 0; i < njobs; i++) {
        PyObject *pair = PyTuple_GET_ITEM(seq, i);
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            PyErr_Format(PyExc_TypeError,
                         "jobs[%zd] must be a (connection, commands) tuple", i);
            goto error;
        }
        PyObject *conn = PyTuple_GET_ITEM(pair, 0);
        if (!Py_IS_TYPE(conn, st->ConnectionType)) {
            PyErr_Format(PyExc_TypeError,
                         "jobs[%zd][0] must be a pyredcache._core.Connection, "
                         "not %.100s", i, Py_TYPE(conn)->tp_name);
            goto error;
        }
        jobs[i].conn = (ConnectionObject *)conn;
        char *out = NULL;
        if (pyrc_multiplex_format(PyTuple_GET_ITEM(pair, 1), &out,
                                  &jobs[i].outlen, &jobs[i].ncmds) < 0) {
            goto error;
        }
        jobs[i].out = out;
    }
    results = pyrc_multiplex_run(jobs, njobs, wait_ms, argv[1],
                                 (Py_ssize_t)max_concurrency, NULL);
    free_buffers(jobs, njobs);
    PyMem_Free(jobs);
    Py_DECREF(seq);
    return results; /* NULL if the run was aborted */

error:
    if (jobs != NULL) {
        free_buffers(jobs, njobs);
    }
    PyMem_Free(jobs);
    Py_DECREF(seq);
    return NULL;
}

static PyMethodDef multiplex_methods[] = {
    {"multi_pipeline", (PyCFunction)(void (*)(void))multi_pipeline,
     METH_FASTCALL | METH_KEYWORDS, multi_pipeline_doc},
    {NULL, NULL, 0, NULL},
};

int
pyrc_multiplex_exec(PyObject *module, pyrc_state *st)
{
    (void)st;
    return PyModule_AddFunctions(module, multiplex_methods);
}
