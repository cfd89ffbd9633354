/* The sizing walk of dagprof.sizing in C: the same traversal, the same rules, the same numbers.
 *
 * Why: on a 5k-file SCons null build the Python walk took ~1.7 s and its `seen` set of object ids
 * (a hash table plus one int object per id, ~60 bytes an entry) raised the build's peak RSS by
 * ~8 MiB.  Here `seen` is a bitmap over the address space, one bit per 16 bytes (no two live
 * objects start within 16 bytes of each other: every object is at least 16 bytes), allocated in
 * 8 KiB pieces per MiB of address space actually touched: its memory is at most 1/128 of the heap
 * it covers, whatever the number of objects.
 *
 * Nothing here runs user code: referents come from tp_traverse (what gc.get_referents calls),
 * sizes from _PySys_GetSizeOf for types whose __sizeof__ is C (sys.getsizeof) or from the
 * caller's object.__sizeof__ plus the GC header otherwise; slot values are read at the member
 * descriptor's offset (what the descriptor itself does); how a type is treated is decided by the
 * caller's `classify` (dagprof code) once per type.  Every object on the walk's stack is held by a
 * strong reference, so a single-referenced object reads refcount 2 (its container and the stack).
 * profiler/sizing.py holds the pure-Python twin (tests compare the two). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

/* kinds, as in sizing.py */
enum { K_SKIP = 0, K_STOP = 1, K_LEAF = 2, K_FOLLOW = 3, K_LEAF_PY = 4, K_FOLLOW_PY = 5, K_FOLLOW_DICT = 6 };

#define REGION_SHIFT 20                     /* 1 MiB of address space per bitmap piece */
#define CELL_SHIFT 4                        /* one bit per 16 bytes */
#define REGION_WORDS ((1u << (REGION_SHIFT - CELL_SHIFT)) / 64u)   /* 1024 uint64 = 8 KiB */

typedef struct {
    uintptr_t key;      /* address >> REGION_SHIFT */
    uint64_t *bits;     /* NULL: empty slot */
} Region;

typedef struct {
    PyTypeObject *type; /* strong reference; NULL: empty slot */
    int kind;
} KindSlot;

typedef struct {
    PyObject_HEAD
    Region *regions;
    size_t rcap, rused;
    Py_ssize_t count;       /* objects marked */
    KindSlot *kinds;
    size_t kcap, kused;
    PyObject **stack;       /* strong references */
    size_t scap, slen, speak;
    PyObject *classify;     /* type -> kind */
    PyObject *object_sizeof;/* object.__sizeof__ */
    PyObject *empties;      /* tuple of the container types whose emptiness is reported */
    Py_ssize_t gc_header;
    Py_ssize_t single;      /* refcount of an object held by one container (2), 0: remember all */
} Walker;

/* ---- the seen bitmap ------------------------------------------------------------------------ */

static inline size_t
rhash(uintptr_t key, size_t cap)
{
    return (size_t)((key * (uintptr_t)0x9E3779B97F4A7C15ull) >> 7) & (cap - 1);
}

static uint64_t *
region_find(Walker *w, uintptr_t key)
{
    if (w->rcap == 0) return NULL;
    size_t i = rhash(key, w->rcap);
    for (;;) {
        Region *r = &w->regions[i];
        if (r->bits == NULL) return NULL;
        if (r->key == key) return r->bits;
        i = (i + 1) & (w->rcap - 1);
    }
}

static int
region_insert_raw(Region *tab, size_t cap, uintptr_t key, uint64_t *bits)
{
    size_t i = rhash(key, cap);
    while (tab[i].bits != NULL) i = (i + 1) & (cap - 1);
    tab[i].key = key;
    tab[i].bits = bits;
    return 0;
}

static uint64_t *
region_get(Walker *w, uintptr_t key)
{
    uint64_t *bits = region_find(w, key);
    if (bits != NULL) return bits;
    if ((w->rused + 1) * 2 > w->rcap) {
        size_t ncap = w->rcap ? w->rcap * 2 : 64;
        Region *nt = PyMem_Calloc(ncap, sizeof(Region));
        if (nt == NULL) { PyErr_NoMemory(); return NULL; }
        for (size_t i = 0; i < w->rcap; i++)
            if (w->regions[i].bits != NULL)
                region_insert_raw(nt, ncap, w->regions[i].key, w->regions[i].bits);
        PyMem_Free(w->regions);
        w->regions = nt;
        w->rcap = ncap;
    }
    bits = PyMem_Calloc(REGION_WORDS, sizeof(uint64_t));
    if (bits == NULL) { PyErr_NoMemory(); return NULL; }
    region_insert_raw(w->regions, w->rcap, key, bits);
    w->rused++;
    return bits;
}

static inline int
seen_has(Walker *w, const void *p)
{
    uintptr_t a = (uintptr_t)p;
    uint64_t *bits = region_find(w, a >> REGION_SHIFT);
    if (bits == NULL) return 0;
    uintptr_t cell = (a & ((1u << REGION_SHIFT) - 1)) >> CELL_SHIFT;
    return (bits[cell >> 6] >> (cell & 63)) & 1;
}

/* 1: newly marked, 0: was marked, -1: error */
static inline int
seen_add(Walker *w, const void *p)
{
    uintptr_t a = (uintptr_t)p;
    uint64_t *bits = region_get(w, a >> REGION_SHIFT);
    if (bits == NULL) return -1;
    uintptr_t cell = (a & ((1u << REGION_SHIFT) - 1)) >> CELL_SHIFT;
    uint64_t m = (uint64_t)1 << (cell & 63);
    if (bits[cell >> 6] & m) return 0;
    bits[cell >> 6] |= m;
    w->count++;
    return 1;
}

/* ---- kinds per type ------------------------------------------------------------------------- */

static int
kind_of(Walker *w, PyTypeObject *t)
{
    if (w->kcap) {
        size_t i = rhash((uintptr_t)t >> 4, w->kcap);
        for (;;) {
            KindSlot *s = &w->kinds[i];
            if (s->type == NULL) break;
            if (s->type == t) return s->kind;
            i = (i + 1) & (w->kcap - 1);
        }
    }
    PyObject *r = PyObject_CallOneArg(w->classify, (PyObject *)t);
    if (r == NULL) return -1;
    long k = PyLong_AsLong(r);
    Py_DECREF(r);
    if (k == -1 && PyErr_Occurred()) return -1;
    if ((w->kused + 1) * 2 > w->kcap) {
        size_t ncap = w->kcap ? w->kcap * 2 : 64;
        KindSlot *nt = PyMem_Calloc(ncap, sizeof(KindSlot));
        if (nt == NULL) { PyErr_NoMemory(); return -1; }
        for (size_t i = 0; i < w->kcap; i++) {
            KindSlot *s = &w->kinds[i];
            if (s->type == NULL) continue;
            size_t j = rhash((uintptr_t)s->type >> 4, ncap);
            while (nt[j].type != NULL) j = (j + 1) & (ncap - 1);
            nt[j] = *s;
        }
        PyMem_Free(w->kinds);
        w->kinds = nt;
        w->kcap = ncap;
    }
    size_t j = rhash((uintptr_t)t >> 4, w->kcap);
    while (w->kinds[j].type != NULL) j = (j + 1) & (w->kcap - 1);
    Py_INCREF(t);
    w->kinds[j].type = t;
    w->kinds[j].kind = (int)k;
    w->kused++;
    return (int)k;
}

/* ---- sizes and referents -------------------------------------------------------------------- */

static Py_ssize_t
c_sizeof(PyObject *o)
{
    size_t n = _PySys_GetSizeOf(o);
    if (n == (size_t)-1 && PyErr_Occurred()) return -1;
    return (Py_ssize_t)n;
}

static Py_ssize_t
py_sizeof(Walker *w, PyObject *o)
{
    /* a type whose __sizeof__ is Python: the C-level object.__sizeof__ plus the GC header */
    PyObject *r = PyObject_CallOneArg(w->object_sizeof, o);
    if (r == NULL) return -1;
    Py_ssize_t n = PyLong_AsSsize_t(r);
    Py_DECREF(r);
    if (n == -1 && PyErr_Occurred()) return -1;
    if (PyType_HasFeature(Py_TYPE(o), Py_TPFLAGS_HAVE_GC)) n += w->gc_header;
    return n;
}

static int
push(Walker *w, PyObject *o)
{
    if (w->slen == w->scap) {
        size_t ncap = w->scap ? w->scap * 2 : 1024;
        PyObject **ns = PyMem_Realloc(w->stack, ncap * sizeof(PyObject *));
        if (ns == NULL) { PyErr_NoMemory(); return -1; }
        w->stack = ns;
        w->scap = ncap;
    }
    Py_INCREF(o);
    w->stack[w->slen++] = o;
    if (w->slen > w->speak) w->speak = w->slen;
    return 0;
}

/* The kind already decided for t, or -1 when it is not known yet (nothing is called). */
static inline int
kind_cached(Walker *w, PyTypeObject *t)
{
    if (w->kcap == 0) return -1;
    size_t i = rhash((uintptr_t)t >> 4, w->kcap);
    for (;;) {
        KindSlot *s = &w->kinds[i];
        if (s->type == NULL) return -1;
        if (s->type == t) return s->kind;
        i = (i + 1) & (w->kcap - 1);
    }
}

/* A referent the walk would skip when popping it (already marked, or of a type never counted) is not
 * pushed: the same numbers (marks are never removed, a type's kind never changes, and an object left off
 * is never looked at, so no refcount the walk reads changes), but a much shallower stack: a dict of 16k
 * nodes (SCons' lookup table) pushed 32k entries, half of them claimed nodes. */
static int
visit_push(PyObject *o, void *arg)
{
    Walker *w = (Walker *)arg;
    if (seen_has(w, o)) return 0;
    int k = kind_cached(w, Py_TYPE(o));
    if (k >= 0 && k <= K_STOP) return 0;
    return push(w, o);
}

/* what gc.get_referents(o) lists, in the same order, pushed */
static int
push_referents(Walker *w, PyObject *o)
{
    if (!PyObject_IS_GC(o)) return 0;
    traverseproc tr = Py_TYPE(o)->tp_traverse;
    if (tr == NULL) return 0;
    return tr(o, visit_push, w);
}

static int
push_dict_keys(Walker *w, PyObject *d)
{
    Py_ssize_t pos = 0;
    PyObject *key;
    while (PyDict_Next(d, &pos, &key, NULL))
        if (visit_push(key, w) < 0) return -1;
    return 0;
}

static void
clear_stack(Walker *w)
{
    while (w->slen) {
        PyObject *o = w->stack[--w->slen];
        Py_DECREF(o);
    }
}

/* Bytes reachable from `value` that nothing walked before has claimed (Sizer.exclusive). */
static Py_ssize_t
walk(Walker *w, PyObject *value, int remember)
{
    if (seen_has(w, value)) return 0;
    int k = kind_of(w, Py_TYPE(value));
    if (k < 0) return -1;
    if (k <= K_STOP) return 0;
    if (remember && seen_add(w, value) < 0) return -1;
    Py_ssize_t total, n;
    if (k == K_LEAF) return c_sizeof(value);
    if (k == K_LEAF_PY) return py_sizeof(w, value);
    total = (k == K_FOLLOW_PY) ? py_sizeof(w, value) : c_sizeof(value);
    if (total < 0) return -1;
    size_t base = w->slen;
    if (push_referents(w, value) < 0) goto fail;
    if (k == K_FOLLOW_DICT && push_dict_keys(w, value) < 0) goto fail;
    while (w->slen > base) {
        PyObject *o = w->stack[--w->slen];   /* the stack's reference is now ours */
        if (seen_has(w, o)) { Py_DECREF(o); continue; }
        k = kind_of(w, Py_TYPE(o));
        if (k < 0) { Py_DECREF(o); goto fail; }
        if (k <= K_STOP) { Py_DECREF(o); continue; }
        /* held by one container only (plus our reference): it cannot be reached again */
        if (Py_REFCNT(o) > w->single && seen_add(w, o) < 0) { Py_DECREF(o); goto fail; }
        int err = 0;
        switch (k) {
        case K_LEAF:
            n = c_sizeof(o);
            break;
        case K_FOLLOW:
            n = c_sizeof(o);
            if (n >= 0) err = push_referents(w, o);
            break;
        case K_FOLLOW_DICT:
            n = c_sizeof(o);
            if (n >= 0) err = push_referents(w, o);
            if (n >= 0 && !err) err = push_dict_keys(w, o);
            break;
        case K_FOLLOW_PY:
            n = py_sizeof(w, o);
            if (n >= 0) err = push_referents(w, o);
            break;
        default: /* K_LEAF_PY */
            n = py_sizeof(w, o);
            break;
        }
        Py_DECREF(o);
        if (n < 0 || err) goto fail;
        total += n;
    }
    return total;
fail:
    while (w->slen > base) {
        PyObject *o = w->stack[--w->slen];
        Py_DECREF(o);
    }
    return -1;
}

/* ---- KeySet: the equality keys of one attribute's values (duplicate statistics) ------------- */

/* The same membership as a Python set (hash, then identity or ==; the keys are builtin values made
 * by value_key, so no user __eq__/__hash__ runs), in a table of (hash, key) at most 2/3 full that
 * doubles: a Python set below 50k entries grows four-fold and sits 15-60% full, which made three
 * attributes of a 5k-file build's File nodes cost 512 KiB each for 5-10k distinct values. */
typedef struct {
    Py_hash_t hash;
    PyObject *key;      /* strong reference; NULL: empty slot */
} KeySlot;

typedef struct {
    PyObject_HEAD
    KeySlot *table;
    size_t cap, used;
} KeySet;

static PyTypeObject KeySetType;

/* 1: was there, 0: added, -1: error (TypeError when the key is unhashable, as a set would raise) */
static int
keyset_add(KeySet *ks, PyObject *key, int add)
{
    Py_hash_t h = PyObject_Hash(key);
    if (h == -1 && PyErr_Occurred()) return -1;
    if (ks->cap) {
        size_t i = (size_t)h & (ks->cap - 1), perturb = (size_t)h;
        for (;;) {
            KeySlot *e = &ks->table[i];
            if (e->key == NULL) break;
            if (e->key == key) return 1;
            if (e->hash == h) {
                PyObject *k = e->key;
                Py_INCREF(k);
                int eq = PyObject_RichCompareBool(k, key, Py_EQ);
                Py_DECREF(k);
                if (eq < 0) return -1;
                if (eq) return 1;
            }
            perturb >>= 5;
            i = (i * 5 + 1 + perturb) & (ks->cap - 1);
        }
    }
    if (!add) return 0;
    if ((ks->used + 1) * 3 > ks->cap * 2) {   /* at most 2/3 full, as a dict */
        size_t ncap = ks->cap ? ks->cap * 2 : 8;
        KeySlot *nt = PyMem_Calloc(ncap, sizeof(KeySlot));
        if (nt == NULL) { PyErr_NoMemory(); return -1; }
        for (size_t j = 0; j < ks->cap; j++) {
            KeySlot *e = &ks->table[j];
            if (e->key == NULL) continue;
            size_t i = (size_t)e->hash & (ncap - 1), perturb = (size_t)e->hash;
            while (nt[i].key != NULL) {
                perturb >>= 5;
                i = (i * 5 + 1 + perturb) & (ncap - 1);
            }
            nt[i] = *e;
        }
        PyMem_Free(ks->table);
        ks->table = nt;
        ks->cap = ncap;
    }
    size_t i = (size_t)h & (ks->cap - 1), perturb = (size_t)h;
    while (ks->table[i].key != NULL) {
        perturb >>= 5;
        i = (i * 5 + 1 + perturb) & (ks->cap - 1);
    }
    Py_INCREF(key);
    ks->table[i].key = key;
    ks->table[i].hash = h;
    ks->used++;
    return 0;
}

static int
KeySet_traverse(KeySet *ks, visitproc visit, void *arg)
{
    for (size_t i = 0; i < ks->cap; i++) Py_VISIT(ks->table[i].key);
    return 0;
}

static int
KeySet_clear(KeySet *ks)
{
    for (size_t i = 0; i < ks->cap; i++) Py_CLEAR(ks->table[i].key);
    ks->used = 0;
    return 0;
}

static void
KeySet_dealloc(KeySet *ks)
{
    PyObject_GC_UnTrack(ks);
    KeySet_clear(ks);
    PyMem_Free(ks->table);
    Py_TYPE(ks)->tp_free((PyObject *)ks);
}

static PyObject *
KeySet_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (!PyArg_ParseTuple(args, "")) return NULL;
    return type->tp_alloc(type, 0);
}

static PyObject *
KeySet_add(KeySet *ks, PyObject *key)
{
    if (keyset_add(ks, key, 1) < 0) return NULL;
    Py_RETURN_NONE;
}

static int
KeySet_contains(KeySet *ks, PyObject *key)
{
    return keyset_add(ks, key, 0);
}

static Py_ssize_t
KeySet_len(KeySet *ks)
{
    return (Py_ssize_t)ks->used;
}

static PyObject *
KeySet_sizeof(KeySet *ks, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSize_t(sizeof(KeySet) + ks->cap * sizeof(KeySlot));
}

static PyMethodDef KeySet_methods[] = {
    {"add", (PyCFunction)KeySet_add, METH_O, "Add a key (TypeError if unhashable)."},
    {"__sizeof__", (PyCFunction)KeySet_sizeof, METH_NOARGS, "Memory of the table."},
    {NULL}
};

static PySequenceMethods KeySet_as_sequence = {
    .sq_length = (lenfunc)KeySet_len,
    .sq_contains = (objobjproc)KeySet_contains,
};

static PyTypeObject KeySetType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dagprof._fastsize.KeySet",
    .tp_basicsize = sizeof(KeySet),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = KeySet_new,
    .tp_dealloc = (destructor)KeySet_dealloc,
    .tp_traverse = (traverseproc)KeySet_traverse,
    .tp_clear = (inquiry)KeySet_clear,
    .tp_methods = KeySet_methods,
    .tp_as_sequence = &KeySet_as_sequence,
    .tp_doc = "A set of equality keys (add, in, len) in a compact table.",
};

/* ---- per-type accumulator of slot statistics ------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    Py_ssize_t n;
    Py_ssize_t *offsets;
    long long *set, *bytes, *empty, *empty_bytes, *unkeyable, *dup_bytes;
    PyObject *keysets;      /* tuple of n KeySets (duplicate statistics), or None */
    PyObject *owners;       /* tuple of the types that define each member: obj must be an instance of all */
    PyObject *checked;      /* the last type whose instances were found to be instances of every owner */
} SlotAcc;

static void
SlotAcc_dealloc(SlotAcc *self)
{
    PyMem_Free(self->offsets);
    PyMem_Free(self->set);
    Py_XDECREF(self->keysets);
    Py_XDECREF(self->owners);
    Py_XDECREF(self->checked);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject SlotAccType;

/* SlotAcc(members, keysets): members are slot member descriptors (T_OBJECT_EX); keysets a list of
 * one KeySet per member, or None.  TypeError when a member is not such a descriptor. */
static PyObject *
SlotAcc_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *members, *keysets;
    if (!PyArg_ParseTuple(args, "O!O", &PyTuple_Type, &members, &keysets)) return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(members);
    if (keysets != Py_None && (!PyList_Check(keysets) || PyList_GET_SIZE(keysets) != n)) {
        PyErr_SetString(PyExc_TypeError, "keysets: a list of one KeySet per member, or None");
        return NULL;
    }
    if (keysets != Py_None)
        for (Py_ssize_t i = 0; i < n; i++)
            if (Py_TYPE(PyList_GET_ITEM(keysets, i)) != &KeySetType) {
                PyErr_SetString(PyExc_TypeError, "keysets: KeySet objects");
                return NULL;
            }
    SlotAcc *self = (SlotAcc *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->owners = PyTuple_New(n);
    if (self->owners == NULL) { Py_DECREF(self); return NULL; }
    self->n = n;
    self->offsets = PyMem_Calloc(n ? n : 1, sizeof(Py_ssize_t));
    self->set = PyMem_Calloc(6 * (n ? n : 1), sizeof(long long));
    if (self->offsets == NULL || self->set == NULL) { Py_DECREF(self); return PyErr_NoMemory(); }
    self->bytes = self->set + n;
    self->empty = self->bytes + n;
    self->empty_bytes = self->empty + n;
    self->unkeyable = self->empty_bytes + n;
    self->dup_bytes = self->unkeyable + n;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *m = PyTuple_GET_ITEM(members, i);
        if (Py_TYPE(m) != &PyMemberDescr_Type) {
            PyErr_SetString(PyExc_TypeError, "not a member descriptor");
            Py_DECREF(self);
            return NULL;
        }
        PyMemberDef *d = ((PyMemberDescrObject *)m)->d_member;
        if (d->type != T_OBJECT_EX) {
            PyErr_SetString(PyExc_TypeError, "not an object slot");
            Py_DECREF(self);
            return NULL;
        }
        self->offsets[i] = d->offset;
        PyObject *owner = (PyObject *)((PyDescrObject *)m)->d_type;
        Py_INCREF(owner);
        PyTuple_SET_ITEM(self->owners, i, owner);
    }
    if (keysets == Py_None) {
        Py_INCREF(keysets);
        self->keysets = keysets;
    } else {
        self->keysets = PyList_AsTuple(keysets);   /* a copy the caller cannot change under us */
        if (self->keysets == NULL) { Py_DECREF(self); return NULL; }
    }
    return (PyObject *)self;
}

static PyObject *
SlotAcc_rows(SlotAcc *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *out = PyList_New(self->n);
    if (out == NULL) return NULL;
    for (Py_ssize_t i = 0; i < self->n; i++) {
        PyObject *row = Py_BuildValue("(LLLLLL)", self->set[i], self->bytes[i], self->empty[i],
                                      self->empty_bytes[i], self->unkeyable[i], self->dup_bytes[i]);
        if (row == NULL) { Py_DECREF(out); return NULL; }
        PyList_SET_ITEM(out, i, row);
    }
    return out;
}

static PyObject *
SlotAcc_nbytes(SlotAcc *self, void *closure)
{
    return PyLong_FromSsize_t((Py_ssize_t)sizeof(SlotAcc) + self->n * (Py_ssize_t)(sizeof(Py_ssize_t) + 6 * sizeof(long long)));
}

static PyMethodDef SlotAcc_methods[] = {
    {"rows", (PyCFunction)SlotAcc_rows, METH_NOARGS,
     "Per member: (set, bytes, empty, empty_bytes, unkeyable, dup_bytes)."},
    {NULL}
};

static PyGetSetDef SlotAcc_getset[] = {
    {"nbytes", (getter)SlotAcc_nbytes, NULL, "memory of this accumulator", NULL},
    {NULL}
};

static PyTypeObject SlotAccType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dagprof._fastsize.SlotAcc",
    .tp_basicsize = sizeof(SlotAcc),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = SlotAcc_new,
    .tp_dealloc = (destructor)SlotAcc_dealloc,
    .tp_methods = SlotAcc_methods,
    .tp_getset = SlotAcc_getset,
    .tp_doc = "Slot statistics of one owner type, filled by Walker.size_slots.",
};

/* ---- the Walker type ------------------------------------------------------------------------ */

static void
free_tables(Walker *w)
{
    clear_stack(w);
    for (size_t i = 0; i < w->rcap; i++) PyMem_Free(w->regions[i].bits);
    PyMem_Free(w->regions);
    w->regions = NULL;
    w->rcap = w->rused = 0;
    for (size_t i = 0; i < w->kcap; i++) Py_XDECREF(w->kinds[i].type);
    PyMem_Free(w->kinds);
    w->kinds = NULL;
    w->kcap = w->kused = 0;
    PyMem_Free(w->stack);
    w->stack = NULL;
    w->scap = 0;
}

static int
Walker_traverse(Walker *w, visitproc visit, void *arg)
{
    Py_VISIT(w->classify);
    Py_VISIT(w->object_sizeof);
    Py_VISIT(w->empties);
    for (size_t i = 0; i < w->slen; i++) Py_VISIT(w->stack[i]);
    return 0;
}

static int
Walker_clear(Walker *w)
{
    Py_CLEAR(w->classify);
    Py_CLEAR(w->object_sizeof);
    Py_CLEAR(w->empties);
    clear_stack(w);
    return 0;
}

static void
Walker_dealloc(Walker *w)
{
    PyObject_GC_UnTrack(w);
    Walker_clear(w);
    free_tables(w);
    Py_TYPE(w)->tp_free((PyObject *)w);
}

static PyTypeObject WalkerType;

static PyObject *
Walker_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kw[] = {"classify", "object_sizeof", "empties", "gc_header", "single", NULL};
    PyObject *classify, *object_sizeof, *empties;
    Py_ssize_t gc_header, single;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO!nn", kw, &classify, &object_sizeof,
                                     &PyTuple_Type, &empties, &gc_header, &single))
        return NULL;
    Walker *w = (Walker *)type->tp_alloc(type, 0);
    if (w == NULL) return NULL;
    Py_INCREF(classify); w->classify = classify;
    Py_INCREF(object_sizeof); w->object_sizeof = object_sizeof;
    Py_INCREF(empties); w->empties = empties;
    w->gc_header = gc_header;
    w->single = single;
    return (PyObject *)w;
}

static int
id_arg(PyObject *arg, void **p)
{
    *p = PyLong_AsVoidPtr(arg);
    if (*p == NULL && PyErr_Occurred()) return -1;
    return 0;
}

static PyObject *
Walker_add(Walker *w, PyObject *arg)
{
    void *p;
    if (id_arg(arg, &p) < 0 || seen_add(w, p) < 0) return NULL;
    Py_RETURN_NONE;
}

static int
Walker_contains(Walker *w, PyObject *arg)
{
    void *p;
    if (id_arg(arg, &p) < 0) return -1;
    return seen_has(w, p);
}

static Py_ssize_t
Walker_len(Walker *w)
{
    return w->count;
}

static PyObject *
Walker_update(Walker *w, PyObject *iterable)
{
    /* ids, like set.update(map(id, objects)) */
    PyObject *it = PyObject_GetIter(iterable);
    if (it == NULL) return NULL;
    PyObject *x;
    while ((x = PyIter_Next(it)) != NULL) {
        void *p;
        int bad = id_arg(x, &p) < 0 || seen_add(w, p) < 0;
        Py_DECREF(x);
        if (bad) { Py_DECREF(it); return NULL; }
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) return NULL;
    Py_RETURN_NONE;
}

static PyObject *
Walker_claim(Walker *w, PyObject *iterable)
{
    /* objects: their addresses are marked */
    PyObject *it = PyObject_GetIter(iterable);
    if (it == NULL) return NULL;
    PyObject *x;
    while ((x = PyIter_Next(it)) != NULL) {
        int bad = seen_add(w, x) < 0;
        Py_DECREF(x);
        if (bad) { Py_DECREF(it); return NULL; }
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) return NULL;
    Py_RETURN_NONE;
}

static PyObject *
Walker_copy(Walker *w, PyObject *Py_UNUSED(ignored))
{
    Walker *c = (Walker *)WalkerType.tp_alloc(&WalkerType, 0);
    if (c == NULL) return NULL;
    Py_INCREF(w->classify); c->classify = w->classify;
    Py_INCREF(w->object_sizeof); c->object_sizeof = w->object_sizeof;
    Py_INCREF(w->empties); c->empties = w->empties;
    c->gc_header = w->gc_header;
    c->single = w->single;
    for (size_t i = 0; i < w->rcap; i++) {
        if (w->regions[i].bits == NULL) continue;
        uint64_t *bits = region_get(c, w->regions[i].key);
        if (bits == NULL) { Py_DECREF(c); return NULL; }
        memcpy(bits, w->regions[i].bits, REGION_WORDS * sizeof(uint64_t));
    }
    c->count = w->count;
    return (PyObject *)c;
}

static PyObject *
Walker_exclusive(Walker *w, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "exclusive(value, remember=True)");
        return NULL;
    }
    int remember = 1;
    if (nargs == 2 && (remember = PyObject_IsTrue(args[1])) < 0) return NULL;
    PyObject *v = args[0];
    Py_INCREF(v);
    Py_ssize_t n = walk(w, v, remember);
    Py_DECREF(v);
    if (n < 0) return NULL;
    return PyLong_FromSsize_t(n);
}

static inline int
is_scalar(PyTypeObject *t)
{
    return t == &PyUnicode_Type || t == &PyBytes_Type || t == &PyLong_Type || t == &PyFloat_Type
        || t == &PyBool_Type || t == &PyComplex_Type || t == Py_TYPE(Py_None);
}

static inline int
is_empty_type(Walker *w, PyTypeObject *t)
{
    Py_ssize_t n = PyTuple_GET_SIZE(w->empties);
    for (Py_ssize_t i = 0; i < n; i++)
        if ((PyObject *)t == PyTuple_GET_ITEM(w->empties, i)) return 1;
    return 0;
}

/* size_slots(obj, acc, keyfunc, unkeyable): Sizer.size_owner's loop over obj's set slots, into acc */
static PyObject *
Walker_size_slots(Walker *w, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || Py_TYPE(args[1]) != &SlotAccType) {
        PyErr_SetString(PyExc_TypeError, "size_slots(obj, acc, keyfunc, unkeyable)");
        return NULL;
    }
    PyObject *obj = args[0], *keyfunc = args[2], *unkeyable = args[3];
    SlotAcc *acc = (SlotAcc *)args[1];
    if ((PyObject *)Py_TYPE(obj) != acc->checked) {  /* slots are read at fixed offsets: only from instances of their types */
        for (Py_ssize_t i = 0; i < acc->n; i++)
            if (!PyObject_TypeCheck(obj, (PyTypeObject *)PyTuple_GET_ITEM(acc->owners, i))) {
                PyErr_SetString(PyExc_TypeError, "size_slots: obj is not an instance of the members' types");
                return NULL;
            }
        Py_INCREF(Py_TYPE(obj));
        Py_XSETREF(acc->checked, (PyObject *)Py_TYPE(obj));
    }
    int dup = acc->keysets != Py_None;
    for (Py_ssize_t i = 0; i < acc->n; i++) {
        PyObject *v = *(PyObject **)((char *)obj + acc->offsets[i]);
        if (v == NULL) continue;
        Py_INCREF(v);   /* the slot and us: a value held by its slot only reads `single` */
        PyTypeObject *tv = Py_TYPE(v);
        Py_ssize_t b;
        int empty = 0;
        acc->set[i]++;
        if (is_empty_type(w, tv)) {
            Py_ssize_t len = PyObject_Size(v);
            if (len < 0) goto fail;
            empty = len == 0;
        }
        if (seen_has(w, v)) {
            b = 0;
        } else if (is_scalar(tv) || empty) {   /* no referents followed: skip the walk */
            if (Py_REFCNT(v) > w->single && seen_add(w, v) < 0) goto fail;
            b = c_sizeof(v);
        } else {
            b = walk(w, v, Py_REFCNT(v) > w->single);
        }
        if (b < 0) goto fail;
        acc->bytes[i] += b;
        if (empty) {
            acc->empty[i]++;
            acc->empty_bytes[i] += b;
        }
        if (dup) {
            PyObject *key;
            if (is_scalar(tv)) {
                Py_INCREF(v);
                key = v;
            } else {
                key = PyObject_CallOneArg(keyfunc, v);
                if (key == NULL) goto fail;
            }
            if (key == unkeyable) {
                acc->unkeyable[i]++;
            } else {
                KeySet *keys = (KeySet *)PyTuple_GET_ITEM(acc->keysets, i);
                int r = keyset_add(keys, key, 1);
                if (r < 0) {
                    if (!PyErr_ExceptionMatches(PyExc_TypeError)) { Py_DECREF(key); goto fail; }
                    PyErr_Clear();
                    acc->unkeyable[i]++;
                } else if (r) {
                    acc->dup_bytes[i] += b;
                }
            }
            Py_DECREF(key);
        }
        Py_DECREF(v);
        continue;
    fail:
        Py_DECREF(v);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Walker_nbytes(Walker *w, void *closure)
{
    size_t n = sizeof(Walker) + w->rcap * sizeof(Region) + w->rused * REGION_WORDS * sizeof(uint64_t)
             + w->kcap * sizeof(KindSlot) + w->scap * sizeof(PyObject *);
    return PyLong_FromSize_t(n);
}

static PyObject *
Walker_regions(Walker *w, void *closure)
{
    return PyLong_FromSize_t(w->rused);
}

static PyObject *
Walker_stack_peak(Walker *w, void *closure)
{
    return PyLong_FromSize_t(w->speak);
}

static PyMethodDef Walker_methods[] = {
    {"add", (PyCFunction)Walker_add, METH_O, "Mark the object whose id() this is."},
    {"update", (PyCFunction)Walker_update, METH_O, "Mark every id in an iterable."},
    {"claim", (PyCFunction)Walker_claim, METH_O, "Mark every object of an iterable."},
    {"copy", (PyCFunction)Walker_copy, METH_NOARGS, "A walker with the same marks."},
    {"exclusive", (PyCFunction)(void (*)(void))Walker_exclusive, METH_FASTCALL,
     "exclusive(value, remember=True): bytes reachable from value not marked yet (marks them)."},
    {"size_slots", (PyCFunction)(void (*)(void))Walker_size_slots, METH_FASTCALL,
     "size_slots(obj, acc, keyfunc, unkeyable): size obj's set slots into acc."},
    {NULL}
};

static PyGetSetDef Walker_getset[] = {
    {"nbytes", (getter)Walker_nbytes, NULL, "memory of the walker's own tables", NULL},
    {"regions", (getter)Walker_regions, NULL, "bitmap pieces (MiB of address space touched)", NULL},
    {"stack_peak", (getter)Walker_stack_peak, NULL, "deepest stack so far", NULL},
    {NULL}
};

static PySequenceMethods Walker_as_sequence = {
    .sq_length = (lenfunc)Walker_len,
    .sq_contains = (objobjproc)Walker_contains,
};

static PyTypeObject WalkerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dagprof._fastsize.Walker",
    .tp_basicsize = sizeof(Walker),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = Walker_new,
    .tp_dealloc = (destructor)Walker_dealloc,
    .tp_traverse = (traverseproc)Walker_traverse,
    .tp_clear = (inquiry)Walker_clear,
    .tp_methods = Walker_methods,
    .tp_getset = Walker_getset,
    .tp_as_sequence = &Walker_as_sequence,
    .tp_doc = "The sizing walk with its seen bitmap (ids in, like a set of ids).",
};

static struct PyModuleDef fastsize_module = {
    PyModuleDef_HEAD_INIT, "_fastsize", "C fast path for dagprof.sizing", -1, NULL,
};

PyMODINIT_FUNC
PyInit__fastsize(void)
{
    if (PyType_Ready(&WalkerType) < 0 || PyType_Ready(&SlotAccType) < 0 || PyType_Ready(&KeySetType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&fastsize_module);
    if (m == NULL) return NULL;
    Py_INCREF(&WalkerType);
    if (PyModule_AddObject(m, "Walker", (PyObject *)&WalkerType) < 0) {
        Py_DECREF(&WalkerType);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&SlotAccType);
    if (PyModule_AddObject(m, "SlotAcc", (PyObject *)&SlotAccType) < 0) {
        Py_DECREF(&SlotAccType);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&KeySetType);
    if (PyModule_AddObject(m, "KeySet", (PyObject *)&KeySetType) < 0) {
        Py_DECREF(&KeySetType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
