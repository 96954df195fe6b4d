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
#include "fault.h"

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
 * finishes the reply.
 *
 * Ownership: for the top-level reply the result is a new reference, which
 * hiredis hands to the caller (or to free_object if it abandons the
 * reply).  For an element of an array it is borrowed: the parent list owns
 * it, or, when it could not be linked, it is a borrowed Py_None
 * placeholder that nothing releases.  hiredis passes an array element's
 * result to that array's own children as their parent, so it must stay
 * alive as long as the top-level reply does. */
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
                /* obj was not linked: nothing else owns it, so it dies
                 * here.  It must not go back to hiredis, which would hand
                 * it to this element's own children as their parent (a
                 * freed list); a borrowed placeholder makes them drop
                 * themselves, as above. */
                remember_error(task_ctx(task));
                Py_DECREF(obj);
                return Py_None;
            }
            Py_DECREF(obj); /* the list holds it */
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
    if (PYRC_FAULT(reader_create)) { return NULL; }
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

/* ------------------------------------------------------------------ */
/* Reader: the same parser, fed by the caller                          */

/* A Reader owns one hiredis reader built by pyrc_reader_create, so it
 * parses with exactly the callbacks a Connection uses: tests compare it
 * with the twin's Reader, and code that does its own I/O (asyncio) feeds
 * it.
 *
 * Invariants: `reader` is never NULL once tp_new returned.  hiredis keeps
 * a half-read reply in reader->reply (a new reference, see attach) until
 * the reply is whole; redisReaderFree releases it through free_object.
 * `busy` is set while hiredis runs: a callback may run Python code (an
 * allocation can start the garbage collector, and a finalizer may call
 * this Reader), and hiredis is not reentrant, so feed() and gets() refuse
 * to run inside one another. */
typedef struct {
    PyObject_HEAD
    redisReader *reader;
    pyrc_reply_ctx rctx;
    int busy;
} ReaderObject;

static int
reader_enter(ReaderObject *self)
{
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError,
                        "Reader is in use: feed() and gets() cannot be "
                        "called while it parses");
        return -1;
    }
    self->busy = 1;
    return 0;
}

/* The reader is failed (hiredis keeps it so): raise its error. */
static PyObject *
reader_raise(ReaderObject *self)
{
    if (self->reader->err == REDIS_ERR_OOM) {
        return PyErr_NoMemory();
    }
    PyErr_SetString(self->rctx.st->ProtocolError, self->reader->errstr);
    return NULL;
}

static PyObject *
Reader_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) != 0 || (kwds != NULL && PyDict_GET_SIZE(kwds) != 0)) {
        PyErr_SetString(PyExc_TypeError, "Reader() takes no arguments");
        return NULL;
    }
    ReaderObject *self = (ReaderObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->rctx.st = pyrc_state_from_type(type);
    self->rctx.exc = NULL;
    self->busy = 0;
    self->reader = pyrc_reader_create(&self->rctx);
    if (self->reader == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    return (PyObject *)self;
}

static int
Reader_traverse(ReaderObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->rctx.exc);
    if (self->reader != NULL) {
        Py_VISIT((PyObject *)self->reader->reply);
    }
    return 0;
}

static int
Reader_clear(ReaderObject *self)
{
    /* The half-read reply holds only lists, bytes, ints, None and
     * ResponseError instances: it cannot lead back here, so it stays with
     * the reader (freed in dealloc) and the reader stays usable. */
    Py_CLEAR(self->rctx.exc);
    return 0;
}

static void
Reader_dealloc(ReaderObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    (void)Reader_clear(self);
    if (self->reader != NULL) {
        redisReaderFree(self->reader);
        self->reader = NULL;
    }
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

PyDoc_STRVAR(Reader_feed_doc,
"feed($self, data, /)\n--\n\n"
"Append data (bytes-like) to the bytes waiting to be parsed.\n"
"\n"
"Raises TypeError for an object without the buffer protocol.  Once the\n"
"reader has failed (see gets) the data is dropped.");

static PyObject *
Reader_feed(ReaderObject *self, PyObject *data)
{
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (reader_enter(self) < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    int rc = REDIS_OK;
    /* a failed reader refuses data (redisReaderFeed returns early) */
    if (self->reader->err == 0 && view.len > 0) {
        (void)PYRC_FAULT_READER(reader_feed, self->reader);
        rc = redisReaderFeed(self->reader, (const char *)view.buf, (size_t)view.len);
    }
    self->busy = 0;
    PyBuffer_Release(&view);
    if (rc != REDIS_OK) {
        return reader_raise(self); /* out of memory */
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(Reader_gets_doc,
"gets($self, /)\n--\n\n"
"Return the next whole reply, or False when the bytes fed so far do not\n"
"hold one yet.\n"
"\n"
"Replies are bytes (bulk strings and status replies), int, None (nil),\n"
"list, and ResponseError instances for error replies (returned, not\n"
"raised).  Raises ProtocolError for bytes that are not RESP (as\n"
"hiredis 0.14 judges them: a bad type byte, a bad or out-of-range length\n"
"or integer, arrays nested more than 7 levels below the top-level reply);\n"
"the reader then stays failed: every later gets() raises the same error\n"
"and feed() drops its data.  MemoryError if an object cannot be built\n"
"(raised once the reply it belongs to was read whole, so the reader stays\n"
"in step).");

static PyObject *
Reader_gets(ReaderObject *self, PyObject *Py_UNUSED(ignored))
{
    void *reply = NULL;
    if (reader_enter(self) < 0) {
        return NULL;
    }
    int rc = redisReaderGetReply(self->reader, &reply);
    self->busy = 0;
    if (rc != REDIS_OK) {
        /* a callback error of the abandoned reply goes with it */
        pyrc_reply_clear_error(&self->rctx);
        return reader_raise(self);
    }
    if (reply == NULL) {
        Py_RETURN_FALSE;
    }
    if (pyrc_reply_take_error(&self->rctx) < 0) {
        Py_DECREF((PyObject *)reply);
        return NULL;
    }
    return (PyObject *)reply;
}

static PyMethodDef Reader_methods[] = {
    {"feed", (PyCFunction)Reader_feed, METH_O, Reader_feed_doc},
    {"gets", (PyCFunction)Reader_gets, METH_NOARGS, Reader_gets_doc},
    {NULL, NULL, 0, NULL},
};

PyDoc_STRVAR(Reader_doc,
"Reader()\n--\n\n"
"A RESP2 reply parser that does no I/O: feed() it the bytes a server sent,\n"
"gets() the replies they hold.\n"
"\n"
"It is the parser of Connection (hiredis' reader, building Python objects\n"
"directly), for code that reads the socket itself, such as an event loop.\n"
"Not thread-safe: one reader belongs to one stream.");

static PyType_Slot Reader_slots[] = {
    {Py_tp_doc, (void *)Reader_doc},
    {Py_tp_new, Reader_new},
    {Py_tp_traverse, Reader_traverse},
    {Py_tp_clear, Reader_clear},
    {Py_tp_dealloc, Reader_dealloc},
    {Py_tp_methods, Reader_methods},
    {0, NULL},
};

static PyType_Spec Reader_spec = {
    .name = "pyredcache._core.Reader",
    .basicsize = sizeof(ReaderObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC
#ifdef Py_TPFLAGS_IMMUTABLETYPE
             | Py_TPFLAGS_IMMUTABLETYPE
#endif
    ,
    .slots = Reader_slots,
};

int
pyrc_reply_exec(PyObject *module, pyrc_state *st)
{
    st->ReaderType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &Reader_spec, NULL);
    if (st->ReaderType == NULL) {
        return -1;
    }
    if (PyModule_AddType(module, st->ReaderType) < 0) {
        return -1;
    }
    return 0;
}

int
pyrc_reply_traverse(pyrc_state *st, visitproc visit, void *arg)
{
    Py_VISIT(st->ReaderType);
    return 0;
}

void
pyrc_reply_clear(pyrc_state *st)
{
    Py_CLEAR(st->ReaderType);
}
