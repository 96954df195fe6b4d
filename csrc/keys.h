/* Cache-key building: the KeyBuilder type.  Owned by keys.c. */
#ifndef PYRC_KEYS_H
#define PYRC_KEYS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* inspect.Parameter kinds. */
#define PYRC_POSITIONAL_ONLY 0
#define PYRC_POSITIONAL_OR_KEYWORD 1
#define PYRC_VAR_POSITIONAL 2
#define PYRC_KEYWORD_ONLY 3
#define PYRC_VAR_KEYWORD 4

/* Bytes of BLAKE2b digest in a key (32 hex digits). */
#define PYRC_KEY_DIGEST_SIZE 16

typedef struct {
    PyTypeObject *KeyBuilderType;
    PyObject *empty;            /* inspect.Parameter.empty */
} pyrc_keys_state;

#endif /* PYRC_KEYS_H */
