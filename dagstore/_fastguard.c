/* C fast path of dagstore.spill: the descriptor that guards a spillable attribute. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#ifdef __linux__
#include <errno.h>
#include <sys/mman.h>
#endif
/* ---- Guard: the spill layer's descriptor (dagstore.spill).  A slot holding a spill marker (an instance of
 * marker_type) is reloaded through a Python callback; any other value is returned straight from C, so
 * guarded attributes cost almost nothing while resident.  Optionally a None value is offered to a
 * reuse callback (a value reused from the previous build). */
typedef struct {
    PyObject_HEAD
    PyObject *wrapped;
    PyObject *owner;
    PyObject *name;
    PyObject *marker_type;
    PyObject *reload;     /* reload(obj, name, marker) -> value */
    PyObject *on_none;    /* on_none(obj, name) -> value, or None */
    descrgetfunc get;
    descrsetfunc set;
} Guard;

static int
Guard_init(Guard *self, PyObject *args, PyObject *kwds)
{
    PyObject *wrapped, *owner, *name, *marker_type, *reload, *on_none = Py_None;
    if (!PyArg_ParseTuple(args, "OOUOO|O", &wrapped, &owner, &name, &marker_type, &reload, &on_none))
        return -1;
    descrgetfunc g = Py_TYPE(wrapped)->tp_descr_get;
    descrsetfunc s = Py_TYPE(wrapped)->tp_descr_set;
    if (g == NULL || s == NULL) {
        PyErr_SetString(PyExc_TypeError, "Guard wraps data descriptors only");
        return -1;
    }
    if (!PyType_Check(marker_type)) {
        PyErr_SetString(PyExc_TypeError, "marker_type must be a type");
        return -1;
    }
    Py_INCREF(wrapped); Py_XSETREF(self->wrapped, wrapped);
    Py_INCREF(owner); Py_XSETREF(self->owner, owner);
    Py_INCREF(name); Py_XSETREF(self->name, name);
    Py_INCREF(marker_type); Py_XSETREF(self->marker_type, marker_type);
    Py_INCREF(reload); Py_XSETREF(self->reload, reload);
    Py_INCREF(on_none); Py_XSETREF(self->on_none, on_none);
    self->get = g;
    self->set = s;
    return 0;
}

static int
Guard_traverse(Guard *self, visitproc visit, void *arg)
{
    Py_VISIT(self->wrapped);
    Py_VISIT(self->owner);
    Py_VISIT(self->marker_type);
    Py_VISIT(self->reload);
    Py_VISIT(self->on_none);
    return 0;
}

static int
Guard_clear(Guard *self)
{
    Py_CLEAR(self->wrapped);
    Py_CLEAR(self->owner);
    Py_CLEAR(self->name);
    Py_CLEAR(self->marker_type);
    Py_CLEAR(self->reload);
    Py_CLEAR(self->on_none);
    return 0;
}

static void
Guard_dealloc(Guard *self)
{
    PyObject_GC_UnTrack(self);
    Guard_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Guard_descr_get(Guard *self, PyObject *obj, PyObject *type)
{
    PyObject *v = self->get(self->wrapped, obj, type);
    if (v == NULL || obj == NULL || obj == Py_None)
        return v;
    if ((PyObject *)Py_TYPE(v) == self->marker_type) {
        PyObject *r = PyObject_CallFunctionObjArgs(self->reload, obj, self->name, v, NULL);
        Py_DECREF(v);
        return r;
    }
    if (v == Py_None && self->on_none != Py_None) {
        Py_DECREF(v);
        return PyObject_CallFunctionObjArgs(self->on_none, obj, self->name, NULL);
    }
    return v;
}

static int
Guard_descr_set(Guard *self, PyObject *obj, PyObject *value)
{
    return self->set(self->wrapped, obj, value);
}

static PyObject *
Guard_raw(Guard *self, PyObject *obj)
{
    /* the slot's stored value (a marker included), without reloading: for spilling and sizing */
    return self->get(self->wrapped, obj, (PyObject *)Py_TYPE(obj));
}

static PyObject *
Guard_store(Guard *self, PyObject *args)
{
    PyObject *obj, *value;
    if (!PyArg_ParseTuple(args, "OO", &obj, &value)) return NULL;
    if (self->set(self->wrapped, obj, value) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef Guard_methods[] = {
    {"raw", (PyCFunction)Guard_raw, METH_O, "The stored value without reloading."},
    {"store", (PyCFunction)Guard_store, METH_VARARGS, "Store a value (or a marker) in the slot."},
    {NULL}
};

static PyMemberDef Guard_members[] = {
    {"wrapped", T_OBJECT, offsetof(Guard, wrapped), READONLY, "the original descriptor"},
    {"owner", T_OBJECT, offsetof(Guard, owner), READONLY, "the class it is installed on"},
    {"name", T_OBJECT, offsetof(Guard, name), READONLY, "attribute name"},
    {"on_none", T_OBJECT, offsetof(Guard, on_none), 0, "reuse callback for None values, or None"},
    {NULL}
};

static PyTypeObject GuardType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dagstore._fastguard.Guard",
    .tp_basicsize = sizeof(Guard),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Guard_init,
    .tp_dealloc = (destructor)Guard_dealloc,
    .tp_traverse = (traverseproc)Guard_traverse,
    .tp_clear = (inquiry)Guard_clear,
    .tp_descr_get = (descrgetfunc)Guard_descr_get,
    .tp_descr_set = (descrsetfunc)Guard_descr_set,
    .tp_methods = Guard_methods,
    .tp_members = Guard_members,
};



/* collapse(obj, guards, list_marker, set_marker, dict_marker) -> int
 * For each Guard in the tuple `guards`: if obj's slot holds an empty list/set/dict (exact types), store
 * the matching shared marker instead.  Returns how many were collapsed.  The loop the spill layer runs
 * for every node at creation and at every safe point, so it is in C. */
static PyObject *
fastguard_collapse(PyObject *module, PyObject *args)
{
    PyObject *obj, *guards, *mlist, *mset, *mdict;
    if (!PyArg_ParseTuple(args, "OO!OOO", &obj, &PyTuple_Type, &guards, &mlist, &mset, &mdict))
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(guards), done = 0;
    PyObject *type = (PyObject *)Py_TYPE(obj);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *g = PyTuple_GET_ITEM(guards, i);
        if (Py_TYPE(g) != &GuardType) {
            PyErr_SetString(PyExc_TypeError, "collapse() takes a tuple of Guard objects");
            return NULL;
        }
        Guard *gd = (Guard *)g;
        PyObject *v = gd->get(gd->wrapped, obj, type);
        if (v == NULL) {
            if (PyErr_ExceptionMatches(PyExc_AttributeError)) { PyErr_Clear(); continue; }
            return NULL;
        }
        PyObject *marker = NULL;
        if (PyList_CheckExact(v) && PyList_GET_SIZE(v) == 0) marker = mlist;
        else if (PySet_CheckExact(v) && PySet_GET_SIZE(v) == 0) marker = mset;
        else if (PyDict_CheckExact(v) && PyDict_GET_SIZE(v) == 0) marker = mdict;
        Py_DECREF(v);
        if (marker != NULL) {
            if (gd->set(gd->wrapped, obj, marker) < 0) return NULL;
            done++;
        }
    }
    return PyLong_FromSsize_t(done);
}

#ifdef __linux__
/* madvise(addr, length, advice) -> 0, or the errno: what dagstore.backends' release_pages() calls on the
 * store's mapped pages (without it, ctypes: ~2-6 ms to import and find libc in every build). */
static PyObject *
fastguard_madvise(PyObject *module, PyObject *args)
{
    unsigned long long addr, length;
    int advice;
    if (!PyArg_ParseTuple(args, "KKi", &addr, &length, &advice))
        return NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = madvise((void *)(uintptr_t)addr, (size_t)length, advice);
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(rc == 0 ? 0 : errno);
}
#endif

static PyMethodDef fastguard_functions[] = {
    {"collapse", fastguard_collapse, METH_VARARGS, "Collapse empty containers in guarded slots to markers."},
#ifdef __linux__
    {"madvise", fastguard_madvise, METH_VARARGS, "madvise(2) on a mapped range; 0 or the errno."},
#endif
    {NULL}
};

static struct PyModuleDef fastguard_module = {
    PyModuleDef_HEAD_INIT, "_fastguard", "C fast path for dagstore.spill", -1, fastguard_functions,
};

PyMODINIT_FUNC
PyInit__fastguard(void)
{
    if (PyType_Ready(&GuardType) < 0) return NULL;
    PyObject *m = PyModule_Create(&fastguard_module);
    if (m == NULL) return NULL;
    Py_INCREF(&GuardType);
    if (PyModule_AddObject(m, "Guard", (PyObject *)&GuardType) < 0) {
        Py_DECREF(&GuardType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
