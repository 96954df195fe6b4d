/* pyredcache._core: module definition, module state, multi-phase init.
 *
 * The module is initialised in phases (PEP 489): pyrc_exec imports the
 * exception classes from pyredcache.exceptions into the module state, then
 * lets each part of the core (connection, multiplex, codec, keys, promise,
 * hashing, redlock) add its types and functions.  Every object is visited and cleared through the state, so
 * the module can be loaded in several interpreters and torn down cleanly.
 */
#include "module.h"
#include "fault.h" /* _set_fault() in debug builds */

int
pyrc_parse_args(const char *fname, PyObject *const *args, Py_ssize_t nargs,
                PyObject *kwnames, const char *const *names, int n,
                int nrequired, int nposonly, PyObject **out)
{
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    int given[16] = {0};
    /* A real check, not assert(): release builds drop asserts, and a
     * caller with more parameters would write past given[]. */
    if (n < 0 || n > (int)(sizeof(given) / sizeof(given[0]))
        || nrequired < 0 || nrequired > n || nposonly < 0 || nposonly > n) {
        PyErr_Format(PyExc_SystemError,
                     "%s(): pyrc_parse_args takes 0..%d parameters "
                     "(n=%d, nrequired=%d, nposonly=%d)",
                     fname, (int)(sizeof(given) / sizeof(given[0])), n,
                     nrequired, nposonly);
        return -1;
    }
    if (nargs > n) {
        PyErr_Format(PyExc_TypeError,
                     "%s() takes at most %d arguments (%zd given)",
                     fname, n, nargs + nkw);
        return -1;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        out[i] = args[i];
        given[i] = 1;
    }
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, i);
        int j;
        for (j = nposonly; j < n; j++) {
            if (PyUnicode_CompareWithASCIIString(name, names[j]) == 0) {
                break;
            }
        }
        if (j == n) {
            PyErr_Format(PyExc_TypeError,
                         "%s() got an unexpected keyword argument '%S'",
                         fname, name);
            return -1;
        }
        if (given[j]) {
            PyErr_Format(PyExc_TypeError,
                         "%s() got multiple values for argument '%s'",
                         fname, names[j]);
            return -1;
        }
        out[j] = args[nargs + i];
        given[j] = 1;
    }
    for (int j = 0; j < nrequired; j++) {
        if (!given[j]) {
            PyErr_Format(PyExc_TypeError,
                         "%s() missing required argument '%s' (pos %d)",
                         fname, names[j], j + 1);
            return -1;
        }
    }
    return 0;
}

static int
import_exceptions(pyrc_state *st)
{
    PyObject *mod = PyImport_ImportModule("pyredcache.exceptions");
    if (mod == NULL) {
        return -1;
    }
#define LOAD(name)                                                  \
    do {                                                            \
        st->name = PyObject_GetAttrString(mod, #name);              \
        if (st->name == NULL) {                                     \
            goto error;                                             \
        }                                                           \
    } while (0)
    LOAD(PyRedCacheError);
    LOAD(ConnectionError);
    LOAD(TimeoutError);
    LOAD(ResponseError);
    LOAD(ProtocolError);
    LOAD(SerializationError);
    LOAD(PromiseError);
#undef LOAD
    Py_DECREF(mod);
    return 0;
error:
    Py_DECREF(mod);
    return -1;
}

static int
pyrc_exec(PyObject *module)
{
    pyrc_state *st = pyrc_get_state(module);
    if (import_exceptions(st) < 0) {
        return -1;
    }
    if (pyrc_connection_exec(module, st) < 0) {
        return -1;
    }
    if (pyrc_reply_exec(module, st) < 0) {
        return -1;
    }
    if (pyrc_codec_exec(module, st) < 0) {
        return -1;
    }
    if (pyrc_keys_exec(module, st) < 0) {
        return -1;
    }
    if (pyrc_promise_exec(module, st) < 0) {
        return -1;
    }
    if (pyrc_hashing_exec(module, st) < 0) {
        return -1;
    }
    if (pyrc_multiplex_exec(module, st) < 0) {
        return -1;
    }
    if (pyrc_redlock_exec(module, st) < 0) {
        return -1;
    }
    if (pyrc_fault_exec(module) < 0) {
        return -1;
    }
    if (PyModule_AddStringConstant(module, "implementation", "c") < 0) {
        return -1;
    }
    return 0;
}

static int
pyrc_traverse(PyObject *module, visitproc visit, void *arg)
{
    pyrc_state *st = pyrc_get_state(module);
    Py_VISIT(st->PyRedCacheError);
    Py_VISIT(st->ConnectionError);
    Py_VISIT(st->TimeoutError);
    Py_VISIT(st->ResponseError);
    Py_VISIT(st->ProtocolError);
    Py_VISIT(st->SerializationError);
    Py_VISIT(st->PromiseError);
    if (pyrc_connection_traverse(st, visit, arg)
        || pyrc_reply_traverse(st, visit, arg)
        || pyrc_codec_traverse(st, visit, arg)
        || pyrc_keys_traverse(st, visit, arg)
        || pyrc_promise_traverse(st, visit, arg)
        || pyrc_hashing_traverse(st, visit, arg)) {
        return -1;
    }
    return 0;
}

static int
pyrc_clear(PyObject *module)
{
    pyrc_state *st = pyrc_get_state(module);
    Py_CLEAR(st->PyRedCacheError);
    Py_CLEAR(st->ConnectionError);
    Py_CLEAR(st->TimeoutError);
    Py_CLEAR(st->ResponseError);
    Py_CLEAR(st->ProtocolError);
    Py_CLEAR(st->SerializationError);
    Py_CLEAR(st->PromiseError);
    pyrc_connection_clear(st);
    pyrc_reply_clear(st);
    pyrc_codec_clear(st);
    pyrc_keys_clear(st);
    pyrc_promise_clear(st);
    pyrc_hashing_clear(st);
    return 0;
}

static void
pyrc_free(void *module)
{
    (void)pyrc_clear((PyObject *)module);
}

static PyModuleDef_Slot pyrc_slots[] = {
    {Py_mod_exec, pyrc_exec},
    {0, NULL},
};

PyDoc_STRVAR(module_doc,
"pyredcache._core: the C core of pyredcache.\n"
"\n"
"Connections over hiredis, parallel pipelines over many connections, reply\n"
"decoding, the value codec, cache-key building, Promise, the key routing\n"
"hashes (CRC32 buckets, ketama ring) and the Redlock quorum round.\n"
"pyredcache._pure is its pure-Python twin and exports the same names\n"
"with the same behaviour.");

PyModuleDef pyrc_moduledef = {
    PyModuleDef_HEAD_INIT,
    .m_name = "pyredcache._core",
    .m_doc = module_doc,
    .m_size = sizeof(pyrc_state),
    .m_slots = pyrc_slots,
    .m_traverse = pyrc_traverse,
    .m_clear = pyrc_clear,
    .m_free = pyrc_free,
};

PyMODINIT_FUNC
PyInit__core(void)
{
    return PyModuleDef_Init(&pyrc_moduledef);
}
