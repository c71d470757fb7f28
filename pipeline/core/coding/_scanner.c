/* The keyword coder's batch scan, in C: pipeline.core._scanner.Scanner.
 *
 * What it does is exactly what the answer-by-answer path in matcher.py does (that path is the
 * oracle it is tested against, tests/test_matcher_batch.py); this file only makes it fast:
 *
 *   - each answer's *regex text* (matcher.regex_text: lower case, quotes, dashes and spaces
 *     uniform, same length) read on the fly: through a table for ASCII answers, made by
 *     the same translation and str.lower() for the others;
 *   - one Aho-Corasick automaton (a dense DFA over the characters that occur in the keys)
 *     run over each answer's *phrase text*, read from its regex text on the fly: '-' and '/'
 *     read as ' ', runs of spaces as one space, positions kept in the original answer's
 *     offsets (a ring buffer remembers where each phrase character came from);
 *   - word-boundary checks of literal keys (on the regex text, which has the same word
 *     characters around a hit as the phrase text);
 *   - per answer: the trigger mask, the regexes it satisfies, the start candidates of the
 *     anchored regexes; Python's own `re` runs the regexes (match at candidates, finditer for
 *     the others), so regex semantics are Python's;
 *   - placeholders, exclusion vetoes, evidence order, and the evidence JSON text (what
 *     json.dumps(..., ensure_ascii=False) gives for the evidence dicts).
 *
 * The one case it hands back to Python is the rare tie the reference path decides: two regex
 * patterns of one code matching the very same span (the `fallback` callable).
 *
 * Scanner(keys, key_items, key_masks, key_prefixes, regexes, patterns, code_placeholders,
 *         placeholder_res, custom_placeholders, n_words, ascii_table, translate)
 *   keys:           list[str], automaton keys (index = key id)
 *   key_items:      list[list[(left, right, excl, code, pid)]] literal items per key
 *   key_masks:      list[list[int]] trigger mask per key, n_words 64-bit words each
 *   key_prefixes:   list[list[int]] regexes (index into `regexes`) the key starts
 *   regexes:        list[(compiled, code, pid, excl, anchored, need words list)]
 *                   "always" regexes have an all-zero need and anchored False
 *   patterns:       list[(json head str, is_regex, scope_answer)] per pid
 *   code_placeholders: list[int] per code: index into placeholder_res or -1
 *   placeholder_res:   list[compiled]
 *   custom_placeholders: bool: look for placeholders in every answer, not only with '['
 *   n_words:        64-bit words per trigger mask
 *   ascii_table:    bytes, regex_text of each ASCII character in an ASCII answer
 *   translate:      sorted [(char, char)]: regex_text of other answers is str.translate by
 *                   this table, then str.lower()
 *
 * Scanner.code_chunk(texts, fallback) -> (ks bytes int64, codes bytes int64,
 *                                         n_evidence bytes int64, evidence list[str])
 *   texts: list (what is not a non-empty str has no codes); rows in answer then code order;
 *   fallback(k) -> list[(code, n_evidence, evidence)] for answer k, from the reference path.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ growable arrays */

typedef struct {
    void *data;
    Py_ssize_t len, cap, item;
} Vec;

static int vec_reserve(Vec *v, Py_ssize_t n) {
    if (n <= v->cap) return 0;
    Py_ssize_t cap = v->cap ? v->cap : 64;
    while (cap < n) cap *= 2;
    void *d = PyMem_Realloc(v->data, (size_t)(cap * v->item));
    if (!d) { PyErr_NoMemory(); return -1; }
    v->data = d;
    v->cap = cap;
    return 0;
}

#define VEC(type) {NULL, 0, 0, sizeof(type)}
#define AT(v, type, i) (((type *)(v).data)[i])

static void *vec_push(Vec *v) {
    if (vec_reserve(v, v->len + 1) < 0) return NULL;
    return (char *)v->data + (v->len++) * v->item;
}

/* ------------------------------------------------------------------ types */

typedef struct {
    int32_t start, end, pid, code, seq; /* original offsets, end exclusive */
    uint8_t dropped;
} Hit;

typedef struct {
    int32_t rx, pos, seq;
} Cand;

typedef struct {
    PyObject *match, *finditer; /* bound methods */
    int32_t code, pid;
    uint8_t excl, anchored;
} Regex;

typedef struct {
    PyObject_HEAD
    int state; /* 0: new, 1: __init__ started, 2: ready */
    int busy;  /* in code_chunk: the scratch below is in use (not reentrant) */
    /* automaton */
    int32_t nsym, nstates, maxlen;
    uint8_t ascii_sym[128];
    Py_UCS4 *wide_chars;
    int32_t *wide_syms, nwide;
    int32_t *next;      /* the DFA, nstates * nsym; the sign bit flags a target state where
                           a key ends (itself or down its fail chain) */
    int32_t *out_key;   /* key ending at the state, or -1 */
    int32_t *dict_link; /* next state on the fail chain with a key, or -1 */
    /* keys */
    int32_t nkeys;
    int32_t *klen, *lit_start, *lit_count, *pre_start, *pre_count, *pre_rx;
    uint8_t *it_left, *it_right, *it_excl;
    int32_t *it_code, *it_pid;
    uint64_t *tmask; /* nkeys * nwords */
    int32_t nwords;
    /* regexes */
    int32_t nregex, nalways;
    Regex *rx;
    uint64_t *need; /* nregex * nwords */
    /* patterns */
    int32_t npid;
    PyObject **heads;
    uint8_t *is_regex, *scope_answer;
    /* codes, placeholders */
    int32_t ncodes;
    int32_t *code_ph;
    int32_t nph;
    PyObject **ph_finditer;
    int custom_ph;
    uint8_t ascii_table[128]; /* regex_text of an ASCII answer: one table */
    /* regex_text of other answers: str.translate by this table, then str.lower() */
    Py_UCS4 tr_ascii[128], *tr_from, *tr_to;
    int32_t ntr;
    /* per ASCII character of a regex text: automaton symbol of its phrase character, whether
     * that is a space, whether it is a word character */
    int32_t psym[128];
    uint8_t pspace[128], word[128];
    uint8_t *head_ascii;   /* per pid: its JSON head is ASCII */
    uint8_t *rx_always;    /* per regex: no trigger, runs on every answer */
    int32_t *rx_base, *rx_nsets; /* per regex: its trigger sets as bits of the mask */
    int32_t nbits, *last_end; /* per trigger bit: end of its last key in this answer */
    int32_t *bit_rx;          /* per trigger bit: its regex, or -1 */
    int32_t *sat_list, *always; /* this answer's satisfied regexes; the always ones */
    Py_ssize_t n_match, n_match_skipped;
    /* scratch, reused between answers */
    Vec found, vetoes, cands;
    int32_t *ring, ring_mask; /* phrase position -> offset in the answer */
    uint64_t *mask;
    uint8_t *sat;
    Py_UCS4 *out;
    Py_ssize_t out_cap;
    char *outb;
    Py_ssize_t outb_cap;
} Scanner;

static PyObject *str_span; /* "span" */

/* ------------------------------------------------------------------ helpers */

static inline int is_word(Py_UCS4 c) {
    if (c < 128)
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               c == '_';
    return Py_UNICODE_ISALNUM(c);
}

static inline int32_t sym_of(const Scanner *s, Py_UCS4 c) {
    if (c < 128) return s->ascii_sym[c];
    int32_t lo = 0, hi = s->nwide - 1;
    while (lo <= hi) {
        int32_t mid = (lo + hi) / 2;
        if (s->wide_chars[mid] == c) return s->wide_syms[mid];
        if (s->wide_chars[mid] < c) lo = mid + 1; else hi = mid - 1;
    }
    return 0;
}

static int cmp_ucs4(const void *a, const void *b) {
    Py_UCS4 x = *(const Py_UCS4 *)a, y = *(const Py_UCS4 *)b;
    return (x > y) - (x < y);
}

static int cmp_hit(const void *a, const void *b) {
    const Hit *x = a, *y = b;
    if (x->code != y->code) return x->code < y->code ? -1 : 1;
    if (x->start != y->start) return x->start < y->start ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

static int cmp_cand(const void *a, const void *b) {
    const Cand *x = a, *y = b;
    if (x->rx != y->rx) return x->rx < y->rx ? -1 : 1;
    if (x->pos != y->pos) return x->pos < y->pos ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

static int64_t as_i64(PyObject *o, int *err) {
    long long v = PyLong_AsLongLong(o);
    if (v == -1 && PyErr_Occurred()) *err = 1;
    return (int64_t)v;
}

/* (start, end) of a match object; -1 on error */
static int span_of(PyObject *m, Py_ssize_t *s, Py_ssize_t *e) {
    PyObject *sp = PyObject_CallMethodNoArgs(m, str_span);
    if (!sp) return -1;
    int ok = PyArg_ParseTuple(sp, "nn", s, e);
    Py_DECREF(sp);
    return ok ? 0 : -1;
}

/* ------------------------------------------------------------------ construction */

static void Scanner_dealloc(Scanner *s) {
    PyMem_Free(s->wide_chars); PyMem_Free(s->wide_syms);
    PyMem_Free(s->next); PyMem_Free(s->out_key); PyMem_Free(s->dict_link);
    PyMem_Free(s->klen); PyMem_Free(s->lit_start); PyMem_Free(s->lit_count);
    PyMem_Free(s->pre_start); PyMem_Free(s->pre_count); PyMem_Free(s->pre_rx);
    PyMem_Free(s->it_left); PyMem_Free(s->it_right); PyMem_Free(s->it_excl);
    PyMem_Free(s->it_code); PyMem_Free(s->it_pid); PyMem_Free(s->tmask);
    if (s->rx) {
        for (int32_t i = 0; i < s->nregex; i++) {
            Py_XDECREF(s->rx[i].match);
            Py_XDECREF(s->rx[i].finditer);
        }
        PyMem_Free(s->rx);
    }
    PyMem_Free(s->need);
    if (s->heads) {
        for (int32_t i = 0; i < s->npid; i++) Py_XDECREF(s->heads[i]);
        PyMem_Free(s->heads);
    }
    PyMem_Free(s->is_regex); PyMem_Free(s->scope_answer); PyMem_Free(s->code_ph);
    if (s->ph_finditer) {
        for (int32_t i = 0; i < s->nph; i++) Py_XDECREF(s->ph_finditer[i]);
        PyMem_Free(s->ph_finditer);
    }
    PyMem_Free(s->found.data); PyMem_Free(s->vetoes.data); PyMem_Free(s->cands.data);
    PyMem_Free(s->ring);
    PyMem_Free(s->tr_from); PyMem_Free(s->tr_to);
    PyMem_Free(s->head_ascii); PyMem_Free(s->rx_always); PyMem_Free(s->rx_base);
    PyMem_Free(s->rx_nsets); PyMem_Free(s->last_end);
    PyMem_Free(s->bit_rx); PyMem_Free(s->sat_list); PyMem_Free(s->always);
    PyMem_Free(s->mask); PyMem_Free(s->sat); PyMem_Free(s->out); PyMem_Free(s->outb);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

#define ALLOC(ptr, n) do { \
    (ptr) = PyMem_Calloc((size_t)((n) > 0 ? (n) : 1), sizeof(*(ptr))); \
    if (!(ptr)) { PyErr_NoMemory(); return -1; } } while (0)

/* The dense automaton over the keys' characters. */
static int build_automaton(Scanner *s, PyObject *keys) {
    Py_ssize_t nkeys = PyList_GET_SIZE(keys);
    /* alphabet */
    Vec wide = VEC(Py_UCS4);
    int32_t nsym = 1; /* 0: any character in no key */
    memset(s->ascii_sym, 0, sizeof(s->ascii_sym));
    Py_ssize_t total = 0;
    s->maxlen = 1;
    for (Py_ssize_t k = 0; k < nkeys; k++) {
        PyObject *key = PyList_GET_ITEM(keys, k);
        if (!PyUnicode_Check(key)) { PyErr_SetString(PyExc_TypeError, "keys must be str"); goto fail; }
        Py_ssize_t n = PyUnicode_GET_LENGTH(key);
        int kind = PyUnicode_KIND(key);
        const void *data = PyUnicode_DATA(key);
        total += n;
        if (n > s->maxlen) s->maxlen = (int32_t)n;
        for (Py_ssize_t i = 0; i < n; i++) {
            Py_UCS4 c = PyUnicode_READ(kind, data, i);
            if (c < 128) {
                if (!s->ascii_sym[c]) s->ascii_sym[c] = (uint8_t)nsym++;
            } else {
                Py_UCS4 *p = vec_push(&wide);
                if (!p) goto fail;
                *p = c;
            }
        }
    }
    if (wide.len) qsort(wide.data, (size_t)wide.len, sizeof(Py_UCS4), cmp_ucs4);
    s->wide_chars = PyMem_Calloc((size_t)wide.len + 1, sizeof(Py_UCS4));
    s->wide_syms = PyMem_Calloc((size_t)wide.len + 1, sizeof(int32_t));
    if (!s->wide_chars || !s->wide_syms) { PyErr_NoMemory(); goto fail; }
    s->nwide = 0;
    for (Py_ssize_t i = 0; i < wide.len; i++) {
        Py_UCS4 c = AT(wide, Py_UCS4, i);
        if (s->nwide && s->wide_chars[s->nwide - 1] == c) continue;
        s->wide_chars[s->nwide] = c;
        s->wide_syms[s->nwide++] = nsym++;
    }
    PyMem_Free(wide.data);
    wide.data = NULL;
    s->nsym = nsym;

    /* trie: goto table, -1 = no edge; at most total + 1 states */
    Py_ssize_t cap = total + 1;
    s->next = PyMem_Malloc((size_t)cap * nsym * sizeof(int32_t));
    s->out_key = PyMem_Malloc((size_t)cap * sizeof(int32_t));
    if (!s->next || !s->out_key) { PyErr_NoMemory(); goto fail; }
    int32_t nstates = 1;
    for (int32_t c = 0; c < nsym; c++) s->next[c] = -1;
    s->out_key[0] = -1;
    for (Py_ssize_t k = 0; k < nkeys; k++) {
        PyObject *key = PyList_GET_ITEM(keys, k);
        Py_ssize_t n = PyUnicode_GET_LENGTH(key);
        int kind = PyUnicode_KIND(key);
        const void *data = PyUnicode_DATA(key);
        if (n == 0) continue;
        int32_t st = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            int32_t c = sym_of(s, PyUnicode_READ(kind, data, i));
            int32_t *t = &s->next[(size_t)st * nsym + c];
            if (*t < 0) {
                int32_t ns = nstates++;
                for (int32_t d = 0; d < nsym; d++) s->next[(size_t)ns * nsym + d] = -1;
                s->out_key[ns] = -1;
                *t = ns;
            }
            st = *t;
        }
        s->out_key[st] = (int32_t)k;
    }
    s->nstates = nstates;
    int32_t *shrunk = PyMem_Realloc(s->next, (size_t)nstates * nsym * sizeof(int32_t));
    if (shrunk) s->next = shrunk;

    /* failure links by breadth-first order; the goto table becomes the DFA */
    int32_t *fail = PyMem_Malloc((size_t)nstates * sizeof(int32_t));
    int32_t *queue = PyMem_Malloc((size_t)nstates * sizeof(int32_t));
    s->dict_link = PyMem_Malloc((size_t)nstates * sizeof(int32_t));
    if (!fail || !queue || !s->dict_link) {
        PyMem_Free(fail); PyMem_Free(queue); PyErr_NoMemory(); goto fail;
    }
    Py_ssize_t qh = 0, qt = 0;
    fail[0] = 0;
    s->dict_link[0] = -1;
    for (int32_t c = 0; c < nsym; c++) {
        int32_t t = s->next[c];
        if (t < 0) s->next[c] = 0;
        else { fail[t] = 0; s->dict_link[t] = -1; queue[qt++] = t; }
    }
    while (qh < qt) {
        int32_t st = queue[qh++];
        int32_t *row = &s->next[(size_t)st * nsym];
        const int32_t *frow = &s->next[(size_t)fail[st] * nsym];
        for (int32_t c = 0; c < nsym; c++) {
            int32_t t = row[c];
            if (t < 0) { row[c] = frow[c]; continue; }
            int32_t f = frow[c];
            fail[t] = f;
            s->dict_link[t] = s->out_key[f] >= 0 ? f : s->dict_link[f];
            queue[qt++] = t;
        }
    }
    PyMem_Free(fail);
    PyMem_Free(queue);
    /* a transition into a state where a key ends (itself or down its fail chain) is flagged
     * with the sign bit, so the scan reads one table per character */
    for (size_t e = 0; e < (size_t)nstates * nsym; e++) {
        int32_t t = s->next[e];
        if (s->out_key[t] >= 0 || s->dict_link[t] >= 0) s->next[e] = (int32_t)((uint32_t)t | 0x80000000u);
    }
    return 0;
fail:
    PyMem_Free(wide.data);
    return -1;
}

static int read_words(PyObject *list, uint64_t *out, int32_t nwords) {
    if (!PyList_Check(list) || PyList_GET_SIZE(list) != nwords) {
        PyErr_SetString(PyExc_ValueError, "mask must be a list of n_words ints");
        return -1;
    }
    for (int32_t w = 0; w < nwords; w++) {
        out[w] = PyLong_AsUnsignedLongLongMask(PyList_GET_ITEM(list, w));
        if (PyErr_Occurred()) return -1;
    }
    return 0;
}

/* Indices from Python index C arrays: refuse any out of range. */
static int check_indices(Scanner *s) {
    Py_ssize_t nit = 0, npre = 0;
    for (int32_t k = 0; k < s->nkeys; k++) {
        nit += s->lit_count[k];
        npre += s->pre_count[k];
    }
    for (Py_ssize_t i = 0; i < nit; i++)
        if (s->it_code[i] < 0 || s->it_code[i] >= s->ncodes || s->it_pid[i] < 0 || s->it_pid[i] >= s->npid)
            goto bad;
    for (Py_ssize_t i = 0; i < npre; i++)
        if (s->pre_rx[i] < 0 || s->pre_rx[i] >= s->nregex || !s->rx[s->pre_rx[i]].anchored) goto bad;
    for (int32_t r = 0; r < s->nregex; r++)
        if (s->rx[r].code < 0 || s->rx[r].code >= s->ncodes || s->rx[r].pid < 0 ||
            s->rx[r].pid >= s->npid || s->rx_base[r] + s->rx_nsets[r] > s->nbits)
            goto bad;
    for (int32_t c = 0; c < s->ncodes; c++)
        if (s->code_ph[c] < -1 || s->code_ph[c] >= s->nph) goto bad;
    return 0;
bad:
    PyErr_SetString(PyExc_ValueError, "Scanner tables refer to a code, pattern, regex or "
                                      "placeholder that does not exist");
    return -1;
}

static int Scanner_init(Scanner *s, PyObject *args, PyObject *kw) {
    PyObject *keys, *items, *masks, *prefixes, *regexes, *patterns, *code_ph, *ph_res, *trans;
    int custom, nwords;
    const char *table;
    Py_ssize_t table_len;
    if (!PyArg_ParseTuple(args, "O!O!O!O!O!O!O!O!piy#O!", &PyList_Type, &keys, &PyList_Type,
                          &items, &PyList_Type, &masks, &PyList_Type, &prefixes, &PyList_Type,
                          &regexes, &PyList_Type, &patterns, &PyList_Type, &code_ph, &PyList_Type,
                          &ph_res, &custom, &nwords, &table, &table_len, &PyList_Type, &trans))
        return -1;
    if (table_len < 128) {
        PyErr_SetString(PyExc_ValueError, "the ASCII table needs 128 entries");
        return -1;
    }
    if (kw && PyDict_GET_SIZE(kw)) {
        PyErr_SetString(PyExc_TypeError, "Scanner takes no keyword arguments");
        return -1;
    }
    if (s->state) { PyErr_SetString(PyExc_RuntimeError, "a Scanner is initialised once"); return -1; }
    s->state = 1;
    Py_ssize_t nkeys = PyList_GET_SIZE(keys);
    if (PyList_GET_SIZE(items) != nkeys || PyList_GET_SIZE(masks) != nkeys ||
        PyList_GET_SIZE(prefixes) != nkeys || nwords < 1) {
        PyErr_SetString(PyExc_ValueError, "per-key lists differ in length");
        return -1;
    }
    s->nkeys = (int32_t)nkeys;
    s->nwords = nwords;
    if (build_automaton(s, keys) < 0) return -1;

    ALLOC(s->klen, nkeys); ALLOC(s->lit_start, nkeys); ALLOC(s->lit_count, nkeys);
    ALLOC(s->pre_start, nkeys); ALLOC(s->pre_count, nkeys);
    ALLOC(s->tmask, nkeys * nwords);
    Py_ssize_t nit = 0, npre = 0;
    for (Py_ssize_t k = 0; k < nkeys; k++) {
        PyObject *it = PyList_GET_ITEM(items, k), *pr = PyList_GET_ITEM(prefixes, k);
        if (!PyList_Check(it) || !PyList_Check(pr)) {
            PyErr_SetString(PyExc_TypeError, "key items and prefixes must be lists");
            return -1;
        }
        nit += PyList_GET_SIZE(it);
        npre += PyList_GET_SIZE(pr);
    }
    ALLOC(s->it_left, nit); ALLOC(s->it_right, nit); ALLOC(s->it_excl, nit);
    ALLOC(s->it_code, nit); ALLOC(s->it_pid, nit); ALLOC(s->pre_rx, npre);
    Py_ssize_t ii = 0, pi = 0;
    for (Py_ssize_t k = 0; k < nkeys; k++) {
        s->klen[k] = (int32_t)PyUnicode_GET_LENGTH(PyList_GET_ITEM(keys, k));
        PyObject *it = PyList_GET_ITEM(items, k), *pr = PyList_GET_ITEM(prefixes, k);
        s->lit_start[k] = (int32_t)ii;
        s->lit_count[k] = (int32_t)PyList_GET_SIZE(it);
        for (Py_ssize_t j = 0; j < PyList_GET_SIZE(it); j++, ii++) {
            int left, right, excl, code, pid;
            if (!PyArg_ParseTuple(PyList_GET_ITEM(it, j), "pppii", &left, &right, &excl, &code, &pid))
                return -1;
            s->it_left[ii] = (uint8_t)left; s->it_right[ii] = (uint8_t)right;
            s->it_excl[ii] = (uint8_t)excl; s->it_code[ii] = code; s->it_pid[ii] = pid;
        }
        s->pre_start[k] = (int32_t)pi;
        s->pre_count[k] = (int32_t)PyList_GET_SIZE(pr);
        for (Py_ssize_t j = 0; j < PyList_GET_SIZE(pr); j++, pi++) {
            int err = 0;
            s->pre_rx[pi] = (int32_t)as_i64(PyList_GET_ITEM(pr, j), &err);
            if (err) return -1;
        }
        if (read_words(PyList_GET_ITEM(masks, k), &s->tmask[k * nwords], nwords) < 0) return -1;
    }

    Py_ssize_t nrx = PyList_GET_SIZE(regexes);
    s->nregex = (int32_t)nrx;
    ALLOC(s->rx, nrx);
    ALLOC(s->need, nrx * nwords);
    s->nalways = 0;
    ALLOC(s->rx_always, nrx); ALLOC(s->rx_base, nrx); ALLOC(s->rx_nsets, nrx);
    for (Py_ssize_t r = 0; r < nrx; r++) {
        PyObject *compiled, *need;
        int code, pid, excl, anchored;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(regexes, r), "OiippO", &compiled, &code, &pid, &excl,
                              &anchored, &need))
            return -1;
        Regex *x = &s->rx[r];
        x->code = code; x->pid = pid; x->excl = (uint8_t)excl; x->anchored = (uint8_t)anchored;
        x->match = PyObject_GetAttrString(compiled, "match");
        x->finditer = PyObject_GetAttrString(compiled, "finditer");
        if (!x->match || !x->finditer) return -1;
        if (read_words(need, &s->need[r * nwords], nwords) < 0) return -1;
        /* its trigger sets are consecutive bits: base, base + 1, ... */
        int32_t base = -1, nsets = 0;
        for (int32_t w = 0; w < nwords; w++) {
            uint64_t bits = s->need[r * nwords + w];
            if (bits && base < 0) base = 64 * w + __builtin_ctzll(bits);
            nsets += __builtin_popcountll(bits);
        }
        s->rx_base[r] = base < 0 ? 0 : base;
        s->rx_nsets[r] = nsets;
        s->rx_always[r] = nsets == 0 && !anchored;
        s->nalways += s->rx_always[r];
    }
    s->nbits = 64 * nwords;
    ALLOC(s->last_end, s->nbits);
    ALLOC(s->bit_rx, s->nbits);
    ALLOC(s->sat_list, nrx);
    ALLOC(s->always, nrx);
    for (int32_t b = 0; b < s->nbits; b++) s->bit_rx[b] = -1;
    for (int32_t r = 0, na = 0; r < nrx; r++) {
        if (s->rx_always[r]) s->always[na++] = r;
        for (int32_t b = s->rx_base[r]; b < s->rx_base[r] + s->rx_nsets[r]; b++) s->bit_rx[b] = r;
    }

    Py_ssize_t npid = PyList_GET_SIZE(patterns);
    s->npid = (int32_t)npid;
    ALLOC(s->heads, npid); ALLOC(s->is_regex, npid); ALLOC(s->scope_answer, npid);
    for (Py_ssize_t p = 0; p < npid; p++) {
        PyObject *head;
        int isrx, scope;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(patterns, p), "Upp", &head, &isrx, &scope)) return -1;
        Py_INCREF(head);
        s->heads[p] = head;
        s->is_regex[p] = (uint8_t)isrx;
        s->scope_answer[p] = (uint8_t)scope;
    }
    ALLOC(s->head_ascii, npid);
    for (Py_ssize_t p = 0; p < npid; p++) s->head_ascii[p] = (uint8_t)PyUnicode_IS_ASCII(s->heads[p]);
    Py_ssize_t ncodes = PyList_GET_SIZE(code_ph);
    s->ncodes = (int32_t)ncodes;
    ALLOC(s->code_ph, ncodes);
    for (Py_ssize_t c = 0; c < ncodes; c++) {
        int err = 0;
        s->code_ph[c] = (int32_t)as_i64(PyList_GET_ITEM(code_ph, c), &err);
        if (err) return -1;
    }
    Py_ssize_t nph = PyList_GET_SIZE(ph_res);
    s->nph = (int32_t)nph;
    ALLOC(s->ph_finditer, nph);
    for (Py_ssize_t i = 0; i < nph; i++) {
        s->ph_finditer[i] = PyObject_GetAttrString(PyList_GET_ITEM(ph_res, i), "finditer");
        if (!s->ph_finditer[i]) return -1;
    }
    s->custom_ph = custom;
    memcpy(s->ascii_table, table, 128);
    for (int c = 0; c < 128; c++) {
        Py_UCS4 t = (unsigned char)table[c];
        if (t >= 128) { PyErr_SetString(PyExc_ValueError, "ASCII table must be ASCII"); return -1; }
        s->word[c] = (uint8_t)is_word(t);
        if (t == '-' || t == '/') t = ' ';
        s->pspace[c] = t == ' ';
        s->psym[c] = s->ascii_sym[t];
    }
    for (int c = 0; c < 128; c++) s->tr_ascii[c] = (Py_UCS4)c;
    Py_ssize_t ntr = PyList_GET_SIZE(trans);
    ALLOC(s->tr_from, ntr); ALLOC(s->tr_to, ntr);
    s->ntr = 0;
    for (Py_ssize_t i = 0; i < ntr; i++) { /* sorted by the Python side */
        unsigned int a, b;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(trans, i), "II", &a, &b)) return -1;
        if (a < 128) { s->tr_ascii[a] = b; continue; }
        if (s->ntr && s->tr_from[s->ntr - 1] >= a) {
            PyErr_SetString(PyExc_ValueError, "translate table must be sorted");
            return -1;
        }
        s->tr_from[s->ntr] = a;
        s->tr_to[s->ntr++] = b;
    }
    ALLOC(s->mask, nwords);
    ALLOC(s->sat, nrx);
    int32_t ring = 1; /* a power of two above the longest key */
    while (ring <= s->maxlen) ring *= 2;
    ALLOC(s->ring, ring);
    s->ring_mask = ring - 1;
    s->found.item = s->vetoes.item = sizeof(Hit);
    s->cands.item = sizeof(Cand);
    if (check_indices(s) < 0) return -1;
    s->state = 2;
    return 0;
}

/* ------------------------------------------------------------------ evidence JSON */

static int out_reserve(Scanner *s, Py_ssize_t n) {
    if (n <= s->out_cap) return 0;
    Py_ssize_t cap = s->out_cap ? s->out_cap : 1024;
    while (cap < n) cap *= 2;
    Py_UCS4 *p = PyMem_Realloc(s->out, (size_t)cap * sizeof(Py_UCS4));
    if (!p) { PyErr_NoMemory(); return -1; }
    s->out = p;
    s->out_cap = cap;
    return 0;
}

static Py_ssize_t put_ascii(Scanner *s, Py_ssize_t at, const char *txt) {
    Py_ssize_t n = (Py_ssize_t)strlen(txt);
    if (out_reserve(s, at + n) < 0) return -1;
    for (Py_ssize_t i = 0; i < n; i++) s->out[at + i] = (Py_UCS4)(unsigned char)txt[i];
    return at + n;
}

static Py_ssize_t put_str(Scanner *s, Py_ssize_t at, PyObject *str) {
    Py_ssize_t n = PyUnicode_GET_LENGTH(str);
    if (out_reserve(s, at + n) < 0) return -1;
    int kind = PyUnicode_KIND(str);
    const void *data = PyUnicode_DATA(str);
    for (Py_ssize_t i = 0; i < n; i++) s->out[at + i] = PyUnicode_READ(kind, data, i);
    return at + n;
}

/* How json's encode_basestring writes c when it escapes it ('"', '\\', control characters):
 * that many characters into esc (at most 6), or 0 (c is written as it is). */
static inline int json_escape(Py_UCS4 c, char *esc) {
    static const char hex[] = "0123456789abcdef";
    if (c >= 0x20 && c != '"' && c != '\\') return 0;
    esc[0] = '\\';
    switch (c) {
    case '"': esc[1] = '"'; return 2;
    case '\\': esc[1] = '\\'; return 2;
    case '\b': esc[1] = 'b'; return 2;
    case '\f': esc[1] = 'f'; return 2;
    case '\n': esc[1] = 'n'; return 2;
    case '\r': esc[1] = 'r'; return 2;
    case '\t': esc[1] = 't'; return 2;
    default:
        memcpy(esc + 1, "u00", 3);
        esc[4] = hex[(c >> 4) & 0xf];
        esc[5] = hex[c & 0xf];
        return 6;
    }
}

/* text[start:end] as a JSON string (json's encode_basestring: '"', '\\' and control
 * characters escaped, everything else as is). */
static Py_ssize_t put_json(Scanner *s, Py_ssize_t at, int kind, const void *data,
                           Py_ssize_t start, Py_ssize_t end) {
    if (out_reserve(s, at + 6 * (end - start) + 2) < 0) return -1;
    Py_UCS4 *o = s->out;
    char esc[6];
    o[at++] = '"';
    for (Py_ssize_t i = start; i < end; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        int ne = json_escape(c, esc);
        if (!ne) o[at++] = c;
        for (int e = 0; e < ne; e++) o[at++] = (Py_UCS4)(unsigned char)esc[e];
    }
    o[at++] = '"';
    return at;
}

/* `, "start": S, "end": E}` into buf (room for 64 chars); returns its length */
static int put_pos(char *buf, int32_t start, int32_t end) {
    static const char a[] = ", \"start\": ", b[] = ", \"end\": ";
    int at = 0;
    memcpy(buf, a, sizeof(a) - 1);
    at += sizeof(a) - 1;
    for (int pass = 0; pass < 2; pass++) {
        uint32_t v = (uint32_t)(pass ? end : start);
        char digits[12];
        int nd = 0;
        do { digits[nd++] = (char)('0' + v % 10); v /= 10; } while (v);
        while (nd) buf[at++] = digits[--nd];
        if (!pass) { memcpy(buf + at, b, sizeof(b) - 1); at += sizeof(b) - 1; }
    }
    buf[at++] = '}';
    return at;
}

/* The evidence JSON of hits h[0..nh) of one code when the answer and the patterns' heads are
 * ASCII: written as bytes. */
static PyObject *evidence_ascii(Scanner *s, const Hit *h, Py_ssize_t nh, const Py_UCS1 *text) {
    Py_ssize_t need = 2;
    for (Py_ssize_t i = 0; i < nh; i++)
        need += PyUnicode_GET_LENGTH(s->heads[h[i].pid]) + 6 * (Py_ssize_t)(h[i].end - h[i].start) + 68;
    if (need > s->outb_cap) {
        char *p = PyMem_Realloc(s->outb, (size_t)need);
        if (!p) return PyErr_NoMemory();
        s->outb = p;
        s->outb_cap = need;
    }
    char *o = s->outb;
    Py_ssize_t at = 0;
    o[at++] = '[';
    for (Py_ssize_t i = 0; i < nh; i++) {
        if (i) { o[at++] = ','; o[at++] = ' '; }
        PyObject *head = s->heads[h[i].pid];
        memcpy(o + at, PyUnicode_1BYTE_DATA(head), (size_t)PyUnicode_GET_LENGTH(head));
        at += PyUnicode_GET_LENGTH(head);
        o[at++] = '"';
        for (int32_t j = h[i].start; j < h[i].end; j++) {
            Py_UCS1 c = text[j];
            int ne = json_escape(c, o + at);
            if (!ne) o[at++] = (char)c;
            at += ne;
        }
        o[at++] = '"';
        at += put_pos(o + at, h[i].start, h[i].end);
    }
    o[at++] = ']';
    PyObject *ev = PyUnicode_New(at, 127);
    if (!ev) return NULL;
    memcpy(PyUnicode_1BYTE_DATA(ev), o, (size_t)at);
    return ev;
}

/* ------------------------------------------------------------------ one chunk */

typedef struct {
    Vec ks, codes, nev;
    PyObject *evidence; /* list */
} Rows;

static int emit(Rows *rows, int64_t k, int64_t code, int64_t n, PyObject *ev /* stolen */) {
    int64_t *a = vec_push(&rows->ks), *b = vec_push(&rows->codes), *c = vec_push(&rows->nev);
    if (!a || !b || !c) { Py_DECREF(ev); return -1; }
    *a = k; *b = code; *c = n;
    int r = PyList_Append(rows->evidence, ev);
    Py_DECREF(ev);
    return r;
}

static int add_hit(Vec *v, int32_t start, int32_t end, int32_t pid, int32_t code) {
    Hit *h = vec_push(v);
    if (!h) return -1;
    h->start = start; h->end = end; h->pid = pid; h->code = code;
    h->seq = (int32_t)(v->len - 1); h->dropped = 0;
    return 0;
}

/* finditer over `text`, every non-empty match a hit */
static int run_finditer(PyObject *finditer, PyObject *text, Vec *target, int32_t pid,
                        int32_t code, int nonempty) {
    PyObject *it = PyObject_CallOneArg(finditer, text);
    if (!it) return -1;
    PyObject *m;
    while ((m = PyIter_Next(it))) {
        Py_ssize_t a, b;
        int r = span_of(m, &a, &b);
        Py_DECREF(m);
        if (r < 0) { Py_DECREF(it); return -1; }
        if ((!nonempty || b > a) && add_hit(target, (int32_t)a, (int32_t)b, pid, code) < 0) {
            Py_DECREF(it); return -1;
        }
    }
    Py_DECREF(it);
    return PyErr_Occurred() ? -1 : 0;
}

/* Placeholder spans of regex `ph` in `text`, cached per answer in spans[ph]. */
static int ph_spans(Scanner *s, int32_t ph, PyObject *text, Vec *spans, uint8_t *done) {
    if (done[ph]) return 0;
    done[ph] = 1;
    spans[ph].len = 0;
    return run_finditer(s->ph_finditer[ph], text, &spans[ph], 0, 0, 0);
}

/* The regex text (matcher.regex_text) of an answer: read through the ASCII table from the
 * answer itself when it is ASCII, else from `norm` (norm_wide). */
typedef struct {
    int kind;
    const void *data;
    const uint8_t *table;
} Norm;

static inline Py_UCS4 norm_at(const Norm *t, Py_ssize_t i) {
    Py_UCS4 c = PyUnicode_READ(t->kind, t->data, i);
    return c < 128 ? t->table[c] : c;
}

static PyObject *str_lower; /* "lower" */

/* matcher.regex_text of an answer that is not ASCII: translate, then str.lower() */
static PyObject *norm_wide(Scanner *s, PyObject *text) {
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_UCS4 *buf = PyMem_Malloc((size_t)(n ? n : 1) * sizeof(Py_UCS4));
    if (!buf) return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c < 128) { buf[i] = s->tr_ascii[c]; continue; }
        int32_t lo = 0, hi = s->ntr - 1;
        while (lo <= hi) {
            int32_t mid = (lo + hi) / 2;
            if (s->tr_from[mid] == c) { c = s->tr_to[mid]; break; }
            if (s->tr_from[mid] < c) lo = mid + 1; else hi = mid - 1;
        }
        buf[i] = c;
    }
    PyObject *mapped = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, buf, n);
    PyMem_Free(buf);
    if (!mapped) return NULL;
    PyObject *low = PyObject_CallMethodNoArgs(mapped, str_lower);
    Py_DECREF(mapped);
    if (low && PyUnicode_GET_LENGTH(low) != n) {
        Py_DECREF(low);
        PyErr_SetString(PyExc_ValueError, "regex text must keep the answer's length");
        return NULL;
    }
    return low;
}

/* regex_text(answer) as a str, for Python's re */
static PyObject *norm_str(Scanner *s, PyObject *text, PyObject *norm) {
    if (norm) { Py_INCREF(norm); return norm; }
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    PyObject *out = PyUnicode_New(n, 127);
    if (!out) return NULL;
    const Py_UCS1 *src = PyUnicode_1BYTE_DATA(text);
    Py_UCS1 *dst = PyUnicode_1BYTE_DATA(out);
    for (Py_ssize_t i = 0; i < n; i++) dst[i] = s->ascii_table[src[i]];
    return out;
}

static int code_norm(Scanner *s, Py_ssize_t k, PyObject *text, PyObject *norm,
                     PyObject *fallback, Rows *rows, Vec *spans, uint8_t *done);

static int code_answer(Scanner *s, Py_ssize_t k, PyObject *text, PyObject *fallback, Rows *rows,
                       Vec *spans, uint8_t *done) {
    if (PyUnicode_IS_ASCII(text)) return code_norm(s, k, text, NULL, fallback, rows, spans, done);
    PyObject *norm = norm_wide(s, text);
    if (!norm) return -1;
    int r = code_norm(s, k, text, norm, fallback, rows, spans, done);
    Py_DECREF(norm);
    return r;
}

/* A key ends at `stop` (exclusive) and starts at `start` (original offsets): its trigger
 * bits, its literal items that pass their boundary checks, its regex start candidates. */
static int on_key(Scanner *s, int32_t kid, int32_t start, int32_t stop, const Norm *rt,
                  Py_ssize_t n) {
    const int32_t nwords = s->nwords;
    const uint64_t *tm = &s->tmask[(size_t)kid * nwords];
    for (int32_t w = 0; w < nwords; w++) {
        uint64_t x = tm[w];
        s->mask[w] |= x;
        while (x) {
            s->last_end[64 * w + __builtin_ctzll(x)] = stop;
            x &= x - 1;
        }
    }
    int32_t a = s->lit_start[kid], b = a + s->lit_count[kid];
    if (a < b) {
        Py_UCS4 cl = start > 0 ? norm_at(rt, start - 1) : ' ';
        Py_UCS4 cr = stop < n ? norm_at(rt, stop) : ' ';
        int wl = cl < 128 ? s->word[cl] : is_word(cl);
        int wr = cr < 128 ? s->word[cr] : is_word(cr);
        for (int32_t it = a; it < b; it++) {
            if ((s->it_left[it] && wl) || (s->it_right[it] && wr)) continue;
            if (add_hit(s->it_excl[it] ? &s->vetoes : &s->found, start, stop, s->it_pid[it],
                        s->it_code[it]) < 0)
                return -1;
        }
    }
    for (int32_t p = s->pre_start[kid], pe = p + s->pre_count[kid]; p < pe; p++) {
        Cand *cd = vec_push(&s->cands);
        if (!cd) return -1;
        cd->rx = s->pre_rx[p]; cd->pos = start; cd->seq = (int32_t)(s->cands.len - 1);
    }
    return 0;
}

/* The automaton over the phrase text of an answer, read from its regex text: '-' and '/'
 * as spaces, a run of spaces as one. Specialised per string kind (ASCII answers: raw). */
static inline __attribute__((always_inline)) int scan(Scanner *s, const Norm *rt, Py_ssize_t n,
                                                      const int kind, const int raw_ascii) {
    const int32_t nsym = s->nsym, ring_mask = s->ring_mask;
    int32_t *ring = s->ring;
    const int32_t *next = s->next, *out_key = s->out_key, *dict_link = s->dict_link;
    int32_t st = 0, any = 0;
    int64_t j = 0; /* phrase position */
    int prev_space = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, rt->data, i);
        int32_t sym;
        int space;
        if (raw_ascii || c < 128) {
            sym = s->psym[c];
            space = s->pspace[c];
        } else {
            sym = sym_of(s, c);
            space = 0;
        }
        if (space) {
            if (prev_space) continue;
            prev_space = 1;
        } else prev_space = 0;
        ring[j & ring_mask] = (int32_t)i;
        j++;
        int32_t t = next[(size_t)st * nsym + sym];
        st = t & 0x7fffffff;
        if (t >= 0) continue; /* no key ends here */
        for (int32_t q = out_key[st] >= 0 ? st : dict_link[st]; q >= 0; q = dict_link[q]) {
            int32_t kid = out_key[q];
            any = 1;
            if (on_key(s, kid, ring[(j - s->klen[kid]) & ring_mask], (int32_t)i + 1, rt, n) < 0)
                return -1;
        }
    }
    return any;
}

static int code_norm(Scanner *s, Py_ssize_t k, PyObject *text, PyObject *norm,
                     PyObject *fallback, Rows *rows, Vec *spans, uint8_t *done) {
    const Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    PyObject *src = norm ? norm : text;
    const Norm rt = {PyUnicode_KIND(src), PyUnicode_DATA(src), s->ascii_table};
    const int32_t nwords = s->nwords;
    Vec *found = &s->found, *vetoes = &s->vetoes, *cands = &s->cands;
    found->len = vetoes->len = cands->len = 0;
    memset(s->mask, 0, (size_t)nwords * sizeof(uint64_t));

    /* 1. the automaton */
    int any_key;
    if (!norm) any_key = scan(s, &rt, n, PyUnicode_1BYTE_KIND, 1);
    else if (rt.kind == PyUnicode_1BYTE_KIND) any_key = scan(s, &rt, n, PyUnicode_1BYTE_KIND, 0);
    else if (rt.kind == PyUnicode_2BYTE_KIND) any_key = scan(s, &rt, n, PyUnicode_2BYTE_KIND, 0);
    else any_key = scan(s, &rt, n, PyUnicode_4BYTE_KIND, 0);
    if (any_key < 0) return -1;
    if (!any_key && !s->nalways) return 0;

    /* 2. regexes: those whose trigger sets all occur (found from the mask's bits, in regex
     * order), and the always ones */
    int need_regex = s->nalways > 0;
    int32_t nsat = 0;
    for (int32_t w = 0; w < nwords; w++) {
        for (uint64_t x = s->mask[w]; x; x &= x - 1) {
            int32_t r = s->bit_rx[64 * w + __builtin_ctzll(x)];
            if (r < 0 || (nsat && s->sat_list[nsat - 1] == r)) continue;
            const uint64_t *nd = &s->need[(size_t)r * nwords];
            int ok = 1;
            for (int32_t v = 0; v < nwords; v++) ok &= (s->mask[v] & nd[v]) == nd[v];
            if (!ok) continue;
            s->sat[r] = 1;
            s->sat_list[nsat++] = r;
            need_regex |= !s->rx[r].anchored;
        }
    }
    /* a candidate needs its regex satisfied, and a key of each trigger set ending after it
     * (every match contains one, after its start) */
    int32_t nc = 0;
    for (Py_ssize_t c = 0; c < cands->len; c++) {
        Cand cd = AT(*cands, Cand, c);
        if (!s->sat[cd.rx]) continue;
        int ok = 1;
        for (int32_t b = s->rx_base[cd.rx], be = b + s->rx_nsets[cd.rx]; ok && b < be; b++)
            ok = s->last_end[b] > cd.pos;
        s->n_match_skipped += !ok;
        if (ok) AT(*cands, Cand, nc++) = cd;
    }
    cands->len = nc;
    for (int32_t i = 0; i < nsat; i++) s->sat[s->sat_list[i]] = 0;
    if (need_regex || nc) {
        PyObject *rtext = norm_str(s, text, norm);
        if (!rtext) return -1;
        /* always regexes first, then the other triggered ones, in regex order */
        for (int32_t i = 0; i < s->nalways + nsat; i++) {
            int32_t r = i < s->nalways ? s->always[i] : s->sat_list[i - s->nalways];
            Regex *x = &s->rx[r];
            if (x->anchored) continue;
            if (run_finditer(x->finditer, rtext, x->excl ? vetoes : found, x->pid, x->code, 1) < 0) {
                Py_DECREF(rtext); return -1;
            }
        }
        /* anchored regexes: re.match where a prefix starts, as finditer would find them */
        if (nc > 1) qsort(cands->data, (size_t)nc, sizeof(Cand), cmp_cand);
        for (int32_t c = 0; c < nc;) {
            int32_t r = AT(*cands, Cand, c).rx;
            Regex *x = &s->rx[r];
            Py_ssize_t pos = 0;
            for (; c < nc && AT(*cands, Cand, c).rx == r; c++) {
                Py_ssize_t p = AT(*cands, Cand, c).pos;
                if (p < pos) continue;
                s->n_match++;
                PyObject *pp = PyLong_FromSsize_t(p);
                if (!pp) { Py_DECREF(rtext); return -1; }
                PyObject *argv[2] = {rtext, pp};
                PyObject *m = PyObject_Vectorcall(x->match, argv, 2, NULL);
                Py_DECREF(pp);
                if (!m) { Py_DECREF(rtext); return -1; }
                if (m != Py_None) {
                    Py_ssize_t a, b;
                    int e = span_of(m, &a, &b);
                    Py_DECREF(m);
                    if (e < 0) { Py_DECREF(rtext); return -1; }
                    pos = b;
                    if (add_hit(x->excl ? vetoes : found, (int32_t)p, (int32_t)b, x->pid, x->code) < 0) {
                        Py_DECREF(rtext); return -1;
                    }
                } else Py_DECREF(m);
            }
        }
        Py_DECREF(rtext);
    }
    if (!found->len) return 0;

    Hit *f = found->data;
    const Py_ssize_t nf = found->len;
    const int tkind = PyUnicode_KIND(text);
    const void *tdata = PyUnicode_DATA(text);

    /* 3. placeholders: drop hits that cut into one */
    if (s->nph) {
        int look = s->custom_ph;
        if (!look) look = PyUnicode_FindChar(text, '[', 0, n, 1) >= 0;
        if (look) {
            memset(done, 0, (size_t)s->nph);
            for (Py_ssize_t h = 0; h < nf; h++) {
                int32_t ph = s->code_ph[f[h].code];
                if (ph < 0) continue;
                if (ph_spans(s, ph, text, spans, done) < 0) return -1;
                for (Py_ssize_t q = 0; q < spans[ph].len; q++) {
                    Hit *sp = &AT(spans[ph], Hit, q);
                    if (f[h].start < sp->end && sp->start < f[h].end &&
                        !(f[h].start <= sp->start && sp->end <= f[h].end)) {
                        f[h].dropped = 1;
                        break;
                    }
                }
            }
        }
    }
    /* 4. vetoes of a code with hits left: the whole code (scope answer) or overlapping hits */
    if (vetoes->len) {
        Hit *v = vetoes->data;
        for (Py_ssize_t h = 0; h < nf; h++) {
            if (f[h].dropped) continue;
            int32_t code = f[h].code;
            int whole = 0, overlap = 0;
            for (Py_ssize_t q = 0; q < vetoes->len; q++) {
                if (v[q].code != code) continue;
                if (s->scope_answer[v[q].pid]) { whole = 1; break; }
                overlap |= f[h].start < v[q].end && v[q].start < f[h].end;
            }
            if (whole) {
                for (Py_ssize_t g = 0; g < nf; g++)
                    if (f[g].code == code) f[g].dropped = 1;
            } else if (overlap) f[h].dropped = 1;
        }
    }
    /* 5. codes in order, hits by position; a tie of two regex spans goes to the reference */
    Py_ssize_t nk = 0;
    for (Py_ssize_t h = 0; h < nf; h++)
        if (!f[h].dropped) f[nk++] = f[h];
    if (!nk) return 0;
    if (nk > 1) qsort(f, (size_t)nk, sizeof(Hit), cmp_hit);
    for (Py_ssize_t h = 1; h < nk; h++) {
        if (f[h].code == f[h - 1].code && f[h].start == f[h - 1].start && f[h].end == f[h - 1].end &&
            s->is_regex[f[h].pid] && s->is_regex[f[h - 1].pid]) {
            PyObject *res = PyObject_CallFunction(fallback, "n", k);
            if (!res) return -1;
            PyObject *seq = PySequence_Fast(res, "fallback must return a list");
            Py_DECREF(res);
            if (!seq) return -1;
            for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
                PyObject *ev;
                Py_ssize_t code, cnt;
                if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "nnU", &code, &cnt, &ev)) {
                    Py_DECREF(seq); return -1;
                }
                Py_INCREF(ev);
                if (emit(rows, k, code, cnt, ev) < 0) { Py_DECREF(seq); return -1; }
            }
            Py_DECREF(seq);
            return 0;
        }
    }
    char num[64];
    const int text_ascii = PyUnicode_IS_ASCII(text);
    for (Py_ssize_t a = 0; a < nk;) {
        Py_ssize_t b = a;
        int ascii = text_ascii;
        while (b < nk && f[b].code == f[a].code) ascii &= s->head_ascii[f[b++].pid];
        PyObject *ev = ascii ? evidence_ascii(s, f + a, b - a, PyUnicode_1BYTE_DATA(text))
                             : NULL;
        if (ascii) {
            if (!ev || emit(rows, k, f[a].code, b - a, ev) < 0) return -1;
            a = b;
            continue;
        }
        Py_ssize_t at = 0;
        if (out_reserve(s, 1) < 0) return -1;
        s->out[at++] = '[';
        for (Py_ssize_t h = a; h < b; h++) {
            if (h > a && (at = put_ascii(s, at, ", ")) < 0) return -1;
            if ((at = put_str(s, at, s->heads[f[h].pid])) < 0) return -1;
            if ((at = put_json(s, at, tkind, tdata, f[h].start, f[h].end)) < 0) return -1;
            num[put_pos(num, f[h].start, f[h].end)] = 0;
            if ((at = put_ascii(s, at, num)) < 0) return -1;
        }
        if ((at = put_ascii(s, at, "]")) < 0) return -1;
        ev = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, s->out, at);
        if (!ev) return -1;
        if (emit(rows, k, f[a].code, b - a, ev) < 0) return -1;
        a = b;
    }
    return 0;
}

static PyObject *vec_bytes(Vec *v) {
    return PyBytes_FromStringAndSize(v->data ? v->data : "", v->len * v->item);
}

static PyObject *Scanner_code_chunk(Scanner *s, PyObject *args) {
    PyObject *list, *fallback;
    if (!PyArg_ParseTuple(args, "O!O", &PyList_Type, &list, &fallback)) return NULL;
    if (s->state != 2) { PyErr_SetString(PyExc_RuntimeError, "Scanner not initialised"); return NULL; }
    if (s->busy) {
        PyErr_SetString(PyExc_RuntimeError, "Scanner.code_chunk is not reentrant");
        return NULL;
    }
    Py_ssize_t ntexts = PyList_GET_SIZE(list);
    for (Py_ssize_t k = 0; k < ntexts; k++) {
        PyObject *t = PyList_GET_ITEM(list, k);
        if (PyUnicode_Check(t) && PyUnicode_GET_LENGTH(t) >= INT32_MAX) {
            PyErr_SetString(PyExc_ValueError, "answer too long");
            return NULL;
        }
    }
    /* a tuple: Python code that runs during the scan (regexes, the fallback) cannot change it */
    PyObject *texts = PyList_AsTuple(list);
    if (!texts) return NULL;
    s->busy = 1;
    Rows rows = {VEC(int64_t), VEC(int64_t), VEC(int64_t), PyList_New(0)};
    Vec *spans = PyMem_Calloc((size_t)s->nph + 1, sizeof(Vec));
    uint8_t *done = PyMem_Calloc((size_t)s->nph + 1, 1);
    PyObject *result = NULL;
    if (!rows.evidence || !spans || !done) { PyErr_NoMemory(); goto out; }
    for (int32_t i = 0; i < s->nph; i++) spans[i].item = sizeof(Hit);
    for (Py_ssize_t k = 0; k < ntexts; k++) {
        PyObject *t = PyTuple_GET_ITEM(texts, k);
        if (!PyUnicode_Check(t) || PyUnicode_GET_LENGTH(t) == 0) continue; /* no answer */
        if (code_answer(s, k, t, fallback, &rows, spans, done) < 0) goto out;
    }
    result = Py_BuildValue("NNNO", vec_bytes(&rows.ks), vec_bytes(&rows.codes),
                           vec_bytes(&rows.nev), rows.evidence);
out:
    s->busy = 0;
    Py_DECREF(texts);
    PyMem_Free(rows.ks.data); PyMem_Free(rows.codes.data); PyMem_Free(rows.nev.data);
    Py_XDECREF(rows.evidence);
    if (spans) for (int32_t i = 0; i < s->nph; i++) PyMem_Free(spans[i].data);
    PyMem_Free(spans);
    PyMem_Free(done);
    return result;
}

static PyObject *Scanner_stats(Scanner *s, PyObject *Py_UNUSED(ignored)) {
    return Py_BuildValue("{s:i,s:i,s:i,s:n,s:n,s:n}", "states", s->nstates, "symbols", s->nsym,
                         "keys", s->nkeys, "table_bytes",
                         (Py_ssize_t)s->nstates * s->nsym * (Py_ssize_t)sizeof(int32_t),
                         "regex_matches_tried", s->n_match,
                         "regex_matches_skipped", s->n_match_skipped);
}

static PyMethodDef Scanner_methods[] = {
    {"code_chunk", (PyCFunction)Scanner_code_chunk, METH_VARARGS,
     "code_chunk(texts, fallback) -> (ks, codes, n_evidence, evidence)"},
    {"stats", (PyCFunction)Scanner_stats, METH_NOARGS, "automaton size"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ScannerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "pipeline.core._scanner.Scanner",
    .tp_basicsize = sizeof(Scanner),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The keyword coder's batch scan (see matcher.py).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Scanner_init,
    .tp_dealloc = (destructor)Scanner_dealloc,
    .tp_methods = Scanner_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_scanner", "The keyword coder's batch scan, in C.", -1, NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__scanner(void) {
    if (PyType_Ready(&ScannerType) < 0) return NULL;
    str_span = PyUnicode_InternFromString("span");
    str_lower = PyUnicode_InternFromString("lower");
    if (!str_span || !str_lower) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&ScannerType);
    if (PyModule_AddObject(m, "Scanner", (PyObject *)&ScannerType) < 0) {
        Py_DECREF(&ScannerType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
