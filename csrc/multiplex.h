/* The fan-out engine of multiplex.c, for callers in C.
 *
 * multi_pipeline() (Python) and redlock_round() (redlock.c) both run a
 * list of jobs, one per connection, all in flight at once.  The caller
 * prepares the jobs: for each, the connection and its commands already
 * formatted as RESP (pyrc_multiplex_format); the engine does the rest
 * (marks the connections busy, connects, sends, polls, parses) and hands
 * back one result per job.
 *
 * Ownership.  A job borrows its connection and its RESP buffer: the
 * caller keeps both alive until pyrc_multiplex_run() returns, and frees
 * the buffers afterwards (several jobs may share one buffer).  The
 * engine's fields start zeroed (PyMem_Calloc) and hold nothing once the
 * run has returned, whether it succeeded or not.
 */
#ifndef PYRC_MULTIPLEX_H
#define PYRC_MULTIPLEX_H

#include <time.h>

#include "connection.h"

typedef struct {
    /* set by the caller */
    ConnectionObject *conn; /* borrowed */
    const char *out;        /* the job's commands as RESP (borrowed) */
    size_t outlen;
    Py_ssize_t ncmds;       /* how many replies to read */

    /* the engine's own */
    size_t sent;
    Py_ssize_t nread;       /* replies taken so far */
    PyObject *replies;      /* list of ncmds slots while running */
    PyObject *result;       /* replies list or exception instance when done */
    int state;
    int entered;            /* we set conn->busy */
    /* what happened while the GIL was released, handled after */
    int io_error;           /* errno of a failed send/recv, or 0 */
    int eof;                /* the server closed the socket */
    int feed_failed;        /* redisReaderFeed failed (out of memory) */
    int fed;                /* bytes were fed since the last parse */
} pyrc_mpx_job;

/* Format `commands` (an iterable of commands, each a sequence of
 * arguments, as Connection.pipeline() takes) as RESP into a new PyMem
 * buffer *out of *outlen bytes; *ncmds is the number of commands.  0, or
 * -1 with TypeError/ValueError/MemoryError set and nothing allocated. */
int pyrc_multiplex_format(PyObject *commands, char **out, size_t *outlen,
                          Py_ssize_t *ncmds);

/* A timeout in seconds (float or int > 0, or None for ever) as poll()
 * milliseconds (-1 for None).  0, or -1 with TypeError/ValueError set. */
int pyrc_multiplex_timeout_ms(PyObject *obj, int *ms);

/* Run the jobs, at most max_concurrency (>= 1) in flight at once.
 * wait_ms: how long any one poll() may wait for progress (-1: for ever);
 * `timeout` (borrowed, may be NULL) is only quoted in TimeoutError
 * messages.  If first_send is not NULL, it receives the CLOCK_MONOTONIC
 * time just before the first byte is sent (or, if nothing is ever sent,
 * the time the run started).
 *
 * Returns a new list with one item per job, in order: the list of its
 * replies, or the exception instance of a job whose server failed (its
 * connection is closed).  NULL with an exception set when the whole run
 * is aborted: a connection already busy (RuntimeError, before anything
 * is sent), out of memory, or a signal handler's exception; then every
 * connection still in flight is closed. */
PyObject *pyrc_multiplex_run(pyrc_mpx_job *jobs, Py_ssize_t njobs, int wait_ms,
                             PyObject *timeout, Py_ssize_t max_concurrency,
                             struct timespec *first_send);

#endif /* PYRC_MULTIPLEX_H */
