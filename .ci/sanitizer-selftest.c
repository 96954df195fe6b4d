/* Deliberately broken on purpose: .ci/sanitize builds this tiny extension
 * with the same sanitizer flags as the C core and runs each function under
 * the same environment as the tests, and fails unless every one of them is
 * reported.  So a sanitizer run that would let a real report pass (a lost
 * LD_PRELOAD, recoverable UBSan checks, reports going nowhere) fails CI. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <stdlib.h>

static PyObject *
heap_overflow(PyObject *self, PyObject *unused)
{
    volatile char *p = malloc(8);
    if (p == NULL)
        return PyErr_NoMemory();
    p[8] = 1;                                   /* one past the end */
    free((void *)p);
    Py_RETURN_NONE;
}

static PyObject *
use_after_free(PyObject *self, PyObject *unused)
{
    volatile char *p = malloc(8);
    if (p == NULL)
        return PyErr_NoMemory();
    free((void *)p);
    return PyLong_FromLong(p[0]);               /* read after free */
}

static PyObject *
signed_overflow(PyObject *self, PyObject *arg)
{
    long n = PyLong_AsLong(arg);                 /* called with INT_MAX */
    if (n == -1 && PyErr_Occurred())
        return NULL;
    int i = (int)n;
    return PyLong_FromLong(i + 1);               /* signed int overflow */
}

static PyMethodDef methods[] = {
    {"heap_overflow", heap_overflow, METH_NOARGS, NULL},
    {"use_after_free", use_after_free, METH_NOARGS, NULL},
    {"signed_overflow", signed_overflow, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "sanitizer_selftest", NULL, -1, methods,
};

PyMODINIT_FUNC
PyInit_sanitizer_selftest(void)
{
    return PyModule_Create(&module);
}
