/* Connection internals shared by connection.c and multiplex.c.
 *
 * multiplex.c drives many connections at once (non-blocking I/O and one
 * poll() over all of them); it borrows the connection's hiredis context,
 * its reader, and the helpers below, so both files keep one idea of what
 * a connection's state means.
 */
#ifndef PYRC_CONNECTION_H
#define PYRC_CONNECTION_H

#include "module.h" /* first: Python.h sets the feature macros */

#include <hiredis/hiredis.h>

#include "reply.h"

typedef struct {
    PyObject_HEAD
    pyrc_state *st;
    redisContext *ctx;          /* NULL while not connected */
    unsigned long generation;   /* pyrc_fork_generation when ctx was made */
    int busy;
    pyrc_reply_ctx rctx;

    /* configuration, read-only after __init__ */
    PyObject *host;             /* str */
    int port;
    PyObject *unix_socket_path; /* str or None */
    int db;
    PyObject *username;         /* str or None */
    PyObject *password;         /* str or None */
    PyObject *socket_timeout;          /* float or None, seconds */
    PyObject *socket_connect_timeout;  /* float or None, seconds */
    struct timeval timeout_tv;         /* {0,0}: wait forever */
    struct timeval connect_tv;
    int has_connect_timeout;
    long busy_poll_us;          /* spin budget per wait (0: never spin) */

    /* busy-poll adaptation and its counters (see read_reply) */
    unsigned int spin_misses;   /* consecutive spins that ended empty */
    unsigned int spin_skip;     /* waits left that block without spinning */
    unsigned long long spin_hits_total;
    unsigned long long spin_misses_total;
} ConnectionObject;

/* Default busy-poll budget, microseconds, on a machine with two CPUs or
 * more (0 on one CPU: the spinning client would hold off a local server). */
#define PYRC_BUSY_POLL_DEFAULT_US 50
#define PYRC_BUSY_POLL_MAX_US 1000000

/* The encoded form of a whole pipeline, built before anything is appended
 * to the context so that a bad argument leaves nothing half-written.
 * Small commands (the hot path: GET key) use the inline arrays and
 * allocate nothing. */
#define PYRC_SMALL_ARGS 8

typedef struct {
    Py_ssize_t ncmds;
    Py_ssize_t nargs;
    Py_ssize_t filled;      /* arguments encoded so far */
    int *argc;              /* per command */
    const char **argv;      /* all arguments, flat */
    size_t *argvlen;
    char *scratch;          /* 32 bytes per argument, for numbers */
    PyObject *keep;         /* list of objects owning argument memory */
    int argc_small[1];
    const char *argv_small[PYRC_SMALL_ARGS];
    size_t argvlen_small[PYRC_SMALL_ARGS];
    char scratch_small[32 * PYRC_SMALL_ARGS];
} encoded_t;


/* "host:port" or the unix socket path, as a new str. */
PyObject *pyrc_conn_describe(ConnectionObject *self);

/* Close the socket and free the context (GIL held). */
void pyrc_conn_drop(ConnectionObject *self);

/* Map a failed hiredis call (ctx->err, errno) to ConnectionError,
 * TimeoutError, ProtocolError or MemoryError naming the server, and close
 * the connection. */
void pyrc_conn_raise_io_error(ConnectionObject *self, int err, int saved_errno,
                              const char *errstr);

/* Make sure a live context of this process is there: reconnect when it was
 * made before a fork, or when the server closed it.  0, or -1 with an
 * exception set. */
int pyrc_conn_ensure_connected(ConnectionObject *self);

/* Busy-poll (see spin_read in connection.c), GIL held: the spin budget in
 * microseconds for this connection's next wait (0: block at once), and the
 * outcome of a wait that spun (hit: the reply came while spinning). */
long pyrc_conn_spin_budget(ConnectionObject *self);
void pyrc_conn_spin_account(ConnectionObject *self, int hit);

/* Mark the connection busy; RuntimeError if another caller has it.  The
 * caller clears self->busy when done. */
int pyrc_conn_enter(ConnectionObject *self);

/* `commands` (an iterable of commands, each a sequence of arguments) as a
 * new tuple of tuples, which owns every argument object: the encoded form
 * points into them (see connection.c).  TypeError for a malformed one. */
PyObject *pyrc_command_sequences(PyObject *commands);

/* Encode the commands of `cmds` (from pyrc_command_sequences), which must
 * stay alive until the encoded form is no longer used.  0, or -1 with an
 * exception set (TypeError/ValueError for a bad argument, ValueError for
 * one over PROTO_MAX_BULK_LEN bytes) and nothing to free. */
int pyrc_encode_commands(encoded_t *e, PyObject *cmds);
void pyrc_encoded_free(encoded_t *e);

#endif /* PYRC_CONNECTION_H */
