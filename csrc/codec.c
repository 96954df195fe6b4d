/* The value codec: dumps() and loads() (docs/format.rst).
 *
 * The format is MessagePack plus nine extension types for what MessagePack
 * lacks.  pyredcache/_pure/codec.py is the reference: both give the same
 * bytes, values and exceptions (type and message).
 *
 * Encoding writes into a pyrc_buf (stack storage first, then the heap).  A
 * container's items are borrowed from the container, so each is held with a
 * new reference while it is encoded: __cache_key__() (key mode) and, in
 * principle, a finaliser run by the garbage collector can mutate the
 * container meanwhile.  A container whose size changed while it was encoded
 * is an error, since its header already holds the old count.
 *
 * Decoding trusts nothing: every length is checked against the remaining
 * input before anything is allocated (an array item needs at least one byte,
 * a map entry two), nesting is limited to PYRC_MAX_DEPTH levels so hostile
 * input cannot exhaust the C stack, and every failure is a
 * SerializationError that names the offset of the offending value.
 */
#include "module.h"

#include <datetime.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define DT_CAPI(cs) ((PyDateTime_CAPI *)(cs)->datetime_capi)

/* PyDateTime_DATE_GET_TZINFO and PyDateTime_TIME_GET_TZINFO are 3.10+. */
#define PYRC_DT_TZINFO(o)                                               \
    (((_PyDateTime_BaseTZInfo *)(o))->hastzinfo                         \
         ? ((PyDateTime_DateTime *)(o))->tzinfo : Py_None)
#define PYRC_TIME_TZINFO(o)                                             \
    (((_PyDateTime_BaseTZInfo *)(o))->hastzinfo                         \
         ? ((PyDateTime_Time *)(o))->tzinfo : Py_None)

#define LIMIT32 ((Py_ssize_t)0xFFFFFFFF)

/* ------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------ */

/* type(obj).__name__ as a new str (error messages only). */
static PyObject *
type_name(PyTypeObject *tp)
{
    PyObject *name = PyObject_GetAttrString((PyObject *)tp, "__name__");
    if (name == NULL || !PyUnicode_Check(name)) {
        Py_XDECREF(name);
        PyErr_Clear();
        return PyUnicode_FromString(tp->tp_name);
    }
    return name;
}

/* Replace the current exception by exc_type(message), chaining the old one
 * as __cause__ (like `raise ... from exc`).  Takes a reference to msg
 * (may be NULL, then the old exception is left as it is). */
static void
raise_from(PyObject *exc_type, PyObject *msg)
{
    PyObject *type, *value, *tb, *new_value;

    if (msg == NULL) {
        return;
    }
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL) {
        PyException_SetTraceback(value, tb);
    }
    new_value = PyObject_CallOneArg(exc_type, msg);
    Py_DECREF(msg);
    if (new_value == NULL) {
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
        return;
    }
    if (value != NULL) {
        Py_INCREF(value);
        PyException_SetCause(new_value, value);   /* steals */
        PyException_SetContext(new_value, value); /* steals */
    }
    PyErr_SetObject(exc_type, new_value);
    Py_DECREF(new_value);
    Py_XDECREF(type);
    Py_XDECREF(tb);
}

/* True when the pending exception is one the data caused (anything but
 * MemoryError and non-Exception BaseExceptions such as KeyboardInterrupt),
 * so it may be turned into a SerializationError. */
static int
convertible_error(void)
{
    return PyErr_ExceptionMatches(PyExc_Exception)
        && !PyErr_ExceptionMatches(PyExc_MemoryError);
}

/* ------------------------------------------------------------------------
 * Output buffer
 * ------------------------------------------------------------------------ */

static int
buf_grow(pyrc_buf *b, Py_ssize_t need)
{
    Py_ssize_t newcap = b->cap;
    char *p;

    if (need > PY_SSIZE_T_MAX - b->len) {
        PyErr_NoMemory();
        return -1;
    }
    while (newcap < b->len + need) {
        if (newcap > PY_SSIZE_T_MAX / 2) {
            newcap = b->len + need;
            break;
        }
        newcap *= 2;
    }
    if (b->data == b->small) {
        p = PyMem_Malloc((size_t)newcap);
        if (p != NULL) {
            memcpy(p, b->small, (size_t)b->len);
        }
    }
    else {
        p = PyMem_Realloc(b->data, (size_t)newcap);
    }
    if (p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = p;
    b->cap = newcap;
    return 0;
}

static inline int
buf_reserve(pyrc_buf *b, Py_ssize_t n)
{
    if (b->cap - b->len >= n) {
        return 0;
    }
    return buf_grow(b, n);
}

static inline int
buf_put(pyrc_buf *b, const void *src, Py_ssize_t n)
{
    if (buf_reserve(b, n) < 0) {
        return -1;
    }
    memcpy(b->data + b->len, src, (size_t)n);
    b->len += n;
    return 0;
}

static inline int
buf_put1(pyrc_buf *b, unsigned char c)
{
    if (b->len == b->cap && buf_grow(b, 1) < 0) {
        return -1;
    }
    b->data[b->len++] = (char)c;
    return 0;
}

/* Type byte followed by the low `width` bytes of v, big-endian. */
static inline int
buf_put_be(pyrc_buf *b, unsigned char type, uint64_t v, int width)
{
    unsigned char tmp[9];
    int i;
    tmp[0] = type;
    for (i = 0; i < width; i++) {
        tmp[1 + i] = (unsigned char)(v >> (8 * (width - 1 - i)));
    }
    return buf_put(b, tmp, 1 + width);
}

/* ------------------------------------------------------------------------
 * Encoder
 * ------------------------------------------------------------------------ */

void
pyrc_encoder_init(pyrc_encoder *enc, const pyrc_codec_state *cs,
                  PyObject *SerializationError, int canonical, int keymode)
{
    enc->buf.data = enc->buf.small;
    enc->buf.len = 0;
    enc->buf.cap = (Py_ssize_t)sizeof(enc->buf.small);
    enc->cs = cs;
    enc->SerializationError = SerializationError;
    enc->canonical = canonical;
    enc->keymode = keymode;
    enc->unsupported_type = NULL;
    enc->unsupported_is_tzinfo = 0;
}

void
pyrc_encoder_free(pyrc_encoder *enc)
{
    if (enc->buf.data != enc->buf.small) {
        PyMem_Free(enc->buf.data);
    }
    enc->buf.data = enc->buf.small;
    enc->buf.len = 0;
    enc->buf.cap = (Py_ssize_t)sizeof(enc->buf.small);
    Py_CLEAR(enc->unsupported_type);
}

static int
too_long(pyrc_encoder *enc, const char *what, Py_ssize_t n)
{
    PyErr_Format(enc->SerializationError,
                 "cannot serialize %s: its length %zd exceeds the MessagePack "
                 "limit of %zd", what, n, LIMIT32);
    return -1;
}

static int
too_deep(pyrc_encoder *enc)
{
    PyErr_Format(enc->SerializationError,
                 "cannot serialize: nesting deeper than %d levels",
                 PYRC_MAX_DEPTH);
    return -1;
}

static int
put_uint(pyrc_buf *b, uint64_t u)
{
    if (u < 0x80) {
        return buf_put1(b, (unsigned char)u);
    }
    if (u <= 0xFF) {
        return buf_put_be(b, 0xCC, u, 1);
    }
    if (u <= 0xFFFF) {
        return buf_put_be(b, 0xCD, u, 2);
    }
    if (u <= 0xFFFFFFFFULL) {
        return buf_put_be(b, 0xCE, u, 4);
    }
    return buf_put_be(b, 0xCF, u, 8);
}

static int
put_int(pyrc_buf *b, int64_t v)
{
    if (v >= 0) {
        return put_uint(b, (uint64_t)v);
    }
    if (v >= -32) {
        return buf_put1(b, (unsigned char)(uint8_t)(int8_t)v);
    }
    if (v >= INT8_MIN) {
        return buf_put_be(b, 0xD0, (uint64_t)v, 1);
    }
    if (v >= INT16_MIN) {
        return buf_put_be(b, 0xD1, (uint64_t)v, 2);
    }
    if (v >= INT32_MIN) {
        return buf_put_be(b, 0xD2, (uint64_t)v, 4);
    }
    return buf_put_be(b, 0xD3, (uint64_t)v, 8);
}

/* Header with a length: fix form below fix_limit (0: none), then the 8-bit
 * (c8 != 0), 16-bit and 32-bit forms. */
static int
put_len(pyrc_encoder *enc, Py_ssize_t n, const char *what,
        unsigned char fix_base, Py_ssize_t fix_limit,
        unsigned char c8, unsigned char c16, unsigned char c32)
{
    if (n < fix_limit) {
        return buf_put1(&enc->buf, (unsigned char)(fix_base | n));
    }
    if (c8 && n <= 0xFF) {
        return buf_put_be(&enc->buf, c8, (uint64_t)n, 1);
    }
    if (n <= 0xFFFF) {
        return buf_put_be(&enc->buf, c16, (uint64_t)n, 2);
    }
    if (n <= LIMIT32) {
        return buf_put_be(&enc->buf, c32, (uint64_t)n, 4);
    }
    return too_long(enc, what, n);
}

int
pyrc_encode_array_header(pyrc_encoder *enc, Py_ssize_t n)
{
    return put_len(enc, n, "list", 0x90, 16, 0, 0xDC, 0xDD);
}

int
pyrc_encode_map_header(pyrc_encoder *enc, Py_ssize_t n)
{
    return put_len(enc, n, "dict", 0x80, 16, 0, 0xDE, 0xDF);
}

/* An extension's header holds its payload length, which is known only once
 * the payload is written.  ext_begin reserves 3 bytes (the ext8 header);
 * ext_end writes the smallest header and moves the payload when that header
 * is not 3 bytes long. */
static int
ext_begin(pyrc_encoder *enc, Py_ssize_t *mark)
{
    if (buf_reserve(&enc->buf, 3) < 0) {
        return -1;
    }
    *mark = enc->buf.len;
    enc->buf.len += 3;
    return 0;
}

static int
ext_end(pyrc_encoder *enc, Py_ssize_t mark, int code)
{
    pyrc_buf *b = &enc->buf;
    Py_ssize_t n = b->len - mark - 3;
    unsigned char hdr[6];
    Py_ssize_t h;

    switch (n) {
    case 1: hdr[0] = 0xD4; h = 2; break;
    case 2: hdr[0] = 0xD5; h = 2; break;
    case 4: hdr[0] = 0xD6; h = 2; break;
    case 8: hdr[0] = 0xD7; h = 2; break;
    case 16: hdr[0] = 0xD8; h = 2; break;
    default:
        if (n <= 0xFF) {
            hdr[0] = 0xC7;
            hdr[1] = (unsigned char)n;
            h = 3;
        }
        else if (n <= 0xFFFF) {
            hdr[0] = 0xC8;
            hdr[1] = (unsigned char)(n >> 8);
            hdr[2] = (unsigned char)n;
            h = 4;
        }
        else if (n <= LIMIT32) {
            hdr[0] = 0xC9;
            hdr[1] = (unsigned char)(n >> 24);
            hdr[2] = (unsigned char)(n >> 16);
            hdr[3] = (unsigned char)(n >> 8);
            hdr[4] = (unsigned char)n;
            h = 6;
        }
        else {
            PyErr_Format(enc->SerializationError,
                         "cannot serialize: an extension payload of %zd bytes "
                         "exceeds the MessagePack limit of %zd", n, LIMIT32);
            return -1;
        }
    }
    hdr[h - 1] = (unsigned char)code;
    if (h > 3 && buf_reserve(b, h - 3) < 0) {
        return -1;
    }
    if (h != 3) {
        memmove(b->data + mark + h, b->data + mark + 3, (size_t)n);
        b->len += h - 3;
    }
    memcpy(b->data + mark, hdr, (size_t)h);
    return 0;
}

/* An extension with a payload known in advance. */
static int
put_ext(pyrc_encoder *enc, int code, const void *payload, Py_ssize_t n)
{
    Py_ssize_t mark;
    if (ext_begin(enc, &mark) < 0 || buf_put(&enc->buf, payload, n) < 0) {
        return -1;
    }
    return ext_end(enc, mark, code);
}

static int
put_utf8(pyrc_encoder *enc, PyObject *str, int with_header)
{
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(str, &n);
    if (s == NULL) {
        if (PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) {
            PyObject *type, *value, *tb, *msg = NULL;
            PyErr_Fetch(&type, &value, &tb);
            PyErr_NormalizeException(&type, &value, &tb);
            msg = PyUnicode_FromFormat("cannot serialize str: %S", value);
            PyErr_Restore(type, value, tb);
            raise_from(enc->SerializationError, msg);
        }
        return -1;
    }
    if (with_header) {
        if (n < 32) {
            if (buf_put1(&enc->buf, (unsigned char)(0xA0 | n)) < 0) {
                return -1;
            }
        }
        else if (put_len(enc, n, "str", 0xA0, 32, 0xD9, 0xDA, 0xDB) < 0) {
            return -1;
        }
    }
    return buf_put(&enc->buf, s, n);
}

static int
encode_bigint(pyrc_encoder *enc, PyObject *obj, int negative)
{
    const pyrc_codec_state *cs = enc->cs;
    PyObject *magnitude = NULL, *bits = NULL, *length = NULL;
    PyObject *payload = NULL;
    Py_ssize_t nbits, n;
    int ret = -1;

    /* Minimal two's complement: one sign bit more than ~x or x needs. */
    if (negative) {
        magnitude = PyNumber_Invert(obj);
    }
    else {
        Py_INCREF(obj);
        magnitude = obj;
    }
    if (magnitude == NULL) {
        goto error;
    }
    bits = PyObject_CallMethodNoArgs(magnitude, cs->str_bit_length);
    if (bits == NULL) {
        goto error;
    }
    nbits = PyLong_AsSsize_t(bits);
    if (nbits == -1 && PyErr_Occurred()) {
        goto error;
    }
    n = nbits / 8 + 1;
    length = PyLong_FromSsize_t(n);
    if (length == NULL) {
        goto error;
    }
    {
        PyObject *args[4] = {obj, length, cs->str_big, Py_True};
        payload = PyObject_VectorcallMethod(cs->str_to_bytes, args, 3,
                                            cs->kwnames_signed);
    }
    if (payload == NULL) {
        goto error;
    }
    if (put_ext(enc, PYRC_EXT_BIGINT, PyBytes_AS_STRING(payload),
                PyBytes_GET_SIZE(payload)) < 0) {
        goto error;
    }
    ret = 0;
error:
    Py_CLEAR(magnitude);
    Py_CLEAR(bits);
    Py_CLEAR(length);
    Py_CLEAR(payload);
    return ret;
}

static int
encode_long(pyrc_encoder *enc, PyObject *obj)
{
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (overflow == 0) {
        return put_int(&enc->buf, (int64_t)v);
    }
    if (overflow > 0) {
        unsigned long long u = PyLong_AsUnsignedLongLong(obj);
        if (u == (unsigned long long)-1 && PyErr_Occurred()) {
            if (!PyErr_ExceptionMatches(PyExc_OverflowError)) {
                return -1;
            }
            PyErr_Clear();
        }
        else {
            return put_uint(&enc->buf, (uint64_t)u);
        }
    }
    return encode_bigint(enc, obj, overflow < 0);
}

static int
encode_float(pyrc_encoder *enc, PyObject *obj)
{
    double d = PyFloat_AS_DOUBLE(obj);
    uint64_t bits;
    if (enc->canonical && isnan(d)) {
        bits = 0x7FF8000000000000ULL;
    }
    else {
        memcpy(&bits, &d, sizeof(bits));
    }
    return buf_put_be(&enc->buf, 0xCB, bits, 8);
}

/* Offset of a datetime.timezone in microseconds, as 8 big-endian bytes. */
static int
put_offset(pyrc_encoder *enc, PyObject *delta)
{
    int64_t us;
    if (!PyObject_TypeCheck(delta, DT_CAPI(enc->cs)->DeltaType)) {
        PyErr_SetString(PyExc_TypeError, "timezone offset is not a timedelta");
        return -1;
    }
    us = ((int64_t)PyDateTime_DELTA_GET_DAYS(delta) * 86400
          + PyDateTime_DELTA_GET_SECONDS(delta)) * 1000000
        + PyDateTime_DELTA_GET_MICROSECONDS(delta);
    {
        unsigned char tmp[8];
        int i;
        for (i = 0; i < 8; i++) {
            tmp[i] = (unsigned char)((uint64_t)us >> (56 - 8 * i));
        }
        return buf_put(&enc->buf, tmp, 8);
    }
}

/* The tzinfo block of a datetime or time payload (docs/format.rst). */
static int
encode_tzinfo(pyrc_encoder *enc, PyObject *tz)
{
    const pyrc_codec_state *cs = enc->cs;
    PyObject *initargs = NULL, *key = NULL, *name = NULL;
    int ret = -1;

    if (tz == Py_None) {
        return buf_put1(&enc->buf, 0);
    }
    if ((PyObject *)Py_TYPE(tz) == cs->TimezoneType) {
        initargs = PyObject_CallMethodNoArgs(tz, cs->str_getinitargs);
        if (initargs == NULL) {
            goto error;
        }
        if (!PyTuple_Check(initargs) || PyTuple_GET_SIZE(initargs) < 1
            || PyTuple_GET_SIZE(initargs) > 2) {
            PyErr_SetString(PyExc_TypeError,
                            "timezone.__getinitargs__() returned an "
                            "unexpected value");
            goto error;
        }
        if (buf_put1(&enc->buf, PyTuple_GET_SIZE(initargs) == 1 ? 1 : 2) < 0
            || put_offset(enc, PyTuple_GET_ITEM(initargs, 0)) < 0) {
            goto error;
        }
        if (PyTuple_GET_SIZE(initargs) == 2) {
            if (!PyUnicode_Check(PyTuple_GET_ITEM(initargs, 1))) {
                PyErr_SetString(PyExc_TypeError, "timezone name is not a str");
                goto error;
            }
            if (put_utf8(enc, PyTuple_GET_ITEM(initargs, 1), 0) < 0) {
                goto error;
            }
        }
        ret = 0;
        goto error;
    }
    if ((PyObject *)Py_TYPE(tz) == cs->ZoneInfoType) {
        key = PyObject_GetAttr(tz, cs->str_key);
        if (key == NULL) {
            goto error;
        }
        if (PyUnicode_CheckExact(key)) {
            if (buf_put1(&enc->buf, 3) < 0 || put_utf8(enc, key, 0) < 0) {
                goto error;
            }
            ret = 0;
            goto error;
        }
    }
    if (enc->keymode) {
        Py_INCREF(Py_TYPE(tz));
        Py_XSETREF(enc->unsupported_type, (PyObject *)Py_TYPE(tz));
        enc->unsupported_is_tzinfo = 1;
    }
    name = type_name(Py_TYPE(tz));
    if (name != NULL) {
        PyErr_Format(enc->SerializationError,
                     "cannot serialize tzinfo of type %R: only "
                     "datetime.timezone and zoneinfo.ZoneInfo (made from a "
                     "key) are supported", name);
    }
error:
    Py_CLEAR(initargs);
    Py_CLEAR(key);
    Py_CLEAR(name);
    return ret;
}

static int
encode_datetime(pyrc_encoder *enc, PyObject *obj)
{
    Py_ssize_t mark;
    unsigned char p[11];
    int year = PyDateTime_GET_YEAR(obj);
    int us = PyDateTime_DATE_GET_MICROSECOND(obj);

    p[0] = (unsigned char)(year >> 8);
    p[1] = (unsigned char)year;
    p[2] = (unsigned char)PyDateTime_GET_MONTH(obj);
    p[3] = (unsigned char)PyDateTime_GET_DAY(obj);
    p[4] = (unsigned char)PyDateTime_DATE_GET_HOUR(obj);
    p[5] = (unsigned char)PyDateTime_DATE_GET_MINUTE(obj);
    p[6] = (unsigned char)PyDateTime_DATE_GET_SECOND(obj);
    p[7] = (unsigned char)(us >> 16);
    p[8] = (unsigned char)(us >> 8);
    p[9] = (unsigned char)us;
    p[10] = (unsigned char)PyDateTime_DATE_GET_FOLD(obj);
    if (ext_begin(enc, &mark) < 0 || buf_put(&enc->buf, p, 11) < 0
        || encode_tzinfo(enc, PYRC_DT_TZINFO(obj)) < 0) {
        return -1;
    }
    return ext_end(enc, mark, PYRC_EXT_DATETIME);
}

static int
encode_time(pyrc_encoder *enc, PyObject *obj)
{
    Py_ssize_t mark;
    unsigned char p[7];
    int us = PyDateTime_TIME_GET_MICROSECOND(obj);

    p[0] = (unsigned char)PyDateTime_TIME_GET_HOUR(obj);
    p[1] = (unsigned char)PyDateTime_TIME_GET_MINUTE(obj);
    p[2] = (unsigned char)PyDateTime_TIME_GET_SECOND(obj);
    p[3] = (unsigned char)(us >> 16);
    p[4] = (unsigned char)(us >> 8);
    p[5] = (unsigned char)us;
    p[6] = (unsigned char)PyDateTime_TIME_GET_FOLD(obj);
    if (ext_begin(enc, &mark) < 0 || buf_put(&enc->buf, p, 7) < 0
        || encode_tzinfo(enc, PYRC_TIME_TZINFO(obj)) < 0) {
        return -1;
    }
    return ext_end(enc, mark, PYRC_EXT_TIME);
}

static int
encode_date(pyrc_encoder *enc, PyObject *obj)
{
    unsigned char p[6];
    int year = PyDateTime_GET_YEAR(obj);
    p[0] = 0xD6;
    p[1] = PYRC_EXT_DATE;
    p[2] = (unsigned char)(year >> 8);
    p[3] = (unsigned char)year;
    p[4] = (unsigned char)PyDateTime_GET_MONTH(obj);
    p[5] = (unsigned char)PyDateTime_GET_DAY(obj);
    return buf_put(&enc->buf, p, 6);
}

static int
encode_decimal(pyrc_encoder *enc, PyObject *obj)
{
    Py_ssize_t mark;
    int ret;
    PyObject *s = PyObject_Str(obj);
    if (s == NULL) {
        return -1;
    }
    ret = (ext_begin(enc, &mark) < 0 || put_utf8(enc, s, 0) < 0
           || ext_end(enc, mark, PYRC_EXT_DECIMAL) < 0) ? -1 : 0;
    Py_DECREF(s);
    return ret;
}

static int
encode_uuid(pyrc_encoder *enc, PyObject *obj)
{
    const pyrc_codec_state *cs = enc->cs;
    PyObject *value = NULL, *high = NULL;
    unsigned long long hi, lo;
    unsigned char p[18];
    int i, ret = -1;

    value = PyObject_GetAttr(obj, cs->str_int);
    if (value == NULL) {
        goto error;
    }
    if (!PyLong_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "UUID.int is not an int");
        goto error;
    }
    high = PyNumber_Rshift(value, cs->int_64);
    if (high == NULL) {
        goto error;
    }
    hi = PyLong_AsUnsignedLongLong(high);
    if (hi == (unsigned long long)-1 && PyErr_Occurred()) {
        goto error;
    }
    lo = PyLong_AsUnsignedLongLongMask(value);
    if (lo == (unsigned long long)-1 && PyErr_Occurred()) {
        goto error;
    }
    p[0] = 0xD8;
    p[1] = PYRC_EXT_UUID;
    for (i = 0; i < 8; i++) {
        p[2 + i] = (unsigned char)(hi >> (56 - 8 * i));
        p[10 + i] = (unsigned char)(lo >> (56 - 8 * i));
    }
    ret = buf_put(&enc->buf, p, 18);
error:
    Py_CLEAR(value);
    Py_CLEAR(high);
    return ret;
}

/* Canonical mode: the encoded entries of a map (or items of a set) sit one
 * after the other from `start`; sort them as byte strings.  Encodings are
 * self-delimiting (no encoding is a proper prefix of another), so sorting
 * "key bytes + value bytes" sorts by key bytes first. */
typedef struct {
    const char *p;
    Py_ssize_t n;
} span;

static int
span_cmp(const void *a, const void *b)
{
    const span *x = (const span *)a, *y = (const span *)b;
    Py_ssize_t n = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->p, y->p, (size_t)n);
    if (c != 0) {
        return c;
    }
    return (x->n > y->n) - (x->n < y->n);
}

static int
sort_spans(pyrc_buf *b, Py_ssize_t start, Py_ssize_t *offsets, Py_ssize_t count)
{
    span *spans = NULL;
    char *tmp = NULL;
    Py_ssize_t i, total = b->len - start, pos = 0;

    if (count < 2) {
        return 0;
    }
    spans = PyMem_New(span, (size_t)count);
    tmp = PyMem_Malloc((size_t)total);
    if (spans == NULL || tmp == NULL) {
        PyMem_Free(spans);
        PyMem_Free(tmp);
        PyErr_NoMemory();
        return -1;
    }
    for (i = 0; i < count; i++) {
        Py_ssize_t end = i + 1 < count ? offsets[i + 1] : b->len;
        spans[i].p = b->data + offsets[i];
        spans[i].n = end - offsets[i];
    }
    qsort(spans, (size_t)count, sizeof(span), span_cmp);
    for (i = 0; i < count; i++) {
        memcpy(tmp + pos, spans[i].p, (size_t)spans[i].n);
        pos += spans[i].n;
    }
    memcpy(b->data + start, tmp, (size_t)total);
    PyMem_Free(spans);
    PyMem_Free(tmp);
    return 0;
}

static int
encode_list(pyrc_encoder *enc, PyObject *obj, int depth)
{
    Py_ssize_t i, n = PyList_GET_SIZE(obj);

    if (depth >= PYRC_MAX_DEPTH) {
        return too_deep(enc);
    }
    if (pyrc_encode_array_header(enc, n) < 0) {
        return -1;
    }
    for (i = 0; i < n && i < PyList_GET_SIZE(obj); i++) {
        PyObject *item = PyList_GET_ITEM(obj, i);
        int r;
        Py_INCREF(item);
        r = pyrc_encode(enc, item, depth + 1);
        Py_DECREF(item);
        if (r < 0) {
            return -1;
        }
    }
    if (PyList_GET_SIZE(obj) != n) {
        PyErr_SetString(enc->SerializationError,
                        "list changed size during serialization");
        return -1;
    }
    return 0;
}

static int
encode_dict(pyrc_encoder *enc, PyObject *obj, int depth)
{
    Py_ssize_t n = PyDict_GET_SIZE(obj), pos = 0, count = 0, start;
    Py_ssize_t *offsets = NULL;
    PyObject *key, *value;
    int ret = -1;

    if (depth >= PYRC_MAX_DEPTH) {
        return too_deep(enc);
    }
    if (pyrc_encode_map_header(enc, n) < 0) {
        return -1;
    }
    if (enc->canonical && n > 1) {
        offsets = PyMem_New(Py_ssize_t, (size_t)n);
        if (offsets == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    }
    start = enc->buf.len;
    while (PyDict_Next(obj, &pos, &key, &value)) {
        int r;
        if (count >= n) {
            break;
        }
        if (offsets != NULL) {
            offsets[count] = enc->buf.len;
        }
        Py_INCREF(key);
        Py_INCREF(value);
        r = pyrc_encode(enc, key, depth + 1);
        if (r == 0) {
            r = pyrc_encode(enc, value, depth + 1);
        }
        Py_DECREF(key);
        Py_DECREF(value);
        if (r < 0) {
            goto error;
        }
        count++;
        if (PyDict_GET_SIZE(obj) != n) {
            PyErr_SetString(PyExc_RuntimeError,
                            "dictionary changed size during iteration");
            goto error;
        }
    }
    if (count != n) {
        PyErr_SetString(PyExc_RuntimeError,
                        "dictionary keys changed during iteration");
        goto error;
    }
    if (offsets != NULL && sort_spans(&enc->buf, start, offsets, count) < 0) {
        goto error;
    }
    ret = 0;
error:
    PyMem_Free(offsets);
    return ret;
}

int
pyrc_encode_tuple_items(pyrc_encoder *enc, PyObject *const *items,
                        Py_ssize_t n, int depth)
{
    Py_ssize_t i, mark;

    if (depth >= PYRC_MAX_DEPTH) {
        return too_deep(enc);
    }
    if (ext_begin(enc, &mark) < 0 || pyrc_encode_array_header(enc, n) < 0) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (pyrc_encode(enc, items[i], depth + 1) < 0) {
            return -1;
        }
    }
    return ext_end(enc, mark, PYRC_EXT_TUPLE);
}

static int
encode_set(pyrc_encoder *enc, PyObject *obj, int depth, int code)
{
    Py_ssize_t n = PySet_GET_SIZE(obj), count = 0, mark, start;
    Py_ssize_t *offsets = NULL;
    PyObject *it = NULL, *item;
    int ret = -1;

    if (depth >= PYRC_MAX_DEPTH) {
        return too_deep(enc);
    }
    if (ext_begin(enc, &mark) < 0 || pyrc_encode_array_header(enc, n) < 0) {
        return -1;
    }
    if (enc->canonical && n > 1) {
        offsets = PyMem_New(Py_ssize_t, (size_t)n);
        if (offsets == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    }
    it = PyObject_GetIter(obj);
    if (it == NULL) {
        goto error;
    }
    start = enc->buf.len;
    while ((item = PyIter_Next(it)) != NULL) {
        int r;
        if (count >= n) {
            Py_DECREF(item);
            count++;
            break;
        }
        if (offsets != NULL) {
            offsets[count] = enc->buf.len;
        }
        r = pyrc_encode(enc, item, depth + 1);
        Py_DECREF(item);
        if (r < 0) {
            goto error;
        }
        count++;
    }
    if (PyErr_Occurred()) {
        goto error;
    }
    if (count != n) {
        PyErr_SetString(PyExc_RuntimeError, "Set changed size during iteration");
        goto error;
    }
    if (offsets != NULL && sort_spans(&enc->buf, start, offsets, count) < 0) {
        goto error;
    }
    ret = ext_end(enc, mark, code);
error:
    Py_CLEAR(it);
    PyMem_Free(offsets);
    return ret;
}

/* Key mode: encode obj.__cache_key__() in place of obj.  The method is
 * looked up on the type, as Python looks up special methods, and bound to
 * obj when it is a descriptor.  Returns 1 when there is no such method. */
static int
encode_cache_key(pyrc_encoder *enc, PyObject *obj, int depth)
{
    PyObject *descr, *bound = NULL, *result = NULL;
    descrgetfunc get;
    int ret = -1;

    descr = _PyType_Lookup(Py_TYPE(obj), enc->cs->str_cache_key); /* borrowed */
    if (descr == NULL) {
        return PyErr_Occurred() ? -1 : 1;
    }
    Py_INCREF(descr);
    get = Py_TYPE(descr)->tp_descr_get;
    if (get != NULL) {
        bound = get(descr, obj, (PyObject *)Py_TYPE(obj));
        Py_DECREF(descr);
    }
    else {
        bound = descr;
    }
    if (bound == NULL) {
        goto error;
    }
    if (depth >= PYRC_MAX_DEPTH) {
        too_deep(enc);
        goto error;
    }
    result = PyObject_CallNoArgs(bound);
    if (result == NULL) {
        goto error;
    }
    ret = pyrc_encode(enc, result, depth + 1);
error:
    Py_CLEAR(bound);
    Py_CLEAR(result);
    return ret;
}

static int
encode_unsupported(pyrc_encoder *enc, PyObject *obj, int depth)
{
    PyObject *name;
    if (enc->keymode) {
        int r = encode_cache_key(enc, obj, depth);
        if (r <= 0) {
            return r;
        }
        Py_INCREF(Py_TYPE(obj));
        Py_XSETREF(enc->unsupported_type, (PyObject *)Py_TYPE(obj));
        enc->unsupported_is_tzinfo = 0;
    }
    name = type_name(Py_TYPE(obj));
    if (name != NULL) {
        PyErr_Format(enc->SerializationError,
                     "cannot serialize object of type %R", name);
        Py_DECREF(name);
    }
    return -1;
}

int
pyrc_encode(pyrc_encoder *enc, PyObject *obj, int depth)
{
    PyTypeObject *tp = Py_TYPE(obj);
    const pyrc_codec_state *cs;

    if (tp == &PyUnicode_Type) {
        return put_utf8(enc, obj, 1);
    }
    if (tp == &PyLong_Type) {
        return encode_long(enc, obj);
    }
    if (obj == Py_None) {
        return buf_put1(&enc->buf, 0xC0);
    }
    if (obj == Py_True) {
        return buf_put1(&enc->buf, 0xC3);
    }
    if (obj == Py_False) {
        return buf_put1(&enc->buf, 0xC2);
    }
    if (tp == &PyFloat_Type) {
        return encode_float(enc, obj);
    }
    if (tp == &PyBytes_Type) {
        Py_ssize_t n = PyBytes_GET_SIZE(obj);
        if (put_len(enc, n, "bytes", 0, 0, 0xC4, 0xC5, 0xC6) < 0) {
            return -1;
        }
        return buf_put(&enc->buf, PyBytes_AS_STRING(obj), n);
    }
    if (tp == &PyList_Type) {
        return encode_list(enc, obj, depth);
    }
    if (tp == &PyDict_Type) {
        return encode_dict(enc, obj, depth);
    }
    if (tp == &PyTuple_Type) {
        return pyrc_encode_tuple_items(enc, &PyTuple_GET_ITEM(obj, 0),
                                       PyTuple_GET_SIZE(obj), depth);
    }
    if (tp == &PySet_Type) {
        return encode_set(enc, obj, depth, PYRC_EXT_SET);
    }
    if (tp == &PyFrozenSet_Type) {
        return encode_set(enc, obj, depth, PYRC_EXT_FROZENSET);
    }
    cs = enc->cs;
    if (tp == DT_CAPI(cs)->DateTimeType) {
        return encode_datetime(enc, obj);
    }
    if (tp == DT_CAPI(cs)->DateType) {
        return encode_date(enc, obj);
    }
    if (tp == DT_CAPI(cs)->TimeType) {
        return encode_time(enc, obj);
    }
    if ((PyObject *)tp == cs->DecimalType) {
        return encode_decimal(enc, obj);
    }
    if ((PyObject *)tp == cs->UUIDType) {
        return encode_uuid(enc, obj);
    }
    return encode_unsupported(enc, obj, depth);
}

/* ------------------------------------------------------------------------
 * Decoder
 * ------------------------------------------------------------------------ */

typedef const unsigned char *uptr;

/* Map keys repeat: every record of a list, and every cached value of the
 * same function, has the same keys.  Short ASCII str keys are remembered
 * in a small direct-mapped table in the module state (cs->key_cache,
 * PYRC_KEY_CACHE slots), shared by all loads() calls, so a repeated key
 * costs a hash of its bytes, a compare and an INCREF instead of a decode,
 * an allocation and a str hash computation (the cached str keeps its
 * hash).  Strings are immutable, so sharing the object changes no value.
 * Values do not go through the table: unique ones would only evict the
 * keys.  A slot is read and replaced with no Python code run in between
 * (a str has no finalizer), so a reentrant loads() cannot see it torn. */
typedef struct {
    uptr base;                  /* start of the input, for offsets */
    const pyrc_codec_state *cs;
    PyObject *SerializationError;
    PyObject **keys;            /* the module state's key_cache */
} decoder;

static PyObject *decode_value(decoder *d, uptr *pp, uptr end, int depth);

/* SerializationError("<message> at offset N"), N the offset of `at`. */
static PyObject *
dec_error(decoder *d, uptr at, const char *fmt, ...)
{
    PyObject *msg;
    va_list va;
    va_start(va, fmt);
    msg = PyUnicode_FromFormatV(fmt, va);
    va_end(va);
    if (msg != NULL) {
        PyErr_Format(d->SerializationError, "%U at offset %zd", msg,
                     (Py_ssize_t)(at - d->base));
        Py_DECREF(msg);
    }
    return NULL;
}

static PyObject *
truncated(decoder *d, uptr at)
{
    return dec_error(d, at, "truncated data");
}

static PyObject *
too_deep_at(decoder *d, uptr at)
{
    return dec_error(d, at, "nesting deeper than %d levels", PYRC_MAX_DEPTH);
}

/* "invalid <what> payload at offset N: <detail>" */
static PyObject *
bad_payload(decoder *d, uptr at, const char *what, const char *detail)
{
    PyErr_Format(d->SerializationError, "invalid %s payload at offset %zd: %s",
                 what, (Py_ssize_t)(at - d->base), detail);
    return NULL;
}

/* Turn the pending exception (raised by a constructor) into
 * "invalid <what> payload at offset N: <str(exc)>", chained. */
static PyObject *
bad_payload_from(decoder *d, uptr at, const char *what)
{
    PyObject *type, *value, *tb, *msg;
    if (!convertible_error()) {
        return NULL;
    }
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    msg = PyUnicode_FromFormat("invalid %s payload at offset %zd: %S", what,
                               (Py_ssize_t)(at - d->base), value);
    PyErr_Restore(type, value, tb);
    raise_from(d->SerializationError, msg);
    return NULL;
}

static PyObject *
unhashable(decoder *d, uptr at, const char *what, PyObject *obj)
{
    PyObject *name, *msg;
    if (!PyErr_ExceptionMatches(PyExc_TypeError)) {
        return NULL;
    }
    name = type_name(Py_TYPE(obj));
    if (name == NULL) {
        return NULL;
    }
    msg = PyUnicode_FromFormat("unhashable %s of type %R at offset %zd", what,
                               name, (Py_ssize_t)(at - d->base));
    Py_DECREF(name);
    raise_from(d->SerializationError, msg);
    return NULL;
}

static inline uint64_t
load_be(uptr p, int width)
{
    uint64_t v = 0;
    int i;
    for (i = 0; i < width; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* A declared length or count of `width` bytes at p, checked against the
 * `room` bytes that remain before it is cast (a uint32 does not fit a
 * 32-bit Py_ssize_t).  -1 when it exceeds room. */
static inline Py_ssize_t
load_len(uptr p, int width, Py_ssize_t room)
{
    uint64_t v = load_be(p, width);
    return v > (uint64_t)room ? -1 : (Py_ssize_t)v;
}

static PyObject *
decode_str(decoder *d, uptr start, uptr p, Py_ssize_t n)
{
    PyObject *s = PyUnicode_DecodeUTF8((const char *)p, n, "strict");
    if (s == NULL && convertible_error()) {
        PyObject *type, *value, *tb, *msg;
        PyErr_Fetch(&type, &value, &tb);
        PyErr_NormalizeException(&type, &value, &tb);
        msg = PyUnicode_FromFormat("invalid str at offset %zd: %S",
                                   (Py_ssize_t)(start - d->base), value);
        PyErr_Restore(type, value, tb);
        raise_from(d->SerializationError, msg);
    }
    return s;
}

/* A fixstr map key (under 32 bytes) at p, through the decoder's key
 * cache. */
static PyObject *
decode_fixstr_key(decoder *d, uptr start, uptr p, Py_ssize_t n)
{
    uint32_t h = 2166136261u;   /* FNV-1a */
    for (Py_ssize_t j = 0; j < n; j++) {
        h = (h ^ p[j]) * 16777619u;
    }
    h ^= h >> 15;
    PyObject **slot = &d->keys[h & (PYRC_KEY_CACHE - 1)];
    if (*slot != NULL && PyUnicode_GET_LENGTH(*slot) == n) {
        const unsigned char *c = PyUnicode_DATA(*slot);
        Py_ssize_t j = 0;
        while (j < n && c[j] == p[j]) {
            j++;
        }
        if (j == n) {
            return Py_NewRef(*slot);
        }
    }
    PyObject *s = decode_str(d, start, p, n);
    if (s != NULL && PyUnicode_IS_COMPACT_ASCII(s)) {
        Py_XSETREF(*slot, Py_NewRef(s));
    }
    return s;
}

static PyObject *
decode_array(decoder *d, uptr start, uptr *pp, uptr end, Py_ssize_t n,
             int depth)
{
    PyObject *list;
    Py_ssize_t i;

    if (depth >= PYRC_MAX_DEPTH) {
        return too_deep_at(d, start);
    }
    if (n < 0 || n > end - *pp) {   /* every item takes one byte or more */
        return truncated(d, start);
    }
    list = PyList_New(n);
    if (list == NULL) {
        return NULL;
    }
    for (i = 0; i < n; i++) {
        PyObject *item = decode_value(d, pp, end, depth + 1);
        if (item == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, item);
    }
    return list;
}

static PyObject *
decode_map(decoder *d, uptr start, uptr *pp, uptr end, Py_ssize_t n,
           int depth)
{
    PyObject *dict, *key = NULL, *value = NULL;
    Py_ssize_t i;

    if (depth >= PYRC_MAX_DEPTH) {
        return too_deep_at(d, start);
    }
    if (n < 0 || n > (end - *pp) / 2) {    /* an entry takes two bytes or more */
        return truncated(d, start);
    }
    dict = PyDict_New();
    if (dict == NULL) {
        return NULL;
    }
    for (i = 0; i < n; i++) {
        uptr kstart = *pp;
        if ((*kstart & 0xE0) == 0xA0 && (*kstart & 0x1F) < end - kstart) {
            Py_ssize_t klen = *kstart & 0x1F;   /* fixstr key */
            *pp = kstart + 1 + klen;
            key = decode_fixstr_key(d, kstart, kstart + 1, klen);
        }
        else {
            key = decode_value(d, pp, end, depth + 1);
        }
        if (key == NULL) {
            goto error;
        }
        value = decode_value(d, pp, end, depth + 1);
        if (value == NULL) {
            goto error;
        }
        if (PyDict_SetItem(dict, key, value) < 0) {
            unhashable(d, kstart, "map key", key);
            goto error;
        }
        Py_CLEAR(key);
        Py_CLEAR(value);
    }
    return dict;
error:
    Py_CLEAR(key);
    Py_CLEAR(value);
    Py_CLEAR(dict);
    return NULL;
}

static const char *const ext_names[] = {
    "", "tuple", "set", "frozenset", "big int", "datetime", "date", "time",
    "decimal", "uuid",
};

/* Payload of a tuple, set or frozenset: an array filling [p, end). */
static PyObject *
decode_ext_container(decoder *d, uptr start, uptr p, uptr end, int code,
                     int depth)
{
    const char *what = ext_names[code];
    PyObject *result = NULL, *item = NULL;
    Py_ssize_t i, n;

    if (depth >= PYRC_MAX_DEPTH) {
        return too_deep_at(d, start);
    }
    if (p >= end) {
        return bad_payload(d, start, what, "not an array");
    }
    if (*p >= 0x90 && *p <= 0x9F) {
        n = *p & 0x0F;
        p += 1;
    }
    else if (*p == 0xDC || *p == 0xDD) {
        int width = *p == 0xDC ? 2 : 4;
        if (width + 1 > end - p) {
            return bad_payload(d, start, what, "truncated");
        }
        n = load_len(p + 1, width, end - (p + 1 + width));
        p += 1 + width;
    }
    else {
        return bad_payload(d, start, what, "not an array");
    }
    if (n < 0 || n > end - p) {
        return bad_payload(d, start, what, "truncated");
    }
    if (code == PYRC_EXT_TUPLE) {
        result = PyTuple_New(n);
    }
    else if (code == PYRC_EXT_SET) {
        result = PySet_New(NULL);
    }
    else {
        result = PyFrozenSet_New(NULL);
    }
    if (result == NULL) {
        return NULL;
    }
    for (i = 0; i < n; i++) {
        uptr istart = p;
        item = decode_value(d, &p, end, depth + 1);
        if (item == NULL) {
            goto error;
        }
        if (code == PYRC_EXT_TUPLE) {
            PyTuple_SET_ITEM(result, i, item);
            item = NULL;
        }
        else {
            if (PySet_Add(result, item) < 0) {
                unhashable(d, istart, "set item", item);
                goto error;
            }
            Py_CLEAR(item);
        }
    }
    if (p != end) {
        bad_payload(d, start, what, "trailing bytes");
        goto error;
    }
    return result;
error:
    Py_CLEAR(item);
    Py_CLEAR(result);
    return NULL;
}

static PyObject *
decode_bigint(decoder *d, uptr start, uptr p, uptr end)
{
    const pyrc_codec_state *cs = d->cs;
    Py_ssize_t n = end - p;
    PyObject *bytes, *result;

    if (n == 0) {
        return bad_payload(d, start, "big int", "empty");
    }
    if (n > 1 && ((p[0] == 0x00 && p[1] < 0x80)
                  || (p[0] == 0xFF && p[1] >= 0x80))) {
        return bad_payload(d, start, "big int", "not minimal");
    }
    if (n < 9 || (n == 9 && p[0] == 0x00)) {
        return bad_payload(d, start, "big int", "fits a MessagePack int");
    }
    bytes = PyBytes_FromStringAndSize((const char *)p, n);
    if (bytes == NULL) {
        return NULL;
    }
    {
        PyObject *args[4] = {(PyObject *)&PyLong_Type, bytes, cs->str_big,
                             Py_True};
        result = PyObject_VectorcallMethod(cs->str_from_bytes, args, 3,
                                           cs->kwnames_signed);
    }
    Py_DECREF(bytes);
    return result;
}

/* The tzinfo block [p, end) of a datetime or time payload; new reference
 * (None when naive). */
static PyObject *
decode_tzinfo(decoder *d, uptr start, const char *what, uptr p, uptr end)
{
    const pyrc_codec_state *cs = d->cs;
    PyDateTime_CAPI *capi = DT_CAPI(cs);
    Py_ssize_t n = end - p;
    int tag = p[0];     /* callers guarantee n >= 1 */

    if (tag == 0) {
        if (n != 1) {
            return bad_payload(d, start, what, "trailing bytes");
        }
        Py_RETURN_NONE;
    }
    if (tag == 1 || tag == 2) {
        int64_t off, days, rem;
        PyObject *delta, *name = NULL, *tz;
        if (n < 9 || (tag == 1 && n != 9)) {
            return bad_payload(d, start, what, "wrong tzinfo length");
        }
        off = (int64_t)load_be(p + 1, 8);
        /* floor division, as timedelta(microseconds=off) normalises */
        days = off / 86400000000LL;
        rem = off % 86400000000LL;
        if (rem < 0) {
            rem += 86400000000LL;
            days -= 1;
        }
        delta = capi->Delta_FromDelta((int)days, (int)(rem / 1000000),
                                      (int)(rem % 1000000), 1,
                                      capi->DeltaType);
        if (delta == NULL) {
            return bad_payload_from(d, start, what);
        }
        if (tag == 2) {
            name = PyUnicode_DecodeUTF8((const char *)p + 9, n - 9, "strict");
            if (name == NULL) {
                Py_DECREF(delta);
                return bad_payload_from(d, start, what);
            }
        }
        tz = capi->TimeZone_FromTimeZone(delta, name);
        Py_DECREF(delta);
        Py_XDECREF(name);
        if (tz == NULL) {
            return bad_payload_from(d, start, what);
        }
        return tz;
    }
    if (tag == 3) {
        PyObject *key, *tz;
        key = PyUnicode_DecodeUTF8((const char *)p + 1, n - 1, "strict");
        if (key == NULL) {
            return bad_payload_from(d, start, what);
        }
        tz = PyObject_CallOneArg(cs->ZoneInfoType, key);
        Py_DECREF(key);
        if (tz == NULL) {
            return bad_payload_from(d, start, what);
        }
        return tz;
    }
    {
        char detail[40];
        PyOS_snprintf(detail, sizeof(detail), "unknown tzinfo tag %d", tag);
        return bad_payload(d, start, what, detail);
    }
}

static PyObject *
decode_ext(decoder *d, uptr start, int code, uptr p, uptr end, int depth)
{
    const pyrc_codec_state *cs = d->cs;
    PyDateTime_CAPI *capi = DT_CAPI(cs);
    Py_ssize_t n = end - p;
    PyObject *tz, *result, *s;

    switch (code) {
    case PYRC_EXT_TUPLE:
    case PYRC_EXT_SET:
    case PYRC_EXT_FROZENSET:
        return decode_ext_container(d, start, p, end, code, depth);
    case PYRC_EXT_BIGINT:
        return decode_bigint(d, start, p, end);
    case PYRC_EXT_DATETIME:
        if (n < 12) {
            return bad_payload(d, start, "datetime", "too short");
        }
        tz = decode_tzinfo(d, start, "datetime", p + 11, end);
        if (tz == NULL) {
            return NULL;
        }
        result = capi->DateTime_FromDateAndTimeAndFold(
            (int)load_be(p, 2), p[2], p[3], p[4], p[5], p[6],
            (int)load_be(p + 7, 3), tz, p[10], capi->DateTimeType);
        Py_DECREF(tz);
        if (result == NULL) {
            return bad_payload_from(d, start, "datetime");
        }
        return result;
    case PYRC_EXT_DATE:
        if (n != 4) {
            return bad_payload(d, start, "date", "wrong length");
        }
        result = capi->Date_FromDate((int)load_be(p, 2), p[2], p[3],
                                     capi->DateType);
        if (result == NULL) {
            return bad_payload_from(d, start, "date");
        }
        return result;
    case PYRC_EXT_TIME:
        if (n < 8) {
            return bad_payload(d, start, "time", "too short");
        }
        tz = decode_tzinfo(d, start, "time", p + 7, end);
        if (tz == NULL) {
            return NULL;
        }
        result = capi->Time_FromTimeAndFold(p[0], p[1], p[2],
                                            (int)load_be(p + 3, 3), tz, p[6],
                                            capi->TimeType);
        Py_DECREF(tz);
        if (result == NULL) {
            return bad_payload_from(d, start, "time");
        }
        return result;
    case PYRC_EXT_DECIMAL:
        s = PyUnicode_DecodeUTF8((const char *)p, n, "strict");
        if (s == NULL) {
            return bad_payload_from(d, start, "decimal");
        }
        result = PyObject_CallOneArg(cs->DecimalType, s);
        Py_DECREF(s);
        if (result == NULL) {
            return bad_payload_from(d, start, "decimal");
        }
        return result;
    case PYRC_EXT_UUID:
        if (n != 16) {
            return bad_payload(d, start, "uuid", "wrong length");
        }
        s = PyBytes_FromStringAndSize((const char *)p, 16);
        if (s == NULL) {
            return NULL;
        }
        {
            /* uuid.UUID(None, b): the second parameter is `bytes`. */
            PyObject *args[2] = {Py_None, s};
            result = PyObject_Vectorcall(cs->UUIDType, args, 2, NULL);
        }
        Py_DECREF(s);
        return result;
    default:
        return dec_error(d, start, "unknown extension type %d", code);
    }
}

/* Decode the value at *pp (before end) at nesting level depth; advances
 * *pp past it.  Returns a new reference or NULL with an exception set. */
static PyObject *
decode_value(decoder *d, uptr *pp, uptr end, int depth)
{
    uptr start = *pp, p = *pp;
    unsigned char b;
    Py_ssize_t n;
    int width;

    if (p >= end) {
        return truncated(d, p);
    }
    b = *p++;
    if (b <= 0x7F) {
        *pp = p;
        return PyLong_FromLong(b);
    }
    if (b >= 0xE0) {
        *pp = p;
        return PyLong_FromLong((long)b - 0x100);
    }
    if (b <= 0x8F) {
        *pp = p;
        return decode_map(d, start, pp, end, b & 0x0F, depth);
    }
    if (b <= 0x9F) {
        *pp = p;
        return decode_array(d, start, pp, end, b & 0x0F, depth);
    }
    if (b <= 0xBF) {
        n = b & 0x1F;
        if (n > end - p) {
            return truncated(d, start);
        }
        *pp = p + n;
        return decode_str(d, start, p, n);
    }
    switch (b) {
    case 0xC0:
        *pp = p;
        Py_RETURN_NONE;
    case 0xC1:
        return dec_error(d, start, "invalid type byte 0xc1");
    case 0xC2:
        *pp = p;
        Py_RETURN_FALSE;
    case 0xC3:
        *pp = p;
        Py_RETURN_TRUE;
    case 0xC4: case 0xC5: case 0xC6:    /* bin 8/16/32 */
    case 0xD9: case 0xDA: case 0xDB:    /* str 8/16/32 */
        width = 1 << (b <= 0xC6 ? b - 0xC4 : b - 0xD9);
        if (width > end - p) {
            return truncated(d, start);
        }
        n = load_len(p, width, end - (p + width));
        p += width;
        if (n < 0) {
            return truncated(d, start);
        }
        *pp = p + n;
        if (b <= 0xC6) {
            return PyBytes_FromStringAndSize((const char *)p, n);
        }
        return decode_str(d, start, p, n);
    case 0xC7: case 0xC8: case 0xC9:    /* ext 8/16/32 */
    case 0xD4: case 0xD5: case 0xD6: case 0xD7: case 0xD8: {   /* fixext */
        int code;
        PyObject *result;
        if (b <= 0xC9) {
            width = 1 << (b - 0xC7);
            if (width + 1 > end - p) {
                return truncated(d, start);
            }
            n = load_len(p, width, end - (p + width + 1));
            p += width;
        }
        else {
            n = (Py_ssize_t)1 << (b - 0xD4);
            if (1 > end - p) {
                return truncated(d, start);
            }
        }
        code = (int)(int8_t)*p++;
        if (n < 0 || n > end - p) {
            return truncated(d, start);
        }
        result = decode_ext(d, start, code, p, p + n, depth);
        if (result != NULL) {
            *pp = p + n;
        }
        return result;
    }
    case 0xCA: {
        uint32_t bits;
        float f;
        if (4 > end - p) {
            return truncated(d, start);
        }
        bits = (uint32_t)load_be(p, 4);
        memcpy(&f, &bits, 4);
        *pp = p + 4;
        return PyFloat_FromDouble((double)f);
    }
    case 0xCB: {
        uint64_t bits;
        double f;
        if (8 > end - p) {
            return truncated(d, start);
        }
        bits = load_be(p, 8);
        memcpy(&f, &bits, 8);
        *pp = p + 8;
        return PyFloat_FromDouble(f);
    }
    case 0xCC: case 0xCD: case 0xCE: case 0xCF: {
        uint64_t u;
        width = 1 << (b - 0xCC);
        if (width > end - p) {
            return truncated(d, start);
        }
        u = load_be(p, width);
        *pp = p + width;
        return PyLong_FromUnsignedLongLong((unsigned long long)u);
    }
    case 0xD0: case 0xD1: case 0xD2: case 0xD3: {
        uint64_t u;
        int64_t v;
        width = 1 << (b - 0xD0);
        if (width > end - p) {
            return truncated(d, start);
        }
        u = load_be(p, width);
        /* sign-extend from width bytes */
        if (width < 8 && (u >> (8 * width - 1)) & 1) {
            u |= ~(uint64_t)0 << (8 * width);
        }
        memcpy(&v, &u, 8);
        *pp = p + width;
        return PyLong_FromLongLong((long long)v);
    }
    case 0xDC: case 0xDD: case 0xDE: case 0xDF:
        width = (b == 0xDC || b == 0xDE) ? 2 : 4;
        if (width > end - p) {
            return truncated(d, start);
        }
        /* -1 when over the remaining bytes: decode_array/map check the
         * depth first, as the twin does, then report the truncation */
        n = load_len(p, width, end - (p + width));
        *pp = p + width;
        if (b <= 0xDD) {
            return decode_array(d, start, pp, end, n, depth);
        }
        return decode_map(d, start, pp, end, n, depth);
    default:
        /* unreachable: every byte value is handled above */
        return dec_error(d, start, "invalid type byte 0x%x", (int)b);
    }
}

/* ------------------------------------------------------------------------
 * Module functions
 * ------------------------------------------------------------------------ */

PyDoc_STRVAR(dumps_doc,
"dumps($module, obj, /, canonical=False)\n"
"--\n"
"\n"
"Encode obj in pyredcache's value format (MessagePack with extension types;\n"
"see docs/format.rst) and return the bytes.\n"
"\n"
"Supported, as exact types (subclasses are refused): None, bool, int (any\n"
"size), float, str, bytes, list, dict, tuple, set, frozenset,\n"
"datetime.datetime/date/time (naive, or with a datetime.timezone or a\n"
"zoneinfo.ZoneInfo made from a key), decimal.Decimal and uuid.UUID.  Dict\n"
"keys may be any supported hashable value.\n"
"\n"
"With canonical=True equal values give equal bytes in every process: dict\n"
"entries and set items are sorted by their encoded bytes and every float\n"
"NaN is written as the one quiet NaN 0x7ff8000000000000.  Cache keys use\n"
"this.\n"
"\n"
"Raises SerializationError, and returns nothing, when obj or anything in it\n"
"has an unsupported type (the message names it), a tzinfo that is not\n"
"supported, a str with lone surrogates, a length over 2**32-1, or nests\n"
"containers deeper than 512 levels.");

static PyObject *
codec_dumps(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
            PyObject *kwnames)
{
    pyrc_state *st = pyrc_get_state(module);
    PyObject *obj, *canonical_obj = NULL, *result = NULL;
    pyrc_encoder enc;
    int canonical = 0;

    /* dumps(obj, /, canonical=False) */
    static const char *const names[2] = {"obj", "canonical"};
    PyObject *argv[2] = {NULL, NULL};
    if (pyrc_parse_args("dumps", args, nargs, kwnames, names, 2, 1, 1, argv) < 0) {
        return NULL;
    }
    obj = argv[0];
    canonical_obj = argv[1];
    if (canonical_obj != NULL) {
        canonical = PyObject_IsTrue(canonical_obj);
        if (canonical < 0) {
            return NULL;
        }
    }
    pyrc_encoder_init(&enc, &st->codec, st->SerializationError, canonical, 0);
    if (pyrc_encode(&enc, obj, 0) == 0) {
        result = PyBytes_FromStringAndSize(enc.buf.data, enc.buf.len);
    }
    pyrc_encoder_free(&enc);
    return result;
}

PyDoc_STRVAR(loads_doc,
"loads($module, data, /)\n"
"--\n"
"\n"
"Decode bytes written by dumps() (or by any MessagePack producer, for the\n"
"types MessagePack has) and return the value.\n"
"\n"
"data is bytes, bytearray, memoryview or any C-contiguous buffer; the\n"
"whole buffer must be exactly one value.\n"
"\n"
"Raises TypeError when data is not a bytes-like object, and\n"
"SerializationError (never anything else for bad data) when the bytes are\n"
"truncated, followed by trailing bytes, use the reserved type byte 0xc1,\n"
"hold an unknown extension type, invalid UTF-8, an unhashable map key or\n"
"set item, an invalid extension payload, or containers nested deeper than\n"
"512 levels.  No length is trusted before it is checked against the\n"
"remaining input.");

static PyObject *
codec_loads(PyObject *module, PyObject *data)
{
    pyrc_state *st = pyrc_get_state(module);
    Py_buffer view;
    decoder d;
    uptr p, end;
    PyObject *result;

    if (!PyObject_CheckBuffer(data)) {
        PyObject *name = type_name(Py_TYPE(data));
        if (name != NULL) {
            PyErr_Format(PyExc_TypeError,
                         "loads() argument must be a bytes-like object, not %R",
                         name);
            Py_DECREF(name);
        }
        return NULL;
    }
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    d.base = (uptr)view.buf;
    d.cs = &st->codec;
    d.SerializationError = st->SerializationError;
    d.keys = st->codec.key_cache;
    p = d.base;
    end = d.base + view.len;
    result = decode_value(&d, &p, end, 0);
    if (result != NULL && p != end) {
        Py_CLEAR(result);
        dec_error(&d, p, "%zd trailing bytes after the value",
                  (Py_ssize_t)(end - p));
    }
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef codec_methods[] = {
    {"dumps", (PyCFunction)(void (*)(void))codec_dumps,
     METH_FASTCALL | METH_KEYWORDS, dumps_doc},
    {"loads", (PyCFunction)codec_loads, METH_O, loads_doc},
    {NULL, NULL, 0, NULL},
};

/* ------------------------------------------------------------------------
 * Module state
 * ------------------------------------------------------------------------ */

static PyObject *
import_attr(const char *module, const char *name)
{
    PyObject *mod = PyImport_ImportModule(module), *attr;
    if (mod == NULL) {
        return NULL;
    }
    attr = PyObject_GetAttrString(mod, name);
    Py_DECREF(mod);
    return attr;
}

static int
intern(PyObject **slot, const char *s)
{
    *slot = PyUnicode_InternFromString(s);
    return *slot == NULL ? -1 : 0;
}

int
pyrc_codec_exec(PyObject *module, pyrc_state *st)
{
    pyrc_codec_state *cs = &st->codec;
    PyDateTime_CAPI *capi;

    /* datetime.h defines a static PyDateTimeAPI in every file that includes
     * it; the capsule is kept in module state instead. */
    (void)PyDateTimeAPI;
    capi = (PyDateTime_CAPI *)PyCapsule_Import(PyDateTime_CAPSULE_NAME, 0);
    if (capi == NULL) {
        return -1;
    }
    cs->datetime_capi = capi;
    cs->TimezoneType = (PyObject *)Py_TYPE(capi->TimeZone_UTC);
    Py_INCREF(cs->TimezoneType);
    if ((cs->ZoneInfoType = import_attr("zoneinfo", "ZoneInfo")) == NULL
        || (cs->DecimalType = import_attr("decimal", "Decimal")) == NULL
        || (cs->UUIDType = import_attr("uuid", "UUID")) == NULL) {
        return -1;
    }
    if (intern(&cs->str_getinitargs, "__getinitargs__") < 0
        || intern(&cs->str_key, "key") < 0
        || intern(&cs->str_int, "int") < 0
        || intern(&cs->str_bit_length, "bit_length") < 0
        || intern(&cs->str_to_bytes, "to_bytes") < 0
        || intern(&cs->str_from_bytes, "from_bytes") < 0
        || intern(&cs->str_big, "big") < 0
        || intern(&cs->str_cache_key, "__cache_key__") < 0) {
        return -1;
    }
    cs->kwnames_signed = Py_BuildValue("(s)", "signed");
    if (cs->kwnames_signed == NULL) {
        return -1;
    }
    cs->int_64 = PyLong_FromLong(64);
    if (cs->int_64 == NULL) {
        return -1;
    }
    if (PyModule_AddFunctions(module, codec_methods) < 0) {
        return -1;
    }
    if (PyModule_AddIntConstant(module, "MAX_DEPTH", PYRC_MAX_DEPTH) < 0) {
        return -1;
    }
    return 0;
}

int
pyrc_codec_traverse(pyrc_state *st, visitproc visit, void *arg)
{
    pyrc_codec_state *cs = &st->codec;
    Py_VISIT(cs->TimezoneType);
    Py_VISIT(cs->ZoneInfoType);
    Py_VISIT(cs->DecimalType);
    Py_VISIT(cs->UUIDType);
    Py_VISIT(cs->str_getinitargs);
    Py_VISIT(cs->str_key);
    Py_VISIT(cs->str_int);
    Py_VISIT(cs->str_bit_length);
    Py_VISIT(cs->str_to_bytes);
    Py_VISIT(cs->str_from_bytes);
    Py_VISIT(cs->str_big);
    Py_VISIT(cs->str_cache_key);
    Py_VISIT(cs->kwnames_signed);
    Py_VISIT(cs->int_64);
    for (int i = 0; i < PYRC_KEY_CACHE; i++) {
        Py_VISIT(cs->key_cache[i]);
    }
    return 0;
}

void
pyrc_codec_clear(pyrc_state *st)
{
    pyrc_codec_state *cs = &st->codec;
    cs->datetime_capi = NULL;
    Py_CLEAR(cs->TimezoneType);
    Py_CLEAR(cs->ZoneInfoType);
    Py_CLEAR(cs->DecimalType);
    Py_CLEAR(cs->UUIDType);
    Py_CLEAR(cs->str_getinitargs);
    Py_CLEAR(cs->str_key);
    Py_CLEAR(cs->str_int);
    Py_CLEAR(cs->str_bit_length);
    Py_CLEAR(cs->str_to_bytes);
    Py_CLEAR(cs->str_from_bytes);
    Py_CLEAR(cs->str_big);
    Py_CLEAR(cs->str_cache_key);
    Py_CLEAR(cs->kwnames_signed);
    Py_CLEAR(cs->int_64);
    for (int i = 0; i < PYRC_KEY_CACHE; i++) {
        Py_CLEAR(cs->key_cache[i]);
    }
}
