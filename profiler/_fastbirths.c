/* The tracker's birth records (dagprof.tracker): id of a live instance -> its creation time, in C.
 *
 * Why: the Python record is a dict of int -> float, ~90 bytes an instance (the entry, the id's int
 * object, the float), held for every live node until the end of the build, when its heap is at its
 * peak: ~1.3 MB for the 16k nodes of a 5k-file SCons build.  Here one (address, time) pair of 16
 * bytes in a table at most 2/3 full (linear probing, deletion by backward shift).  Keys are the
 * integers id() returns; no object is referenced.  profiler/tracker.py uses a dict where this is not
 * built (DAGPROF_NO_C=1); tests run the tracker on both. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

typedef struct {
    uintptr_t key;      /* 0: empty (no object lives at address 0) */
    double t;
} Slot;

typedef struct {
    PyObject_HEAD
    Slot *table;
    size_t cap, used;   /* cap: a power of two, or 0 */
} BirthMap;

static inline size_t
slot_of(uintptr_t key, size_t cap)
{
    return (size_t)(((uint64_t)(key >> 4) * 0x9E3779B97F4A7C15ull) >> 29) & (cap - 1);
}

static Slot *
find(BirthMap *m, uintptr_t key)
{
    if (m->cap == 0) return NULL;
    size_t i = slot_of(key, m->cap);
    for (;;) {
        Slot *s = &m->table[i];
        if (s->key == key) return s;
        if (s->key == 0) return NULL;
        i = (i + 1) & (m->cap - 1);
    }
}

static int
grow(BirthMap *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 64;
    Slot *nt = PyMem_Calloc(ncap, sizeof(Slot));
    if (nt == NULL) { PyErr_NoMemory(); return -1; }
    for (size_t j = 0; j < m->cap; j++) {
        if (m->table[j].key == 0) continue;
        size_t i = slot_of(m->table[j].key, ncap);
        while (nt[i].key != 0) i = (i + 1) & (ncap - 1);
        nt[i] = m->table[j];
    }
    PyMem_Free(m->table);
    m->table = nt;
    m->cap = ncap;
    return 0;
}

static void
remove_at(BirthMap *m, size_t i)
{
    size_t mask = m->cap - 1, j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (m->table[j].key == 0) break;
        size_t k = slot_of(m->table[j].key, m->cap);
        /* the entry at j stays if its home k lies cyclically in (i, j] */
        if (i <= j ? (i < k && k <= j) : (i < k || k <= j)) continue;
        m->table[i] = m->table[j];
        i = j;
    }
    m->table[i].key = 0;
    m->used--;
}

static int
key_arg(PyObject *arg, uintptr_t *key)
{
    void *p = PyLong_AsVoidPtr(arg);
    if (p == NULL && PyErr_Occurred()) return -1;
    *key = (uintptr_t)p;
    if (*key == 0) {
        PyErr_SetString(PyExc_KeyError, "0");
        return -1;
    }
    return 0;
}

static PyObject *
BirthMap_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (!PyArg_ParseTuple(args, "")) return NULL;
    return type->tp_alloc(type, 0);
}

static void
BirthMap_dealloc(BirthMap *m)
{
    PyMem_Free(m->table);
    Py_TYPE(m)->tp_free((PyObject *)m);
}

static Py_ssize_t
BirthMap_len(BirthMap *m)
{
    return (Py_ssize_t)m->used;
}

static int
BirthMap_contains(BirthMap *m, PyObject *arg)
{
    uintptr_t key;
    if (key_arg(arg, &key) < 0) {
        if (PyErr_ExceptionMatches(PyExc_KeyError)) { PyErr_Clear(); return 0; }
        return -1;
    }
    return find(m, key) != NULL;
}

static PyObject *
BirthMap_subscript(BirthMap *m, PyObject *arg)
{
    uintptr_t key;
    if (key_arg(arg, &key) < 0) return NULL;
    Slot *s = find(m, key);
    if (s == NULL) { PyErr_SetObject(PyExc_KeyError, arg); return NULL; }
    return PyFloat_FromDouble(s->t);
}

static int
BirthMap_ass_subscript(BirthMap *m, PyObject *arg, PyObject *value)
{
    uintptr_t key;
    if (key_arg(arg, &key) < 0) return -1;
    double t = 0.0;
    if (value != NULL) {  /* converted first: a __float__ that touched this map cannot leave `s` stale */
        t = PyFloat_AsDouble(value);
        if (t == -1.0 && PyErr_Occurred()) return -1;
    }
    Slot *s = find(m, key);
    if (value == NULL) {
        if (s == NULL) { PyErr_SetObject(PyExc_KeyError, arg); return -1; }
        remove_at(m, (size_t)(s - m->table));
        return 0;
    }
    if (s != NULL) { s->t = t; return 0; }
    if ((m->used + 1) * 3 > m->cap * 2 && grow(m) < 0) return -1;
    size_t i = slot_of(key, m->cap);
    while (m->table[i].key != 0) i = (i + 1) & (m->cap - 1);
    m->table[i].key = key;
    m->table[i].t = t;
    m->used++;
    return 0;
}

static PyObject *
BirthMap_pop(BirthMap *m, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "pop(key[, default])");
        return NULL;
    }
    uintptr_t key;
    Slot *s = NULL;
    if (key_arg(args[0], &key) < 0) {
        if (!PyErr_ExceptionMatches(PyExc_KeyError)) return NULL;
        PyErr_Clear();
    } else {
        s = find(m, key);
    }
    if (s == NULL) {
        if (nargs == 2) { Py_INCREF(args[1]); return args[1]; }
        PyErr_SetObject(PyExc_KeyError, args[0]);
        return NULL;
    }
    double t = s->t;
    remove_at(m, (size_t)(s - m->table));
    return PyFloat_FromDouble(t);
}

static PyObject *
BirthMap_values(BirthMap *m, PyObject *Py_UNUSED(ignored))
{
    PyObject *out = PyList_New((Py_ssize_t)m->used);
    if (out == NULL) return NULL;
    Py_ssize_t n = 0;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->table[i].key == 0) continue;
        PyObject *x = PyFloat_FromDouble(m->table[i].t);
        if (x == NULL) { Py_DECREF(out); return NULL; }
        PyList_SET_ITEM(out, n++, x);
    }
    return out;
}

static PyObject *
BirthMap_sizeof(BirthMap *m, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSize_t(sizeof(BirthMap) + m->cap * sizeof(Slot));
}

static PyMethodDef BirthMap_methods[] = {
    {"pop", (PyCFunction)(void (*)(void))BirthMap_pop, METH_FASTCALL, "pop(id[, default]) -> time"},
    {"values", (PyCFunction)BirthMap_values, METH_NOARGS, "The times, as a list."},
    {"__sizeof__", (PyCFunction)BirthMap_sizeof, METH_NOARGS, "Memory of the table."},
    {NULL}
};

static PySequenceMethods BirthMap_as_sequence = {
    .sq_length = (lenfunc)BirthMap_len,
    .sq_contains = (objobjproc)BirthMap_contains,
};

static PyMappingMethods BirthMap_as_mapping = {
    .mp_length = (lenfunc)BirthMap_len,
    .mp_subscript = (binaryfunc)BirthMap_subscript,
    .mp_ass_subscript = (objobjargproc)BirthMap_ass_subscript,
};

static PyTypeObject BirthMapType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dagprof._fastbirths.BirthMap",
    .tp_basicsize = sizeof(BirthMap),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = BirthMap_new,
    .tp_dealloc = (destructor)BirthMap_dealloc,
    .tp_methods = BirthMap_methods,
    .tp_as_sequence = &BirthMap_as_sequence,
    .tp_as_mapping = &BirthMap_as_mapping,
    .tp_doc = "id -> float, like a dict of them (in, [], [] =, del, pop, values, len).",
};

static struct PyModuleDef fastbirths_module = {
    PyModuleDef_HEAD_INIT, "_fastbirths", "C fast path for dagprof.tracker's birth records", -1, NULL,
};

PyMODINIT_FUNC
PyInit__fastbirths(void)
{
    if (PyType_Ready(&BirthMapType) < 0) return NULL;
    PyObject *m = PyModule_Create(&fastbirths_module);
    if (m == NULL) return NULL;
    Py_INCREF(&BirthMapType);
    if (PyModule_AddObject(m, "BirthMap", (PyObject *)&BirthMapType) < 0) {
        Py_DECREF(&BirthMapType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
