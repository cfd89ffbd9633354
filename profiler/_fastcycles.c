/* The reference structure inside the garbage that dagprof.cycles parks with gc.DEBUG_SAVEALL, in C.
 *
 * Why: the Python analysis maps id(object) -> index in a dict (a dict entry, an int for the id and one
 * for the index: ~100 bytes an object), at the end of the build, when its heap is at its peak: 28k
 * parked objects after a 5k-file SCons build cost ~3 MiB there.  Here: one sorted array of
 * (address, index) pairs and one parent array, 24 bytes an object.  Referents come from tp_traverse
 * (what gc.get_referents calls), in the same order; no user code runs.  profiler/cycles.py holds the
 * pure-Python twin (tests compare the two). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct {
    uintptr_t addr;
    Py_ssize_t index;
} Entry;

typedef struct {
    PyObject_HEAD
    PyObject *objects;      /* a tuple of the parked objects (strong reference) */
    Py_ssize_t n;
    Entry *sorted;
    Py_ssize_t *parent;
} GarbageIndex;

static int
cmp_entry(const void *a, const void *b)
{
    uintptr_t x = ((const Entry *)a)->addr, y = ((const Entry *)b)->addr;
    return (x > y) - (x < y);
}

static Py_ssize_t
lookup(GarbageIndex *g, PyObject *o)
{
    uintptr_t a = (uintptr_t)o;
    Py_ssize_t lo = 0, hi = g->n;
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (g->sorted[mid].addr < a) lo = mid + 1;
        else hi = mid;
    }
    return (lo < g->n && g->sorted[lo].addr == a) ? g->sorted[lo].index : -1;
}

static int
GarbageIndex_traverse(GarbageIndex *g, visitproc visit, void *arg)
{
    Py_VISIT(g->objects);
    return 0;
}

static int
GarbageIndex_clear(GarbageIndex *g)
{
    Py_CLEAR(g->objects);
    return 0;
}

static void
GarbageIndex_dealloc(GarbageIndex *g)
{
    PyObject_GC_UnTrack(g);
    GarbageIndex_clear(g);
    PyMem_Free(g->sorted);
    PyMem_Free(g->parent);
    Py_TYPE(g)->tp_free((PyObject *)g);
}

static PyObject *
GarbageIndex_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *list;
    if (!PyArg_ParseTuple(args, "O!", &PyList_Type, &list)) return NULL;
    /* a tuple copy: the indexes stay valid whatever happens to the caller's list afterwards */
    PyObject *objects = PyList_AsTuple(list);
    if (objects == NULL) return NULL;
    GarbageIndex *g = (GarbageIndex *)type->tp_alloc(type, 0);
    if (g == NULL) { Py_DECREF(objects); return NULL; }
    g->objects = objects;
    g->n = PyTuple_GET_SIZE(objects);
    g->sorted = PyMem_Malloc((g->n ? g->n : 1) * sizeof(Entry));
    g->parent = PyMem_Malloc((g->n ? g->n : 1) * sizeof(Py_ssize_t));
    if (g->sorted == NULL || g->parent == NULL) { Py_DECREF(g); return PyErr_NoMemory(); }
    for (Py_ssize_t i = 0; i < g->n; i++) {
        g->sorted[i].addr = (uintptr_t)PyTuple_GET_ITEM(objects, i);
        g->sorted[i].index = i;
        g->parent[i] = i;
    }
    qsort(g->sorted, (size_t)g->n, sizeof(Entry), cmp_entry);
    return (PyObject *)g;
}

static Py_ssize_t
find(Py_ssize_t *parent, Py_ssize_t x)
{
    while (parent[x] != x) {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    return x;
}

typedef struct {
    GarbageIndex *g;
    Py_ssize_t from;
    PyObject *out;          /* edges(): list of indices; NULL: groups() unions */
} Visit;

static int
visit_ref(PyObject *o, void *arg)
{
    Visit *v = (Visit *)arg;
    Py_ssize_t j = lookup(v->g, o);
    if (j < 0) return 0;
    if (v->out != NULL) {
        PyObject *x = PyLong_FromSsize_t(j);
        if (x == NULL) return -1;
        int r = PyList_Append(v->out, x);
        Py_DECREF(x);
        return r;
    }
    Py_ssize_t ra = find(v->g->parent, v->from), rb = find(v->g->parent, j);
    if (ra != rb) v->g->parent[ra] = rb;
    return 0;
}

static int
traverse(GarbageIndex *g, Py_ssize_t i, Visit *v)
{
    PyObject *o = PyTuple_GET_ITEM(g->objects, i);
    if (!PyObject_IS_GC(o)) return 0;
    traverseproc tr = Py_TYPE(o)->tp_traverse;
    if (tr == NULL) return 0;
    v->from = i;
    return tr(o, visit_ref, v);
}

static PyObject *
GarbageIndex_groups(GarbageIndex *g, PyObject *Py_UNUSED(ignored))
{
    /* weakly connected groups: union over every reference between two parked objects */
    Visit v = {g, 0, NULL};
    for (Py_ssize_t i = 0; i < g->n; i++) {
        g->parent[i] = i;
    }
    for (Py_ssize_t i = 0; i < g->n; i++)
        if (traverse(g, i, &v) < 0) return NULL;
    Py_ssize_t groups = 0;
    for (Py_ssize_t i = 0; i < g->n; i++)
        if (find(g->parent, i) == i) groups++;
    return PyLong_FromSsize_t(groups);
}

static PyObject *
GarbageIndex_edges(GarbageIndex *g, PyObject *arg)
{
    Py_ssize_t i = PyLong_AsSsize_t(arg);
    if (i == -1 && PyErr_Occurred()) return NULL;
    if (i < 0 || i >= g->n) {
        PyErr_SetString(PyExc_IndexError, "edges: index out of range");
        return NULL;
    }
    PyObject *out = PyList_New(0);
    if (out == NULL) return NULL;
    Visit v = {g, i, out};
    if (traverse(g, i, &v) < 0) { Py_DECREF(out); return NULL; }
    return out;
}

static PyObject *
GarbageIndex_nbytes(GarbageIndex *g, void *closure)
{
    return PyLong_FromSsize_t((Py_ssize_t)sizeof(GarbageIndex) + g->n * (Py_ssize_t)(sizeof(Entry) + sizeof(Py_ssize_t)));
}

static PyMethodDef GarbageIndex_methods[] = {
    {"groups", (PyCFunction)GarbageIndex_groups, METH_NOARGS, "Number of weakly connected groups."},
    {"edges", (PyCFunction)GarbageIndex_edges, METH_O,
     "Indices of the parked objects that object i refers to, in traversal order."},
    {NULL}
};

static PyGetSetDef GarbageIndex_getset[] = {
    {"nbytes", (getter)GarbageIndex_nbytes, NULL, "memory of the index", NULL},
    {NULL}
};

static PyTypeObject GarbageIndexType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dagprof._fastcycles.GarbageIndex",
    .tp_basicsize = sizeof(GarbageIndex),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = GarbageIndex_new,
    .tp_dealloc = (destructor)GarbageIndex_dealloc,
    .tp_traverse = (traverseproc)GarbageIndex_traverse,
    .tp_clear = (inquiry)GarbageIndex_clear,
    .tp_methods = GarbageIndex_methods,
    .tp_getset = GarbageIndex_getset,
    .tp_doc = "GarbageIndex(objects): references among a list of objects, by index.",
};

static struct PyModuleDef fastcycles_module = {
    PyModuleDef_HEAD_INIT, "_fastcycles", "C fast path for dagprof.cycles", -1, NULL,
};

PyMODINIT_FUNC
PyInit__fastcycles(void)
{
    if (PyType_Ready(&GarbageIndexType) < 0) return NULL;
    PyObject *m = PyModule_Create(&fastcycles_module);
    if (m == NULL) return NULL;
    Py_INCREF(&GarbageIndexType);
    if (PyModule_AddObject(m, "GarbageIndex", (PyObject *)&GarbageIndexType) < 0) {
        Py_DECREF(&GarbageIndexType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
