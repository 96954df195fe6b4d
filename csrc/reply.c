/* Reply decoding: hiredis reader callbacks that build Python objects
 * directly while parsing (no intermediate redisReply tree).
 *
 * Every reply is hostile input: lengths come from the server.  hiredis
 * bounds nesting (7 levels) and waits for a bulk string's bytes to arrive
 * before calling createString, so the only size we act on before the data
 * is there is an array's element count.  We never preallocate more than
 * PYRC_ARRAY_PREALLOC slots for it; further elements are appended as they
 * arrive, so "*2147483647\r\n" costs nothing until its elements exist.
 *
 * All callbacks run with the GIL held: the connection only releases the
 * GIL around socket reads and writes, never around parsing. */
#include "reply.h"

#define PYRC_ARRAY_PREALLOC 4096

static pyrc_reply_ctx *
task_ctx(const redisReadTask *task)
{
    return (pyrc_reply_ctx *)task->privdata;
}

/* Keep the first exception; later ones are dropped. */
static void
remember_error(pyrc_reply_ctx *rctx)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (rctx->exc == NULL) {
        PyErr_NormalizeException(&type, &value, &tb);
        if (tb != NULL && value != NULL) {
            PyException_SetTraceback(value, tb);
        }
        rctx->exc = value;
        Py_XDECREF(type);
        Py_XDECREF(tb);
        if (rctx->exc == NULL) {
            rctx->exc = Py_NewRef(PyExc_MemoryError);
        }
    }
    else {
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
    }
}

/* Link obj (a new reference, or NULL with an exception set) into its
 * parent array and return the object hiredis should keep for this task.
 * Never returns NULL: a failed object becomes None, so the reader always
 * finishes the reply. */
static void *
attach(const redisReadTask *task, PyObject *obj)
{
    if (obj == NULL) {
        remember_error(task_ctx(task));
        obj = Py_NewRef(Py_None);
    }
    if (task->parent != NULL) {
        PyObject *parent = (PyObject *)task->parent->obj;
        Py_ssize_t idx = task->idx;
        if (!PyList_CheckExact(parent)) {
            /* The parent failed to allocate and is a None placeholder; its
             * error is already kept.  Hand hiredis a borrowed placeholder:
             * nothing owns this child. */
            Py_DECREF(obj);
            return Py_None;
        }
        /* Children arrive in order 0..n-1: slots below the preallocated
         * size are filled in place, the rest appended. */
        if (idx < PyList_GET_SIZE(parent)) {
            PyList_SET_ITEM(parent, idx, obj); /* steals obj */
        }
        else {
            if (PyList_Append(parent, obj) < 0) {
                remember_error(task_ctx(task));
            }
            Py_DECREF(obj); /* the list holds it (or it was dropped) */
        }
    }
    return obj;
}

static void *
create_string(const redisReadTask *task, char *str, size_t len)
{
    PyObject *obj;
    if (task->type == REDIS_REPLY_ERROR) {
        pyrc_reply_ctx *rctx = task_ctx(task);
        PyObject *msg = PyUnicode_DecodeUTF8(str, (Py_ssize_t)len, "replace");
        obj = NULL;
        if (msg != NULL) {
            obj = PyObject_CallOneArg(rctx->st->ResponseError, msg);
            Py_DECREF(msg);
        }
    }
    else {
        /* bulk strings and status replies alike are bytes */
        obj = PyBytes_FromStringAndSize(str, (Py_ssize_t)len);
    }
    return attach(task, obj);
}

#if HIREDIS_MAJOR >= 1
static void *
create_array(const redisReadTask *task, size_t elements)
#else
static void *
create_array(const redisReadTask *task, int elements)
#endif
{
    Py_ssize_t n = (Py_ssize_t)elements;
    if (n > PYRC_ARRAY_PREALLOC) {
        n = PYRC_ARRAY_PREALLOC;
    }
    else if (n < 0) {
        n = 0;
    }
    /* Slots stay NULL until their element arrives; the reader fills all of
     * them before the reply is handed out, and list_dealloc tolerates NULL
     * slots should the reply be abandoned half-way (protocol error). */
    return attach(task, PyList_New(n));
}

static void *
create_integer(const redisReadTask *task, long long value)
{
    return attach(task, PyLong_FromLongLong(value));
}

static void *
create_nil(const redisReadTask *task)
{
    return attach(task, Py_NewRef(Py_None));
}

#if HIREDIS_MAJOR >= 1
/* RESP3 types: only sent after HELLO 3, which pyredcache never sends; a
 * server that sends them anyway gets sensible objects. */
static void *
create_double(const redisReadTask *task, double value, char *str, size_t len)
{
    (void)str;
    (void)len;
    return attach(task, PyFloat_FromDouble(value));
}

static void *
create_bool(const redisReadTask *task, int value)
{
    return attach(task, PyBool_FromLong(value));
}
#endif

static void
free_object(void *obj)
{
    /* Called by hiredis only for a reply it abandons (reader freed or
     * reset); children are owned by their list. */
    Py_XDECREF((PyObject *)obj);
}

static redisReplyObjectFunctions pyrc_reply_functions = {
    .createString = create_string,
    .createArray = create_array,
    .createInteger = create_integer,
#if HIREDIS_MAJOR >= 1
    .createDouble = create_double,
    .createBool = create_bool,
#endif
    .createNil = create_nil,
    .freeObject = free_object,
};

redisReader *
pyrc_reader_create(pyrc_reply_ctx *rctx)
{
    redisReader *reader = redisReaderCreateWithFunctions(&pyrc_reply_functions);
    if (reader == NULL) {
        return NULL;
    }
    reader->privdata = rctx;
    return reader;
}

int
pyrc_reply_take_error(pyrc_reply_ctx *rctx)
{
    PyObject *exc = rctx->exc;
    if (exc == NULL) {
        return 0;
    }
    rctx->exc = NULL;
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
    return -1;
}

void
pyrc_reply_clear_error(pyrc_reply_ctx *rctx)
{
    Py_CLEAR(rctx->exc);
}
