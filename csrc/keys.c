/* Cache-key building: KeyBuilder.
 *
 * A KeyBuilder is made once per cached function from its signature.
 * Calling it with a call's (args, kwargs) binds them as
 * inspect.Signature.bind() followed by BoundArguments.apply_defaults() would
 * (same TypeErrors, same messages), encodes the bound values in parameter
 * order as one list with the canonical value codec, and returns
 *
 *     prefix + hex(BLAKE2b-128(encoding))
 *
 * pyredcache/_pure/keys.py is the pure twin and the reference.  An argument
 * of a type the codec does not support is replaced by the result of its
 * __cache_key__() method (also inside containers); without one, TypeError.
 *
 * The binding is chosen once, at construction (CRAFT #4): a signature made
 * only of positional parameters gets bind_positional, which encodes a
 * keyword-free call straight from the args tuple and the defaults; every
 * other signature, or a call with keywords, goes through bind_general.
 * Nothing is allocated per call besides the returned bytes, unless the
 * encoding outgrows the encoder's stack buffer, the signature has more than
 * BIND_STACK parameters, or **kwargs collects keywords next to named ones.
 */
#include "module.h"

#include <stddef.h>
#include <structmember.h>

#include "blake2b.h"

#define BIND_STACK 16

typedef struct KeyBuilder KeyBuilder;
typedef int (*bind_func)(KeyBuilder *self, PyObject *args, PyObject *kwargs,
                         pyrc_encoder *enc);

struct KeyBuilder {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    pyrc_state *st;         /* module state; the type keeps the module alive */
    PyObject *prefix;       /* bytes */
    PyObject *names;        /* tuple of str */
    PyObject *kinds_obj;    /* tuple of int, as given */
    PyObject *defaults;     /* tuple; inspect.Parameter.empty for none */
    int drop_first;
    Py_ssize_t nparams;
    Py_ssize_t var_pos;     /* index of *args, or -1 */
    Py_ssize_t var_kw;      /* index of **kwargs, or -1 */
    unsigned char *kinds;   /* nparams kinds */
    bind_func bind;
};

/* ------------------------------------------------------------------------
 * Binding errors: the messages of inspect.Signature.bind.  inspect changed
 * twice; the extension is built for one Python version and follows the
 * inspect of that version:
 *   3.12: a missing keyword-only argument is reported as such (when the
 *         positional arguments run out before it);
 *   3.13: a positional-only parameter whose name is passed as a keyword is
 *         left unbound, and the keyword goes to **kwargs (an error without
 *         one, after the other checks).
 * ------------------------------------------------------------------------ */

#define INSPECT_KWONLY_MESSAGE (PY_VERSION_HEX >= 0x030C0000)
#define INSPECT_POSONLY_TO_KWARGS (PY_VERSION_HEX >= 0x030D0000)

static int
err_missing(KeyBuilder *self, Py_ssize_t p)
{
    PyErr_Format(PyExc_TypeError, "missing a required argument: %R",
                 PyTuple_GET_ITEM(self->names, p));
    return -1;
}

/* Phase 1 of the binding names keyword-only arguments (3.12+). */
static int
err_missing_phase1(KeyBuilder *self, Py_ssize_t p)
{
#if INSPECT_KWONLY_MESSAGE
    if (self->kinds[p] == PYRC_KEYWORD_ONLY) {
        PyErr_Format(PyExc_TypeError,
                     "missing a required keyword-only argument: %R",
                     PyTuple_GET_ITEM(self->names, p));
        return -1;
    }
#endif
    return err_missing(self, p);
}

static int
err_too_many(void)
{
    PyErr_SetString(PyExc_TypeError, "too many positional arguments");
    return -1;
}

static int
err_multiple(KeyBuilder *self, Py_ssize_t p)
{
    PyErr_Format(PyExc_TypeError, "multiple values for argument %R",
                 PyTuple_GET_ITEM(self->names, p));
    return -1;
}

#if !INSPECT_POSONLY_TO_KWARGS
static int
err_posonly(KeyBuilder *self, Py_ssize_t p)
{
    PyErr_Format(PyExc_TypeError,
                 "%R parameter is positional only, but was passed as a keyword",
                 PyTuple_GET_ITEM(self->names, p));
    return -1;
}
#else
/* 3.13+: the names of the positional-only parameters (flag 2 in
 * `marks`) whose names were passed as keywords, joined by ", ". */
static int
err_posonly_in_kwargs(KeyBuilder *self, const unsigned char *marks)
{
    PyObject *list = PyList_New(0), *sep = NULL, *joined = NULL;
    Py_ssize_t p;
    if (list == NULL) {
        return -1;
    }
    for (p = 0; p < self->nparams; p++) {
        if ((marks[p] & 2)
            && PyList_Append(list, PyTuple_GET_ITEM(self->names, p)) < 0) {
            goto error;
        }
    }
    sep = PyUnicode_FromString(", ");
    if (sep == NULL) {
        goto error;
    }
    joined = PyUnicode_Join(sep, list);
    if (joined == NULL) {
        goto error;
    }
    PyErr_Format(PyExc_TypeError,
                 "got some positional-only arguments passed as keyword "
                 "arguments: %R", joined);
error:
    Py_CLEAR(list);
    Py_CLEAR(sep);
    Py_CLEAR(joined);
    return -1;
}
#endif

/* After a failed encoding of parameter p: an object the codec cannot encode
 * and that has no __cache_key__() becomes a TypeError naming p. */
static int
encode_failed(KeyBuilder *self, Py_ssize_t p, pyrc_encoder *enc)
{
    PyObject *tp = enc->unsupported_type, *name;
    if (tp == NULL) {
        return -1;
    }
    if (!PyErr_ExceptionMatches(self->st->SerializationError)) {
        return -1;
    }
    PyErr_Clear();
    name = PyObject_GetAttrString(tp, "__name__");
    if (name == NULL) {
        return -1;
    }
    if (enc->unsupported_is_tzinfo) {
        PyErr_Format(PyExc_TypeError,
                     "cannot build a cache key from argument %R: its tzinfo "
                     "of type %R is not supported (use datetime.timezone or "
                     "zoneinfo.ZoneInfo)",
                     PyTuple_GET_ITEM(self->names, p), name);
    }
    else {
        PyErr_Format(PyExc_TypeError,
                     "cannot build a cache key from argument %R of type %R: "
                     "give the type a __cache_key__() method",
                     PyTuple_GET_ITEM(self->names, p), name);
    }
    Py_DECREF(name);
    return -1;
}

static inline int
encode_param(KeyBuilder *self, Py_ssize_t p, PyObject *value,
             pyrc_encoder *enc)
{
    if (pyrc_encode(enc, value, 1) < 0) {
        return encode_failed(self, p, enc);
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Positional-only signatures (kinds 0 and 1 only)
 * ------------------------------------------------------------------------ */

static int bind_general(KeyBuilder *self, PyObject *args, PyObject *kwargs,
                        pyrc_encoder *enc);

static int
bind_positional(KeyBuilder *self, PyObject *args, PyObject *kwargs,
                pyrc_encoder *enc)
{
    Py_ssize_t na = PyTuple_GET_SIZE(args), n = self->nparams, p;
    PyObject *empty = self->st->keys.empty;

    if (PyDict_GET_SIZE(kwargs) != 0) {
        return bind_general(self, args, kwargs, enc);
    }
    if (na > n) {
        return err_too_many();
    }
    for (p = na; p < n; p++) {
        if (PyTuple_GET_ITEM(self->defaults, p) == empty) {
            return err_missing(self, p);
        }
    }
    if (pyrc_encode_array_header(enc, n - self->drop_first) < 0) {
        return -1;
    }
    for (p = self->drop_first; p < n; p++) {
        /* Borrowed: the args and defaults tuples hold them. */
        PyObject *v = p < na ? PyTuple_GET_ITEM(args, p)
                             : PyTuple_GET_ITEM(self->defaults, p);
        if (encode_param(self, p, v, enc) < 0) {
            return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Any signature: inspect.Signature._bind, step by step.
 * ------------------------------------------------------------------------ */

/* marks[p] flags */
#define MARK_FROM_KW 1          /* bound from kwargs (not in **kwargs) */
#define MARK_POSONLY_IN_KW 2    /* 3.13+: pos-only name passed as keyword */

static int
bind_general(KeyBuilder *self, PyObject *args, PyObject *kwargs,
             pyrc_encoder *enc)
{
    PyObject *stack_vals[BIND_STACK];
    unsigned char stack_marks[BIND_STACK];
    PyObject **vals = stack_vals;
    unsigned char *marks = stack_marks;
    PyObject *empty = self->st->keys.empty, *extra_kw = NULL;
    const unsigned char *kinds = self->kinds;
    Py_ssize_t n = self->nparams, na = PyTuple_GET_SIZE(args);
    Py_ssize_t nkw = PyDict_GET_SIZE(kwargs);
    Py_ssize_t pi = 0, ai = 0, p, kwstart, used = 0, kwparam = -1, count;
    Py_ssize_t varpos_start = na;   /* *args gets args[varpos_start:] */
    int posonly_in_kw = 0, ret = -1;

    if (n > BIND_STACK) {
        vals = PyMem_New(PyObject *, (size_t)n);
        marks = PyMem_Malloc((size_t)n);
        if (vals == NULL || marks == NULL) {
            if (vals != NULL) {
                PyMem_Free(vals);
            }
            PyMem_Free(marks);
            PyErr_NoMemory();
            return -1;
        }
    }
    /* vals[p]: new reference to the bound value, NULL while unbound.  The
     * values are held because __cache_key__() (user code) runs while they
     * are encoded and may mutate kwargs. */
    for (p = 0; p < n; p++) {
        vals[p] = NULL;
        marks[p] = 0;
    }

    /* Phase 1: positional arguments, in parameter order. */
    for (;;) {
        PyObject *name, *found;
        if (ai >= na) {
            if (pi >= n) {
                kwstart = n;
                break;
            }
            p = pi++;
            if (kinds[p] == PYRC_VAR_POSITIONAL) {
                kwstart = pi;
                break;
            }
            name = PyTuple_GET_ITEM(self->names, p);
            found = nkw ? PyDict_GetItemWithError(kwargs, name) : NULL;
            if (found == NULL && PyErr_Occurred()) {
                goto done;
            }
            if (found != NULL) {
                if (kinds[p] == PYRC_POSITIONAL_ONLY) {
#if INSPECT_POSONLY_TO_KWARGS
                    marks[p] |= MARK_POSONLY_IN_KW;
                    posonly_in_kw = 1;
                    continue;
#else
                    err_posonly(self, p);
                    goto done;
#endif
                }
                kwstart = p;
                break;
            }
            if (kinds[p] == PYRC_VAR_KEYWORD
                || PyTuple_GET_ITEM(self->defaults, p) != empty) {
                kwstart = p;
                break;
            }
            err_missing_phase1(self, p);
            goto done;
        }
        if (pi >= n) {
            err_too_many();
            goto done;
        }
        p = pi++;
        if (kinds[p] == PYRC_VAR_KEYWORD || kinds[p] == PYRC_KEYWORD_ONLY) {
            err_too_many();
            goto done;
        }
        if (kinds[p] == PYRC_VAR_POSITIONAL) {
            varpos_start = ai;
            ai = na;
            kwstart = pi;
            break;
        }
        if (nkw && kinds[p] != PYRC_POSITIONAL_ONLY) {
            name = PyTuple_GET_ITEM(self->names, p);
            found = PyDict_GetItemWithError(kwargs, name);
            if (found != NULL) {
                err_multiple(self, p);
                goto done;
            }
            if (PyErr_Occurred()) {
                goto done;
            }
        }
        vals[p] = PyTuple_GET_ITEM(args, ai);
        Py_INCREF(vals[p]);
        ai++;
    }

    /* Phase 2: the remaining parameters take keyword arguments. */
    for (p = kwstart; p < n; p++) {
        PyObject *found;
        if (kinds[p] == PYRC_VAR_KEYWORD) {
            kwparam = p;
            continue;
        }
        if (kinds[p] == PYRC_VAR_POSITIONAL) {
            continue;
        }
        found = nkw ? PyDict_GetItemWithError(kwargs,
                                              PyTuple_GET_ITEM(self->names, p))
                    : NULL;
        if (found == NULL) {
            if (PyErr_Occurred()) {
                goto done;
            }
            if (PyTuple_GET_ITEM(self->defaults, p) == empty) {
                err_missing(self, p);
                goto done;
            }
        }
        else {
#if !INSPECT_POSONLY_TO_KWARGS
            if (kinds[p] == PYRC_POSITIONAL_ONLY) {
                err_posonly(self, p);
                goto done;
            }
#endif
            Py_INCREF(found);
            vals[p] = found;
            marks[p] |= MARK_FROM_KW;
            used++;
        }
    }

    /* Keywords no parameter took: **kwargs, or an error. */
    if (used < nkw) {
        if (kwparam < 0) {
#if INSPECT_POSONLY_TO_KWARGS
            if (posonly_in_kw) {
                err_posonly_in_kwargs(self, marks);
                goto done;
            }
#endif
        }
        if (kwparam < 0 || used > 0) {
            Py_ssize_t pos = 0;
            PyObject *key, *value;
            extra_kw = PyDict_Copy(kwargs);
            if (extra_kw == NULL) {
                goto done;
            }
            for (p = 0; p < n; p++) {
                if ((marks[p] & MARK_FROM_KW) && PyDict_DelItem(
                        extra_kw, PyTuple_GET_ITEM(self->names, p)) < 0) {
                    goto done;
                }
            }
            if (kwparam < 0) {
                if (PyDict_Next(extra_kw, &pos, &key, &value)) {
                    PyErr_Format(PyExc_TypeError,
                                 "got an unexpected keyword argument %R", key);
                }
                else {
                    PyErr_SetString(PyExc_RuntimeError,
                                    "kwargs changed during binding");
                }
                goto done;
            }
        }
        else {
            /* Nothing was taken by name: **kwargs is the whole dict. */
            Py_INCREF(kwargs);
            extra_kw = kwargs;
        }
    }
    (void)posonly_in_kw;

    /* apply_defaults: an unbound parameter takes its default, *args (),
     * **kwargs {}; one without a default (3.13+: a positional-only
     * parameter passed as a keyword) is left out of the key. */
    count = 0;
    for (p = self->drop_first; p < n; p++) {
        if (vals[p] != NULL || p == self->var_pos || p == self->var_kw
            || PyTuple_GET_ITEM(self->defaults, p) != empty) {
            count++;
        }
    }
    if (pyrc_encode_array_header(enc, count) < 0) {
        goto done;
    }
    for (p = self->drop_first; p < n; p++) {
        int r;
        if (p == self->var_pos) {
            r = pyrc_encode_tuple_items(
                enc, &PyTuple_GET_ITEM(args, 0) + varpos_start,
                na - varpos_start, 1);
            if (r < 0) {
                encode_failed(self, p, enc);
                goto done;
            }
        }
        else if (p == self->var_kw) {
            if (extra_kw == NULL) {
                if (pyrc_encode_map_header(enc, 0) < 0) {   /* {} */
                    goto done;
                }
            }
            else if (encode_param(self, p, extra_kw, enc) < 0) {
                goto done;
            }
        }
        else if (vals[p] != NULL) {
            if (encode_param(self, p, vals[p], enc) < 0) {
                goto done;
            }
        }
        else if (PyTuple_GET_ITEM(self->defaults, p) != empty) {
            if (encode_param(self, p, PyTuple_GET_ITEM(self->defaults, p),
                             enc) < 0) {
                goto done;
            }
        }
    }
    ret = 0;
done:
    for (p = 0; p < n; p++) {
        Py_XDECREF(vals[p]);
    }
    Py_XDECREF(extra_kw);
    if (vals != stack_vals) {
        PyMem_Free(vals);
        PyMem_Free(marks);
    }
    return ret;
}

/* ------------------------------------------------------------------------
 * The call: builder(args, kwargs) -> bytes
 * ------------------------------------------------------------------------ */

static PyObject *
make_key(KeyBuilder *self, PyObject *args, PyObject *kwargs)
{
    static const char hexdigits[] = "0123456789abcdef";
    pyrc_encoder enc;
    pyrc_blake2b_ctx ctx;
    unsigned char digest[PYRC_KEY_DIGEST_SIZE];
    PyObject *result = NULL;
    Py_ssize_t plen;
    char *out;
    int i;

    if (!PyTuple_Check(args)) {
        PyErr_Format(PyExc_TypeError,
                     "KeyBuilder: args must be a tuple, not %.200s",
                     Py_TYPE(args)->tp_name);
        return NULL;
    }
    if (!PyDict_Check(kwargs)) {
        PyErr_Format(PyExc_TypeError,
                     "KeyBuilder: kwargs must be a dict, not %.200s",
                     Py_TYPE(kwargs)->tp_name);
        return NULL;
    }
    /* tp_clear (the garbage collector breaking a cycle through the
     * defaults, or through a str subclass among the names) leaves these
     * NULL; the binders and the prefix copy below read all three. */
    if (self->prefix == NULL || self->names == NULL || self->defaults == NULL) {
        PyErr_SetString(PyExc_RuntimeError,
                        "KeyBuilder was cleared by the garbage collector");
        return NULL;
    }
    pyrc_encoder_init(&enc, &self->st->codec, self->st->SerializationError,
                      1, 1);
    if (self->bind(self, args, kwargs, &enc) < 0) {
        goto done;
    }
    pyrc_blake2b_init(&ctx, PYRC_KEY_DIGEST_SIZE);
    pyrc_blake2b_update(&ctx, enc.buf.data, (size_t)enc.buf.len);
    pyrc_blake2b_final(&ctx, digest);

    plen = PyBytes_GET_SIZE(self->prefix);
    result = PyBytes_FromStringAndSize(NULL, plen + 2 * PYRC_KEY_DIGEST_SIZE);
    if (result == NULL) {
        goto done;
    }
    out = PyBytes_AS_STRING(result);
    memcpy(out, PyBytes_AS_STRING(self->prefix), (size_t)plen);
    out += plen;
    for (i = 0; i < PYRC_KEY_DIGEST_SIZE; i++) {
        out[2 * i] = hexdigits[digest[i] >> 4];
        out[2 * i + 1] = hexdigits[digest[i] & 0x0F];
    }
done:
    pyrc_encoder_free(&enc);
    return result;
}

static PyObject *
keybuilder_vectorcall(PyObject *callable, PyObject *const *args,
                      size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0) {
        PyErr_SetString(PyExc_TypeError,
                        "KeyBuilder takes no keyword arguments: call it as "
                        "builder(args, kwargs)");
        return NULL;
    }
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError,
                     "KeyBuilder takes exactly 2 arguments (args, kwargs) "
                     "(%zd given)", nargs);
        return NULL;
    }
    return make_key((KeyBuilder *)callable, args[0], args[1]);
}

/* ------------------------------------------------------------------------
 * Construction
 * ------------------------------------------------------------------------ */

PyDoc_STRVAR(keybuilder_doc,
"KeyBuilder(prefix, names, kinds, defaults, drop_first)\n"
"--\n"
"\n"
"Build cache keys for calls of one function.\n"
"\n"
"prefix is bytes; names, kinds and defaults describe the parameters in\n"
"order, one entry each: names are str, kinds are inspect.Parameter kind\n"
"values (0 POSITIONAL_ONLY, 1 POSITIONAL_OR_KEYWORD, 2 VAR_POSITIONAL,\n"
"3 KEYWORD_ONLY, 4 VAR_KEYWORD), defaults hold inspect.Parameter.empty where\n"
"a parameter has none.  With drop_first true the first parameter (self,\n"
"cls) is bound but left out of the key.\n"
"\n"
"builder(args, kwargs) -> bytes binds the tuple args and the dict kwargs as\n"
"inspect.Signature.bind() and apply_defaults() would, encodes the bound\n"
"values in parameter order as one list with dumps(canonical=True) (*args as\n"
"a tuple, **kwargs as a dict) and returns prefix + the lowercase hex of the\n"
"16-byte BLAKE2b digest of that encoding (RFC 7693; equal to\n"
"hashlib.blake2b(data, digest_size=16).hexdigest()).  Equal arguments give\n"
"equal keys in every process and with either implementation.\n"
"\n"
"Raises TypeError, with inspect's message, when the call does not bind\n"
"(missing, unexpected, duplicate or too many arguments; the binding and\n"
"the messages follow the inspect module of the Python version the core is\n"
"built for, which changed in 3.12 and 3.13), and TypeError\n"
"naming the parameter when an argument (or something inside it) has a\n"
"type the codec does not support and no __cache_key__() method; the\n"
"method's return value is encoded in its place when it has one.  Raises\n"
"SerializationError when the arguments nest deeper than 512 levels.\n"
"The constructor raises TypeError or ValueError for an invalid signature.");

static int
check_signature(KeyBuilder *self)
{
    Py_ssize_t n = self->nparams, p, q;
    int last = 0;
    PyObject *empty = self->st->keys.empty;

    if (PyTuple_GET_SIZE(self->kinds_obj) != n
        || PyTuple_GET_SIZE(self->defaults) != n) {
        PyErr_SetString(PyExc_ValueError,
                        "KeyBuilder: names, kinds and defaults must have the "
                        "same length");
        return -1;
    }
    if (self->drop_first && n == 0) {
        PyErr_SetString(PyExc_ValueError,
                        "KeyBuilder: drop_first needs at least one parameter");
        return -1;
    }
    self->kinds = PyMem_Malloc(n > 0 ? (size_t)n : 1);
    if (self->kinds == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (p = 0; p < n; p++) {
        PyObject *name = PyTuple_GET_ITEM(self->names, p);
        PyObject *k = PyTuple_GET_ITEM(self->kinds_obj, p);
        long kind;
        if (!PyUnicode_Check(name)) {
            PyErr_Format(PyExc_TypeError,
                         "KeyBuilder: parameter names must be str, not %.200s",
                         Py_TYPE(name)->tp_name);
            return -1;
        }
        if (!PyLong_Check(k)) {
            PyErr_Format(PyExc_TypeError,
                         "KeyBuilder: parameter kinds must be int, not %.200s",
                         Py_TYPE(k)->tp_name);
            return -1;
        }
        kind = PyLong_AsLong(k);
        if (kind == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (kind < PYRC_POSITIONAL_ONLY || kind > PYRC_VAR_KEYWORD
            || kind < last
            || (kind == last && (kind == PYRC_VAR_POSITIONAL
                                 || kind == PYRC_VAR_KEYWORD) && p > 0)) {
            PyErr_Format(PyExc_ValueError,
                         "KeyBuilder: invalid kind %R for parameter %R: kinds "
                         "are 0..4 in inspect's order, with at most one *args "
                         "and one **kwargs", k, name);
            return -1;
        }
        if ((kind == PYRC_VAR_POSITIONAL || kind == PYRC_VAR_KEYWORD)
            && PyTuple_GET_ITEM(self->defaults, p) != empty) {
            PyErr_Format(PyExc_ValueError,
                         "KeyBuilder: parameter %R of kind %ld cannot have a "
                         "default", name, kind);
            return -1;
        }
        for (q = 0; q < p; q++) {
            int eq = PyUnicode_Compare(PyTuple_GET_ITEM(self->names, q), name);
            if (eq == -1 && PyErr_Occurred()) {
                return -1;
            }
            if (eq == 0) {
                PyErr_Format(PyExc_ValueError,
                             "KeyBuilder: duplicate parameter name %R", name);
                return -1;
            }
        }
        self->kinds[p] = (unsigned char)kind;
        if (kind == PYRC_VAR_POSITIONAL) {
            self->var_pos = p;
        }
        else if (kind == PYRC_VAR_KEYWORD) {
            self->var_kw = p;
        }
        last = (int)kind;
    }
    self->bind = last <= PYRC_POSITIONAL_OR_KEYWORD ? bind_positional
                                                    : bind_general;
    return 0;
}

static PyObject *
keybuilder_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"prefix", "names", "kinds", "defaults",
                             "drop_first", NULL};
    PyObject *prefix, *names, *kinds, *defaults;
    int drop_first;
    KeyBuilder *self;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!O!O!p:KeyBuilder",
                                     kwlist, &PyBytes_Type, &prefix,
                                     &PyTuple_Type, &names, &PyTuple_Type,
                                     &kinds, &PyTuple_Type, &defaults,
                                     &drop_first)) {
        return NULL;
    }
    self = (KeyBuilder *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = keybuilder_vectorcall;
    self->st = pyrc_state_from_type(type);
    if (self->st == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    Py_INCREF(prefix);
    self->prefix = prefix;
    Py_INCREF(names);
    self->names = names;
    Py_INCREF(kinds);
    self->kinds_obj = kinds;
    Py_INCREF(defaults);
    self->defaults = defaults;
    self->drop_first = drop_first;
    self->nparams = PyTuple_GET_SIZE(names);
    self->var_pos = -1;
    self->var_kw = -1;
    self->kinds = NULL;
    if (check_signature(self) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static int
keybuilder_traverse(KeyBuilder *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->prefix);
    Py_VISIT(self->names);
    Py_VISIT(self->kinds_obj);
    Py_VISIT(self->defaults);
    return 0;
}

static int
keybuilder_clear(KeyBuilder *self)
{
    Py_CLEAR(self->prefix);
    Py_CLEAR(self->names);
    Py_CLEAR(self->kinds_obj);
    Py_CLEAR(self->defaults);
    return 0;
}

static void
keybuilder_dealloc(KeyBuilder *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    keybuilder_clear(self);
    PyMem_Free(self->kinds);
    self->kinds = NULL;
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *
keybuilder_get_drop_first(KeyBuilder *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(self->drop_first);
}

static PyMemberDef keybuilder_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(KeyBuilder, vectorcall),
     READONLY, NULL},
    {"prefix", T_OBJECT, offsetof(KeyBuilder, prefix), READONLY,
     "The bytes every key starts with."},
    {"names", T_OBJECT, offsetof(KeyBuilder, names), READONLY,
     "Parameter names, in order."},
    {"kinds", T_OBJECT, offsetof(KeyBuilder, kinds_obj), READONLY,
     "Parameter kinds (inspect.Parameter kind values), in order."},
    {"defaults", T_OBJECT, offsetof(KeyBuilder, defaults), READONLY,
     "Parameter defaults, inspect.Parameter.empty where there is none."},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef keybuilder_getset[] = {
    {"drop_first", (getter)keybuilder_get_drop_first, NULL,
     "Whether the first parameter is left out of the key.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot keybuilder_slots[] = {
    {Py_tp_doc, (void *)keybuilder_doc},
    {Py_tp_new, keybuilder_new},
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_traverse, keybuilder_traverse},
    {Py_tp_clear, keybuilder_clear},
    {Py_tp_dealloc, keybuilder_dealloc},
    {Py_tp_members, keybuilder_members},
    {Py_tp_getset, keybuilder_getset},
    {0, NULL},
};

static PyType_Spec keybuilder_spec = {
    .name = "pyredcache._core.KeyBuilder",
    .basicsize = sizeof(KeyBuilder),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC
             | Py_TPFLAGS_HAVE_VECTORCALL
#ifdef Py_TPFLAGS_IMMUTABLETYPE
             | Py_TPFLAGS_IMMUTABLETYPE
#endif
    ,
    .slots = keybuilder_slots,
};

int
pyrc_keys_exec(PyObject *module, pyrc_state *st)
{
    PyObject *inspect, *parameter;

    inspect = PyImport_ImportModule("inspect");
    if (inspect == NULL) {
        return -1;
    }
    parameter = PyObject_GetAttrString(inspect, "Parameter");
    Py_DECREF(inspect);
    if (parameter == NULL) {
        return -1;
    }
    st->keys.empty = PyObject_GetAttrString(parameter, "empty");
    Py_DECREF(parameter);
    if (st->keys.empty == NULL) {
        return -1;
    }
    st->keys.KeyBuilderType = (PyTypeObject *)PyType_FromModuleAndSpec(
        module, &keybuilder_spec, NULL);
    if (st->keys.KeyBuilderType == NULL) {
        return -1;
    }
    if (PyModule_AddType(module, st->keys.KeyBuilderType) < 0) {
        return -1;
    }
    return 0;
}

int
pyrc_keys_traverse(pyrc_state *st, visitproc visit, void *arg)
{
    Py_VISIT(st->keys.KeyBuilderType);
    Py_VISIT(st->keys.empty);
    return 0;
}

void
pyrc_keys_clear(pyrc_state *st)
{
    Py_CLEAR(st->keys.KeyBuilderType);
    Py_CLEAR(st->keys.empty);
}
