/* libFuzzer target for pyredcache._core.loads (docs/format.rst).
 *
 * The whole C core (every csrc .c file) is compiled into this binary with coverage
 * instrumentation and ASan/UBSan, and registered as the built-in module
 * pyredcache._core before the interpreter starts, so the import system
 * finds it ahead of any _core*.so in the source tree.  The rest of the
 * package (the .py files of pyredcache) and the standard library load as usual.
 *
 * For each input:
 *   - loads(data) must return a value or raise SerializationError; any
 *     other exception (or a crash, or a sanitizer report) is a bug;
 *   - a decoded value must encode again, in both modes, and the plain
 *     encoding must decode again: everything loads accepts, dumps accepts.
 * A failed check prints the exception and aborts, which libFuzzer records
 * as a crash with the input saved.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

PyMODINIT_FUNC PyInit__core(void);

static PyObject *loads, *dumps, *SerializationError;

static void
fail(const char *what)
{
    fprintf(stderr, "fuzz_loads: %s\n", what);
    if (PyErr_Occurred()) {
        PyErr_Print();
    }
    abort();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    PyObject *core, *exceptions;
    (void)argc;
    (void)argv;

    if (PyImport_AppendInittab("pyredcache._core", PyInit__core) < 0) {
        fail("PyImport_AppendInittab");
    }
    Py_Initialize();
    core = PyImport_ImportModule("pyredcache._core");
    if (core == NULL) {
        fail("import pyredcache._core");
    }
    /* The built-in module, not a shared object from the source tree. */
    if (PyObject_HasAttrString(core, "__file__")) {
        fail("pyredcache._core was loaded from a file, not the fuzz build");
    }
    loads = PyObject_GetAttrString(core, "loads");
    dumps = PyObject_GetAttrString(core, "dumps");
    Py_DECREF(core);
    exceptions = PyImport_ImportModule("pyredcache.exceptions");
    if (loads == NULL || dumps == NULL || exceptions == NULL) {
        fail("pyredcache._core has no loads/dumps");
    }
    SerializationError = PyObject_GetAttrString(exceptions, "SerializationError");
    Py_DECREF(exceptions);
    if (SerializationError == NULL) {
        fail("no SerializationError");
    }
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    PyObject *bytes, *value, *plain, *canonical, *again;
    PyObject *kwnames, *args[2];

    bytes = PyBytes_FromStringAndSize((const char *)data, (Py_ssize_t)size);
    if (bytes == NULL) {
        fail("PyBytes_FromStringAndSize");
    }
    value = PyObject_CallOneArg(loads, bytes);
    Py_DECREF(bytes);
    if (value == NULL) {
        if (!PyErr_ExceptionMatches(SerializationError)) {
            fail("loads raised something other than SerializationError");
        }
        PyErr_Clear();
        return 0;
    }
    plain = PyObject_CallOneArg(dumps, value);
    if (plain == NULL) {
        fail("dumps(loads(data)) failed");
    }
    args[0] = value;
    args[1] = Py_True;
    kwnames = Py_BuildValue("(s)", "canonical");
    canonical = PyObject_Vectorcall(dumps, args, 1, kwnames);
    Py_XDECREF(kwnames);
    if (canonical == NULL) {
        fail("dumps(loads(data), canonical=True) failed");
    }
    again = PyObject_CallOneArg(loads, plain);
    if (again == NULL) {
        fail("loads(dumps(loads(data))) failed");
    }
    Py_DECREF(again);
    Py_DECREF(canonical);
    Py_DECREF(plain);
    Py_DECREF(value);
    return 0;
}
