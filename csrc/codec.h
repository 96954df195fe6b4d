/* The value codec (see docs/format.rst): MessagePack with extension types
 * for what MessagePack lacks.  Owned by codec.c.
 *
 * Besides dumps()/loads(), codec.c exposes its encoder to keys.c, which
 * encodes bound call arguments straight into an encoder buffer (canonical
 * mode, with the __cache_key__() fallback) and hashes the bytes without
 * making a bytes object.
 */
#ifndef PYRC_CODEC_H
#define PYRC_CODEC_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* Containers (array, map, tuple, set, frozenset) nested deeper than this are
 * refused by both the encoder and the decoder.  Must equal MAX_DEPTH in
 * pyredcache/_pure/codec.py. */
#define PYRC_MAX_DEPTH 512

/* Extension type codes (docs/format.rst). */
#define PYRC_EXT_TUPLE 1
#define PYRC_EXT_SET 2
#define PYRC_EXT_FROZENSET 3
#define PYRC_EXT_BIGINT 4
#define PYRC_EXT_DATETIME 5
#define PYRC_EXT_DATE 6
#define PYRC_EXT_TIME 7
#define PYRC_EXT_DECIMAL 8
#define PYRC_EXT_UUID 9

/* Slots of the loads() map-key cache (a power of two). */
#define PYRC_KEY_CACHE 128

typedef struct {
    /* PyDateTime_CAPI * (the capsule of the datetime module, which lives
     * for the whole process); a C pointer, not an object, so not visited. */
    void *datetime_capi;
    PyObject *TimezoneType;     /* datetime.timezone */
    PyObject *ZoneInfoType;     /* zoneinfo.ZoneInfo */
    PyObject *DecimalType;      /* decimal.Decimal */
    PyObject *UUIDType;         /* uuid.UUID */
    /* Interned attribute names and argument tuples. */
    PyObject *str_getinitargs;  /* "__getinitargs__" */
    PyObject *str_key;          /* "key" */
    PyObject *str_int;          /* "int" */
    PyObject *str_bit_length;   /* "bit_length" */
    PyObject *str_to_bytes;     /* "to_bytes" */
    PyObject *str_from_bytes;   /* "from_bytes" */
    PyObject *str_big;          /* "big" */
    PyObject *str_cache_key;    /* "__cache_key__" */
    PyObject *kwnames_signed;   /* ("signed",) */
    PyObject *int_64;           /* 64 */
    /* Short ASCII str map keys loads() has seen (see codec.c). */
    PyObject *key_cache[PYRC_KEY_CACHE];
} pyrc_codec_state;

/* Growable output buffer; starts in `small`, moves to the heap. */
typedef struct {
    char *data;
    Py_ssize_t len;
    Py_ssize_t cap;
    char small[512];
} pyrc_buf;

/* Encoder context.  Initialise with pyrc_encoder_init, release with
 * pyrc_encoder_free (always, also after an error). */
typedef struct {
    pyrc_buf buf;
    const pyrc_codec_state *cs;
    PyObject *SerializationError;   /* borrowed from the module state */
    int canonical;                  /* sorted maps/sets, one NaN */
    int keymode;                    /* fall back to __cache_key__() */
    /* keymode only: when an object of an unsupported type (no
     * __cache_key__) or an unsupported tzinfo stops the encoding, its type
     * (new reference) and whether it was a tzinfo; a SerializationError is
     * set as well. */
    PyObject *unsupported_type;
    int unsupported_is_tzinfo;
} pyrc_encoder;

void pyrc_encoder_init(pyrc_encoder *enc, const pyrc_codec_state *cs,
                       PyObject *SerializationError, int canonical,
                       int keymode);
void pyrc_encoder_free(pyrc_encoder *enc);
/* Encode one value at nesting level `depth` (0 for a top-level value).
 * Returns 0, or -1 with an exception set. */
int pyrc_encode(pyrc_encoder *enc, PyObject *obj, int depth);
/* Array header for n items; map header for n entries. */
int pyrc_encode_array_header(pyrc_encoder *enc, Py_ssize_t n);
int pyrc_encode_map_header(pyrc_encoder *enc, Py_ssize_t n);
/* A tuple (extension 1) holding items[0..n-1], as if they were a tuple
 * encoded at nesting level `depth`; avoids building the tuple. */
int pyrc_encode_tuple_items(pyrc_encoder *enc, PyObject *const *items,
                            Py_ssize_t n, int depth);

#endif /* PYRC_CODEC_H */
