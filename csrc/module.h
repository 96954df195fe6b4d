/* pyredcache._core: shared declarations.
 *
 * Every Python object the extension keeps lives in one module-state struct
 * (pyrc_state).  Each part of the core (connection, reply, multiplex, codec, keys, promise, hashing) owns one
 * sub-struct of it and exports an exec/traverse/clear trio that module.c
 * calls; nothing is kept in C globals except the fork generation counter
 * (a plain integer, see connection.c).
 */
#ifndef PYRC_MODULE_H
#define PYRC_MODULE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#if PY_VERSION_HEX < 0x030A0000
static inline PyObject *
Py_NewRef(PyObject *o)
{
    Py_INCREF(o);
    return o;
}
#endif

#include "codec.h"
#include "keys.h"

typedef struct {
    /* Exception classes, imported from pyredcache.exceptions. */
    PyObject *PyRedCacheError;
    PyObject *ConnectionError;
    PyObject *TimeoutError;
    PyObject *ResponseError;
    PyObject *ProtocolError;
    PyObject *SerializationError;
    PyObject *PromiseError;

    /* Heap types. */
    PyTypeObject *ConnectionType;
    PyTypeObject *PromiseType;
    PyTypeObject *Crc32BucketsType;
    PyTypeObject *KetamaRingType;
    PyTypeObject *ReaderType;

    pyrc_codec_state codec;
    pyrc_keys_state keys;
} pyrc_state;

extern PyModuleDef pyrc_moduledef;

static inline pyrc_state *
pyrc_get_state(PyObject *module)
{
    return (pyrc_state *)PyModule_GetState(module);
}

/* Module state of an instance of one of our (non-subclassable) heap types. */
static inline pyrc_state *
pyrc_state_from_type(PyTypeObject *tp)
{
    return (pyrc_state *)PyType_GetModuleState(tp);
}

/* The one argument parser of METH_FASTCALL | METH_KEYWORDS functions.
 *
 * `names` holds the n parameter names; the first `nposonly` are positional
 * only, the first `nrequired` are required.  out[i] receives a borrowed
 * reference to each argument given and is left as it was (the caller's
 * default) otherwise.  0, or -1 with a TypeError worded like CPython's
 * (SystemError for a caller's mistake: n over 16, nrequired or nposonly
 * out of 0..n). */
int pyrc_parse_args(const char *fname, PyObject *const *args, Py_ssize_t nargs,
                    PyObject *kwnames, const char *const *names, int n,
                    int nrequired, int nposonly, PyObject **out);

/* Per-part hooks called by module.c. exec returns 0 or -1 with an
 * exception set. */
int pyrc_connection_exec(PyObject *module, pyrc_state *st);
int pyrc_connection_traverse(pyrc_state *st, visitproc visit, void *arg);
void pyrc_connection_clear(pyrc_state *st);

int pyrc_codec_exec(PyObject *module, pyrc_state *st);
int pyrc_codec_traverse(pyrc_state *st, visitproc visit, void *arg);
void pyrc_codec_clear(pyrc_state *st);

int pyrc_keys_exec(PyObject *module, pyrc_state *st);
int pyrc_keys_traverse(pyrc_state *st, visitproc visit, void *arg);
void pyrc_keys_clear(pyrc_state *st);

int pyrc_promise_exec(PyObject *module, pyrc_state *st);
int pyrc_promise_traverse(pyrc_state *st, visitproc visit, void *arg);
void pyrc_promise_clear(pyrc_state *st);

int pyrc_hashing_exec(PyObject *module, pyrc_state *st);
int pyrc_hashing_traverse(pyrc_state *st, visitproc visit, void *arg);
void pyrc_hashing_clear(pyrc_state *st);

int pyrc_reply_exec(PyObject *module, pyrc_state *st);
int pyrc_reply_traverse(pyrc_state *st, visitproc visit, void *arg);
void pyrc_reply_clear(pyrc_state *st);

int pyrc_multiplex_exec(PyObject *module, pyrc_state *st);

int pyrc_redlock_exec(PyObject *module, pyrc_state *st);

#endif /* PYRC_MODULE_H */
