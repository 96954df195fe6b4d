/* Promise: a small synchronous promise after rc's rc.promise.Promise, with
 * the rejection path rc lacked.
 *
 * pyredcache/_pure/promise.py is the pure twin and the reference; its module
 * docstring states the semantics both follow:
 *
 *   - pending, then settled once (resolved with a value, or rejected with an
 *     exception instance); settling again raises PromiseError;
 *   - then(on_resolve=None, on_reject=None) queues a pair of callbacks and
 *     returns the promise; on a settled promise the queue is run at once;
 *     callbacks run once each, in registration order;
 *   - every queued callback runs; the first exception one raised is
 *     re-raised by the resolve()/reject()/then() call that ran the queue,
 *     later ones are dropped; the promise stays settled;
 *   - value: None while pending (as rc); the resolved value; the stored
 *     exception (with the traceback it had when rejected) raised if rejected.
 *
 * PromiseError (pyredcache.exceptions, loaded into the module state) is
 * both a PyRedCacheError and a RuntimeError, as rc raised RuntimeError.
 *
 * Reentrancy invariant (see promise_run): the queue is `callbacks`, a list
 * owned by the promise, or NULL when empty.  Only the outermost run drains
 * it, and it detaches the whole list (taking the promise's reference) before
 * calling anything.  A callback that calls then() therefore appends to a new
 * list, never to the one being iterated, and the running loop picks the new
 * list up after the current batch: the order of registration holds.  A
 * callback can reach neither the detached batch nor its tuples.  The value
 * passed to a callback is a new reference held across the call.
 */
#include "module.h"

#include <stddef.h>
#include <structmember.h>

#define PROMISE_PENDING 0
#define PROMISE_RESOLVED 1
#define PROMISE_REJECTED 2

static const char *const state_names[] = {"pending", "resolved", "rejected"};

typedef struct {
    PyObject_HEAD
    PyObject *value;        /* resolved value or the rejection; NULL pending */
    PyObject *tb;           /* rejection's traceback when rejected, or NULL */
    PyObject *callbacks;    /* list of (on_resolve, on_reject) or NULL */
    PyObject *weakreflist;
    int state;
    int running;            /* 1 while promise_run drains the queue */
} Promise;

/* The first exception of a run, kept while later callbacks run. */
#if PY_VERSION_HEX >= 0x030C0000
typedef struct {
    PyObject *exc;
} saved_error;

static void
save_error(saved_error *e)
{
    e->exc = PyErr_GetRaisedException();
}

static void
restore_error(saved_error *e)
{
    PyErr_SetRaisedException(e->exc);
    e->exc = NULL;
}

#define SAVED(e) ((e)->exc != NULL)
#define SAVED_INIT {NULL}
#else
typedef struct {
    PyObject *type, *value, *tb;
} saved_error;

static void
save_error(saved_error *e)
{
    PyErr_Fetch(&e->type, &e->value, &e->tb);
}

static void
restore_error(saved_error *e)
{
    PyErr_Restore(e->type, e->value, e->tb);
    e->type = e->value = e->tb = NULL;
}

#define SAVED(e) ((e)->type != NULL)
#define SAVED_INIT {NULL, NULL, NULL}
#endif

static PyObject *
promise_error(Promise *self)
{
    pyrc_state *st = pyrc_state_from_type(Py_TYPE(self));
    return st == NULL ? NULL : st->PromiseError;
}

/* Drain the queue; 0, or -1 with the first callback exception set. */
static int
promise_run(Promise *self)
{
    saved_error first = SAVED_INIT;
    PyObject *batch = NULL;
    Py_ssize_t i, n, index;

    if (self->running) {
        return 0;   /* the outer run picks up what was just queued */
    }
    self->running = 1;
    index = self->state == PROMISE_REJECTED ? 1 : 0;
    while (self->callbacks != NULL && self->value != NULL) {
        /* Detach: the loop owns `batch`, no callback can reach it. */
        batch = self->callbacks;
        self->callbacks = NULL;
        n = PyList_GET_SIZE(batch);
        for (i = 0; i < n && self->value != NULL; i++) {
            PyObject *fn = PyTuple_GET_ITEM(PyList_GET_ITEM(batch, i), index);
            PyObject *arg, *res;
            if (fn == Py_None) {
                continue;
            }
            arg = Py_NewRef(self->value);
            res = PyObject_CallOneArg(fn, arg);
            Py_DECREF(arg);
            if (res != NULL) {
                Py_DECREF(res);
            }
            else if (!SAVED(&first)) {
                save_error(&first);
            }
            else {
                PyErr_Clear();
            }
        }
        Py_CLEAR(batch);
    }
    self->running = 0;
    if (SAVED(&first)) {
        restore_error(&first);
        return -1;
    }
    return 0;
}

/* Settle with state and a borrowed value; 0, or -1 if already settled. */
static int
promise_settle(Promise *self, int state, PyObject *value)
{
    if (self->state != PROMISE_PENDING) {
        PyObject *err = promise_error(self);
        if (err != NULL) {
            PyErr_Format(err, "promise is already %s",
                         state_names[self->state]);
        }
        return -1;
    }
    self->state = state;
    self->value = Py_NewRef(value);
    if (state == PROMISE_REJECTED) {
        self->tb = PyException_GetTraceback(value);     /* new ref or NULL */
    }
    return 0;
}

static PyObject *
promise_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    Promise *self;
    if (PyTuple_GET_SIZE(args) != 0 || (kwds != NULL && PyDict_GET_SIZE(kwds))) {
        PyErr_SetString(PyExc_TypeError, "Promise() takes no arguments");
        return NULL;
    }
    self = (Promise *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->value = NULL;
    self->tb = NULL;
    self->callbacks = NULL;
    self->weakreflist = NULL;
    self->state = PROMISE_PENDING;
    self->running = 0;
    return (PyObject *)self;
}

PyDoc_STRVAR(promise_resolve_doc,
"resolve($self, value, /)\n--\n\n"
"Resolve with value (any object), run the queued callbacks' on_resolve and\n"
"return the promise.  Raises PromiseError (a RuntimeError) if the promise\n"
"is already settled, and the first exception a callback raised (after all\n"
"ran).");

static PyObject *
promise_resolve(Promise *self, PyObject *value)
{
    if (promise_settle(self, PROMISE_RESOLVED, value) < 0
        || promise_run(self) < 0) {
        return NULL;
    }
    return Py_NewRef((PyObject *)self);
}

PyDoc_STRVAR(promise_reject_doc,
"reject($self, exc, /)\n--\n\n"
"Reject with the exception instance exc, run the queued callbacks'\n"
"on_reject and return the promise.  Raises TypeError if exc is not an\n"
"exception instance, PromiseError (a RuntimeError) if the promise is\n"
"already settled, and the first exception a callback raised (after all\n"
"ran).");

static PyObject *
promise_reject(Promise *self, PyObject *exc)
{
    if (!PyExceptionInstance_Check(exc)) {
        PyErr_Format(PyExc_TypeError,
                     "reject() needs an exception instance, not %.200s",
                     Py_TYPE(exc)->tp_name);
        return NULL;
    }
    if (promise_settle(self, PROMISE_REJECTED, exc) < 0
        || promise_run(self) < 0) {
        return NULL;
    }
    return Py_NewRef((PyObject *)self);
}

PyDoc_STRVAR(promise_then_doc,
"then($self, /, on_resolve=None, on_reject=None)\n--\n\n"
"Queue on_resolve(value) and on_reject(exc) (each a callable or None) and\n"
"return the promise itself.  On a settled promise the matching callback\n"
"runs now; a then() called by a running callback is queued behind the\n"
"callbacks already queued.  Raises TypeError if a callback is neither\n"
"callable nor None, and the first exception a callback it ran raised.");

static PyObject *
promise_then(Promise *self, PyObject *const *args, Py_ssize_t nargs,
             PyObject *kwnames)
{
    static const char *const names[2] = {"on_resolve", "on_reject"};
    PyObject *fns[2] = {Py_None, Py_None};
    PyObject *pair;
    int j;

    if (pyrc_parse_args("then", args, nargs, kwnames, names, 2, 0, 0, fns) < 0) {
        return NULL;
    }
    for (j = 0; j < 2; j++) {
        if (fns[j] != Py_None && !PyCallable_Check(fns[j])) {
            PyErr_Format(PyExc_TypeError, "%s must be callable or None",
                         names[j]);
            return NULL;
        }
    }
    if (fns[0] == Py_None && fns[1] == Py_None) {
        return Py_NewRef((PyObject *)self);
    }
    pair = PyTuple_Pack(2, fns[0], fns[1]);
    if (pair == NULL) {
        return NULL;
    }
    if (self->callbacks == NULL) {
        self->callbacks = PyList_New(0);
        if (self->callbacks == NULL) {
            Py_DECREF(pair);
            return NULL;
        }
    }
    if (PyList_Append(self->callbacks, pair) < 0) {
        Py_DECREF(pair);
        return NULL;
    }
    Py_DECREF(pair);
    if (self->state != PROMISE_PENDING && promise_run(self) < 0) {
        return NULL;
    }
    return Py_NewRef((PyObject *)self);
}

PyDoc_STRVAR(promise_resolved_doc,
"resolved($type, value, /)\n--\n\n"
"A new promise already resolved with value.");

static PyObject *
promise_resolved(PyObject *cls, PyObject *value)
{
    PyObject *p = PyObject_CallNoArgs(cls), *res;
    if (p == NULL) {
        return NULL;
    }
    res = promise_resolve((Promise *)p, value);
    Py_DECREF(p);
    return res;
}

PyDoc_STRVAR(promise_rejected_doc,
"rejected($type, exc, /)\n--\n\n"
"A new promise already rejected with the exception instance exc.");

static PyObject *
promise_rejected(PyObject *cls, PyObject *exc)
{
    PyObject *p = PyObject_CallNoArgs(cls), *res;
    if (p == NULL) {
        return NULL;
    }
    res = promise_reject((Promise *)p, exc);
    Py_DECREF(p);
    return res;
}

static PyObject *
promise_get_is_pending(Promise *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(self->state == PROMISE_PENDING);
}

static PyObject *
promise_get_is_resolved(Promise *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(self->state == PROMISE_RESOLVED);
}

static PyObject *
promise_get_is_rejected(Promise *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(self->state == PROMISE_REJECTED);
}

static PyObject *
promise_get_value(Promise *self, void *closure)
{
    (void)closure;
    if (self->state == PROMISE_PENDING) {
        Py_RETURN_NONE;     /* rc: a pending promise's value is None */
    }
    if (self->value == NULL) {
        /* Settled, then emptied by the garbage collector's tp_clear: only
         * reachable from a finalizer of the cycle it was part of. */
        PyObject *err = promise_error(self);
        if (err != NULL) {
            PyErr_SetString(err, "promise was cleared");
        }
        return NULL;
    }
    if (self->state == PROMISE_RESOLVED) {
        return Py_NewRef(self->value);
    }
    /* Raise with the traceback it had when rejected, so raising it again
     * and again does not grow its traceback (as `raise
     * exc.with_traceback(tb)` in the twin). */
    if (PyException_SetTraceback(self->value,
                                 self->tb != NULL ? self->tb : Py_None) < 0) {
        return NULL;
    }
    PyErr_SetObject((PyObject *)Py_TYPE(self->value), self->value);
    return NULL;
}

static PyObject *
promise_repr(Promise *self)
{
    PyObject *res;
    int r;
    if (self->value == NULL) {
        return PyUnicode_FromFormat("<Promise %s>", state_names[self->state]);
    }
    r = Py_ReprEnter((PyObject *)self);
    if (r != 0) {
        return r > 0 ? PyUnicode_FromString("<Promise ...>") : NULL;
    }
    res = PyUnicode_FromFormat("<Promise %s: %R>", state_names[self->state],
                               self->value);
    Py_ReprLeave((PyObject *)self);
    return res;
}

static int
promise_traverse(Promise *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->value);
    Py_VISIT(self->tb);
    Py_VISIT(self->callbacks);
    return 0;
}

static int
promise_clear(Promise *self)
{
    Py_CLEAR(self->value);
    Py_CLEAR(self->tb);
    Py_CLEAR(self->callbacks);
    return 0;
}

static void
promise_dealloc(Promise *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    promise_clear(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyMethodDef promise_methods[] = {
    {"resolve", (PyCFunction)promise_resolve, METH_O, promise_resolve_doc},
    {"reject", (PyCFunction)promise_reject, METH_O, promise_reject_doc},
    {"then", (PyCFunction)(void (*)(void))promise_then,
     METH_FASTCALL | METH_KEYWORDS, promise_then_doc},
    {"resolved", (PyCFunction)promise_resolved, METH_O | METH_CLASS,
     promise_resolved_doc},
    {"rejected", (PyCFunction)promise_rejected, METH_O | METH_CLASS,
     promise_rejected_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef promise_getset[] = {
    {"is_pending", (getter)promise_get_is_pending, NULL,
     "True until the promise is resolved or rejected.", NULL},
    {"is_resolved", (getter)promise_get_is_resolved, NULL,
     "True once the promise is resolved (not rejected).", NULL},
    {"is_rejected", (getter)promise_get_is_rejected, NULL,
     "True once the promise is rejected.", NULL},
    {"value", (getter)promise_get_value, NULL,
     "The resolved value, or None while the promise is pending (as in rc).\n"
     "Raises the stored exception (with the traceback it had when rejected)\n"
     "if the promise was rejected.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef promise_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(Promise, weakreflist),
     READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

PyDoc_STRVAR(promise_doc,
"Promise()\n--\n\n"
"A synchronous promise: pending, then resolved or rejected once.\n"
"\n"
"After rc's rc.promise.Promise, plus reject() and is_rejected.  value is\n"
"None while pending, as in rc.  Resolving or rejecting a settled promise\n"
"raises PromiseError, a RuntimeError as in rc.  See\n"
"pyredcache._pure.promise for the full semantics.");

static PyType_Slot promise_slots[] = {
    {Py_tp_doc, (void *)promise_doc},
    {Py_tp_new, promise_new},
    {Py_tp_repr, promise_repr},
    {Py_tp_traverse, promise_traverse},
    {Py_tp_clear, promise_clear},
    {Py_tp_dealloc, promise_dealloc},
    {Py_tp_methods, promise_methods},
    {Py_tp_getset, promise_getset},
    {Py_tp_members, promise_members},
    {0, NULL},
};

static PyType_Spec promise_spec = {
    .name = "pyredcache._core.Promise",
    .basicsize = sizeof(Promise),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC
#ifdef Py_TPFLAGS_IMMUTABLETYPE
             | Py_TPFLAGS_IMMUTABLETYPE
#endif
    ,
    .slots = promise_slots,
};

int
pyrc_promise_exec(PyObject *module, pyrc_state *st)
{
    st->PromiseType = (PyTypeObject *)PyType_FromModuleAndSpec(
        module, &promise_spec, NULL);
    if (st->PromiseType == NULL) {
        return -1;
    }
    if (PyModule_AddType(module, st->PromiseType) < 0) {
        return -1;
    }
    return 0;
}

int
pyrc_promise_traverse(pyrc_state *st, visitproc visit, void *arg)
{
    Py_VISIT(st->PromiseType);
    return 0;
}

void
pyrc_promise_clear(pyrc_state *st)
{
    Py_CLEAR(st->PromiseType);
}
