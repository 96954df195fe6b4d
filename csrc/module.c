/* pyredcache._core: module definition, module state, multi-phase init.
 *
 * The module is initialised in phases (PEP 489): pyrc_exec imports the
 * exception classes from pyredcache.exceptions into the module state, then
 * lets each part of the core (connection, codec, keys, promise) add its types and
 * functions.  Every object is visited and cleared through the state, so
 * the module can be loaded in several interpreters and torn down cleanly.
 */
#include "module.h"

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
    if (pyrc_codec_exec(module, st) < 0) {
        return -1;
    }
    if (pyrc_keys_exec(module, st) < 0) {
        return -1;
    }
    if (pyrc_promise_exec(module, st) < 0) {
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
        || pyrc_codec_traverse(st, visit, arg)
        || pyrc_keys_traverse(st, visit, arg)
        || pyrc_promise_traverse(st, visit, arg)) {
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
    pyrc_codec_clear(st);
    pyrc_keys_clear(st);
    pyrc_promise_clear(st);
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
"Connections over hiredis, reply decoding, the value codec and cache-key\n"
"building.  pyredcache._core_py is its pure-Python twin and exports the\n"
"same names with the same behaviour.");

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
