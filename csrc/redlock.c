/* redlock_round: one quorum round of the Redlock algorithm.
 *
 * Redlock (the distributed-locks page of the Redis docs,
 * redis.io/docs/latest/develop/use/patterns/distributed-locks/) sends
 * the same command to N independent masters and counts how many agreed;
 * the lock is held when a majority did and time is left on its TTL once
 * the round is over.  This file does the round, all masters at once, on
 * the fan-out engine of multiplex.c (pyrc_multiplex_run), and measures
 * it; pyredcache/lock.py decides what the votes mean.
 *
 * Time.  clock_gettime(CLOCK_MONOTONIC) is read just before the first
 * byte is sent (by the engine) and after the last reply (or failure).  A
 * key the command set expires ttl_ms after it was set, no sooner than
 * ttl_ms after that first read; so, allowing for clock drift between the
 * machines (ttl_ms * 1% + 2 ms, the figure of the Redis page and of the
 * reference implementations), the lock is safe to use for
 *
 *     validity_ms = ttl_ms - elapsed_ms - (ttl_ms * 0.01 + 2)
 *
 * after the round ends.  It may be negative: the round took too long.
 */
#include <math.h>
#include <time.h>

#include "multiplex.h"

PyDoc_STRVAR(redlock_round_doc,
"redlock_round(connections, command, ttl_ms, timeout, /)\n"
"--\n"
"\n"
"One quorum round of Redlock: send one command to every connection at\n"
"once and count the masters that agreed.\n"
"\n"
"connections: a sequence of distinct Connection objects, one per master.\n"
"command: one command, a sequence of arguments (bytes, str, int, float),\n"
"typically EVALSHA of a lock script.  ttl_ms: the lock's time to live in\n"
"milliseconds (int or float >= 0).  timeout: seconds any one wait for a\n"
"master may last (float > 0, or None for ever); a master silent that long\n"
"fails with TimeoutError and does not vote.\n"
"\n"
"Returns (votes, validity_ms, replies).  votes: how many replies are\n"
"neither None nor an exception (an error reply is a ResponseError\n"
"instance).  validity_ms: ttl_ms - elapsed - drift, a float in\n"
"milliseconds that may be negative, where elapsed runs on CLOCK_MONOTONIC\n"
"from just before the first send to after the last reply and drift is\n"
"ttl_ms * 0.01 + 2.  replies: one item per connection, in order: its\n"
"reply, or the ConnectionError / TimeoutError / ProtocolError instance of\n"
"a master that failed (its connection is closed).\n"
"\n"
"Raises TypeError or ValueError for malformed arguments and RuntimeError\n"
"for a connection in use elsewhere (or given twice), before anything is\n"
"sent.  Algorithm: the distributed-locks page of the Redis docs.");

static double
ms_between(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) * 1e3
           + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

static PyObject *
redlock_round(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
              PyObject *kwnames)
{
    static const char *const names[4] = {"connections", "command", "ttl_ms",
                                         "timeout"};
    PyObject *argv[4] = {NULL, NULL, NULL, NULL};
    pyrc_state *st = pyrc_get_state(module);
    PyObject *conns = NULL, *wrapped = NULL, *results = NULL;
    PyObject *replies = NULL, *out = NULL;
    pyrc_mpx_job *jobs = NULL;
    char *resp = NULL;
    size_t resplen = 0;
    Py_ssize_t ncmds = 0, n, i, votes = 0;
    struct timespec started, ended;
    double ttl_ms;
    int wait_ms;

    if (pyrc_parse_args("redlock_round", args, nargs, kwnames, names, 4, 4, 4,
                        argv) < 0) {
        return NULL;
    }
    if (PyBool_Check(argv[2]) || !(PyLong_Check(argv[2]) || PyFloat_Check(argv[2]))) {
        PyErr_Format(PyExc_TypeError,
                     "ttl_ms must be a number of milliseconds, not %.100s",
                     Py_TYPE(argv[2])->tp_name);
        return NULL;
    }
    ttl_ms = PyFloat_AsDouble(argv[2]);
    if (ttl_ms == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    if (!(ttl_ms >= 0.0) || !isfinite(ttl_ms)) {
        PyErr_Format(PyExc_ValueError, "ttl_ms must be >= 0 milliseconds, got %R",
                     argv[2]);
        return NULL;
    }
    if (pyrc_multiplex_timeout_ms(argv[3], &wait_ms) < 0) {
        return NULL;
    }
    /* A tuple: the jobs borrow the connections, so the sequence must not
     * change under them (see multi_pipeline). */
    conns = PySequence_Tuple(argv[0]);
    if (conns == NULL) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_SetString(PyExc_TypeError,
                            "connections must be a sequence of Connection objects");
        }
        return NULL;
    }
    n = PyTuple_GET_SIZE(conns);
    for (i = 0; i < n; i++) {
        PyObject *conn = PyTuple_GET_ITEM(conns, i);
        if (!Py_IS_TYPE(conn, st->ConnectionType)) {
            PyErr_Format(PyExc_TypeError,
                         "connections[%zd] must be a pyredcache._core.Connection, "
                         "not %.100s", i, Py_TYPE(conn)->tp_name);
            goto error;
        }
    }
    /* One command, formatted once; every job sends the same buffer. */
    wrapped = PyTuple_Pack(1, argv[1]);
    if (wrapped == NULL) {
        goto error;
    }
    if (pyrc_multiplex_format(wrapped, &resp, &resplen, &ncmds) < 0) {
        goto error;
    }
    jobs = PyMem_Calloc(n ? (size_t)n : 1, sizeof(pyrc_mpx_job));
    if (jobs == NULL) {
        PyErr_NoMemory();
        goto error;
    }
    for (i = 0; i < n; i++) {
        jobs[i].conn = (ConnectionObject *)PyTuple_GET_ITEM(conns, i);
        jobs[i].out = resp;
        jobs[i].outlen = resplen;
        jobs[i].ncmds = ncmds;
    }

    results = pyrc_multiplex_run(jobs, n, wait_ms, argv[3], n ? n : 1, &started);
    clock_gettime(CLOCK_MONOTONIC, &ended);
    if (results == NULL) {
        goto error;
    }

    replies = PyList_New(n);
    if (replies == NULL) {
        goto error;
    }
    for (i = 0; i < n; i++) {
        PyObject *r = PyList_GET_ITEM(results, i);
        PyObject *reply = PyList_Check(r) ? PyList_GET_ITEM(r, 0) : r;
        if (reply != Py_None && !PyExceptionInstance_Check(reply)) {
            votes++;
        }
        PyList_SET_ITEM(replies, i, Py_NewRef(reply));
    }
    double validity = ttl_ms - ms_between(&started, &ended)
                      - (ttl_ms * 0.01 + 2.0);
    out = Py_BuildValue("(ndO)", votes, validity, replies);
    /* fall through to the common cleanup: `out` is NULL on failure */

error:
    PyMem_Free(jobs);
    PyMem_Free(resp);
    Py_XDECREF(replies);
    Py_XDECREF(results);
    Py_XDECREF(wrapped);
    Py_XDECREF(conns);
    return out;
}

static PyMethodDef redlock_methods[] = {
    {"redlock_round", (PyCFunction)(void (*)(void))redlock_round,
     METH_FASTCALL | METH_KEYWORDS, redlock_round_doc},
    {NULL, NULL, 0, NULL},
};

int
pyrc_redlock_exec(PyObject *module, pyrc_state *st)
{
    (void)st;
    return PyModule_AddFunctions(module, redlock_methods);
}
