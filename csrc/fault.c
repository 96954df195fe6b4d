/* Fault injection for tests (debug builds only): see fault.h.
 *
 * In release builds this file compiles to nothing. */
#include "fault.h"

#ifdef PYRC_FAULT_INJECTION

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Per site: passes left before failing (-1: disarmed), failures left once
 * failing (-1: for ever), failures injected since the site was armed.
 * Plain C ints of the process (like the fork generation counter in
 * connection.c), not Python objects: nothing to visit or clear. */
typedef struct {
    long after;
    long times;
    long fired;
} fault_site;

static fault_site pyrc_faults[PYRC_FAULT_NSITES] = {
#define PYRC_FAULT_INIT(name) {-1, 0, 0},
    PYRC_FAULT_SITES(PYRC_FAULT_INIT)
#undef PYRC_FAULT_INIT
};

static const char *const pyrc_fault_names[PYRC_FAULT_NSITES] = {
#define PYRC_FAULT_NAME(name) #name,
    PYRC_FAULT_SITES(PYRC_FAULT_NAME)
#undef PYRC_FAULT_NAME
};

int
pyrc_fault_hit(int site)
{
    fault_site *f = &pyrc_faults[site];
    if (f->after < 0) {
        return 0;
    }
    if (f->after > 0) {
        f->after--;
        return 0;
    }
    if (f->times == 0) {
        f->after = -1;
        return 0;
    }
    if (f->times > 0) {
        f->times--;
    }
    f->fired++;
    return 1;
}

int
pyrc_fault_ctx_error(redisContext *ctx, int code)
{
    ctx->err = code;
    if (code == REDIS_ERR_IO) {
        errno = ECONNRESET;
        snprintf(ctx->errstr, sizeof(ctx->errstr), "%s", strerror(ECONNRESET));
    }
    else if (code == REDIS_ERR_OOM) {
        snprintf(ctx->errstr, sizeof(ctx->errstr), "Out of memory");
    }
    else {
        snprintf(ctx->errstr, sizeof(ctx->errstr), "injected fault");
    }
    return 1;
}

int
pyrc_fault_reader_oom(redisReader *reader)
{
    reader->err = REDIS_ERR_OOM;
    snprintf(reader->errstr, sizeof(reader->errstr), "Out of memory");
    return 1;
}

PyDoc_STRVAR(set_fault_doc,
"_set_fault(site, after, times=1, /)\n"
"--\n"
"\n"
"Debug builds only (PYREDCACHE_DEBUG_BUILD=1): make a fault site fail.\n"
"\n"
"site: a name from _fault_sites() (str).  The site passes `after` more\n"
"times (int >= 0), then fails `times` times (int >= 1, or -1 until\n"
"disarmed), then passes again; after=-1 disarms it.  Returns how many\n"
"failures the site injected since it was last armed (int).  Raises\n"
"ValueError for an unknown site or a bad count.");

static PyObject *
set_fault(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs < 2 || nargs > 3) {
        PyErr_Format(PyExc_TypeError,
                     "_set_fault() takes 2 or 3 arguments (%zd given)", nargs);
        return NULL;
    }
    if (!PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "_set_fault() site must be str");
        return NULL;
    }
    int site;
    for (site = 0; site < PYRC_FAULT_NSITES; site++) {
        if (PyUnicode_CompareWithASCIIString(args[0], pyrc_fault_names[site]) == 0) {
            break;
        }
    }
    if (site == PYRC_FAULT_NSITES) {
        PyErr_Format(PyExc_ValueError, "unknown fault site %R", args[0]);
        return NULL;
    }
    long after = PyLong_AsLong(args[1]);
    if (after == -1 && PyErr_Occurred()) {
        return NULL;
    }
    long times = 1;
    if (nargs == 3) {
        times = PyLong_AsLong(args[2]);
        if (times == -1 && PyErr_Occurred()) {
            return NULL;
        }
    }
    if (after < -1 || times == 0 || times < -1) {
        PyErr_SetString(PyExc_ValueError,
                        "_set_fault() needs after >= -1 and times >= 1 or -1");
        return NULL;
    }
    fault_site *f = &pyrc_faults[site];
    long fired = f->fired;
    f->after = after;
    f->times = times;
    f->fired = 0;
    return PyLong_FromLong(fired);
}

PyDoc_STRVAR(fault_sites_doc,
"_fault_sites()\n"
"--\n"
"\n"
"Debug builds only: the names of the fault sites (tuple of str).");

static PyObject *
fault_sites(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    (void)module;
    PyObject *names = PyTuple_New(PYRC_FAULT_NSITES);
    if (names == NULL) {
        return NULL;
    }
    for (int i = 0; i < PYRC_FAULT_NSITES; i++) {
        PyObject *s = PyUnicode_FromString(pyrc_fault_names[i]);
        if (s == NULL) {
            Py_DECREF(names);
            return NULL;
        }
        PyTuple_SET_ITEM(names, i, s);
    }
    return names;
}

static PyMethodDef fault_methods[] = {
    {"_set_fault", (PyCFunction)(void (*)(void))set_fault, METH_FASTCALL,
     set_fault_doc},
    {"_fault_sites", (PyCFunction)fault_sites, METH_NOARGS, fault_sites_doc},
    {NULL, NULL, 0, NULL},
};

int
pyrc_fault_exec(PyObject *module)
{
    return PyModule_AddFunctions(module, fault_methods);
}

#endif /* PYRC_FAULT_INJECTION */
