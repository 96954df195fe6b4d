/* Reply decoding: hiredis reader callbacks that build Python objects. */
#ifndef PYRC_REPLY_H
#define PYRC_REPLY_H

#include "module.h"
#include <hiredis/hiredis.h>

/* Per-connection reader context, stored as the reader's privdata.
 *
 * hiredis calls the callbacks below while it parses, one per element.
 * A callback that fails must not stop the reader half-way through a reply
 * (the stream would be out of step), so it keeps the first Python
 * exception here, returns a placeholder (None) and parsing goes on;
 * pyrc_reply_take_error() raises it once the whole reply was read. */
typedef struct {
    pyrc_state *st;
    PyObject *exc; /* first exception raised inside a callback, or NULL */
} pyrc_reply_ctx;

/* A reader whose replies are Python objects: bytes (bulk and status
 * replies), int, list, None, and ResponseError instances for error
 * replies.  NULL on out-of-memory. */
redisReader *pyrc_reader_create(pyrc_reply_ctx *rctx);

/* If a callback failed while the last reply was read, restore that
 * exception and return -1; otherwise return 0. */
int pyrc_reply_take_error(pyrc_reply_ctx *rctx);

/* Drop a stored callback exception without raising it. */
void pyrc_reply_clear_error(pyrc_reply_ctx *rctx);

#endif /* PYRC_REPLY_H */
